//! The webhook's metrics, named exactly as the seed documents them so that its dashboards and
//! alerts work: `keeper_injector_requests_total`, `keeper_injector_errors_total`,
//! `keeper_injector_latency_seconds`. Labels are bounded sets.

use std::sync::OnceLock;
use std::time::Duration;

use crate::Verdict;

/// Admission requests, by `result`: `injected`, `already_injected`, `not_requested`,
/// `skipped` (not a pod CREATE), `denied` or `bad_request`.
pub const REQUESTS: &str = "keeper_injector_requests_total";

/// Requests that were denied or malformed, by `reason` (an error's `metric_label`).
pub const ERRORS: &str = "keeper_injector_errors_total";

/// Time to answer an admission request, from the body read to the response built.
pub const LATENCY: &str = "keeper_injector_latency_seconds";

/// Describes the metrics on the installed recorder and registers every `result` series at
/// zero, so that the seed's error-rate query has both operands from the first scrape.
pub fn describe() {
    metrics::describe_counter!(
        REQUESTS,
        "Admission requests handled by the Keeper injector, by result."
    );
    metrics::describe_counter!(
        ERRORS,
        "Admission requests denied or rejected as malformed, by reason."
    );
    metrics::describe_histogram!(
        LATENCY,
        metrics::Unit::Seconds,
        "Time to answer an admission request."
    );
    for result in Verdict::RESULTS {
        metrics::counter!(REQUESTS, "result" => result).absolute(0);
    }
}

/// Handles to the per-request series, looked up once: every admission records them.
struct Handles {
    requests: Vec<(&'static str, metrics::Counter)>,
    latency: metrics::Histogram,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

/// Records one answered request.
pub(crate) fn record(verdict: Verdict, took: Duration) {
    let handles = HANDLES.get_or_init(|| Handles {
        requests: Verdict::RESULTS
            .iter()
            .map(|r| (*r, metrics::counter!(REQUESTS, "result" => *r)))
            .collect(),
        latency: metrics::histogram!(LATENCY),
    });
    let result = verdict.result();
    match handles.requests.iter().find(|(r, _)| *r == result) {
        Some((_, counter)) => counter.increment(1),
        None => metrics::counter!(REQUESTS, "result" => result).increment(1),
    }
    if let Some(reason) = verdict.reason() {
        metrics::counter!(ERRORS, "reason" => reason).increment(1);
    }
    handles.latency.record(took.as_secs_f64());
}
