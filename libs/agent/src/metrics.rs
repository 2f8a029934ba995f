//! The sidecar's metrics. The seed's four names are used exactly as it writes them, so its
//! dashboards and its `KeeperSidecarRefreshFailures` alert
//! (`rate(keeper_sidecar_refresh_errors_total[10m]) > 0.1`) work unchanged. Labels are
//! bounded sets; no record title, UID, path or value is ever a label.

use std::time::Duration;

/// Refresh cycles (init mode's single fetch included), by `result`: `fetched` (from Keeper),
/// `cached` (Keeper failed, the cache served) or `failed`.
pub const REFRESH: &str = "keeper_sidecar_refresh_total";

/// Failed fetches from Keeper, by `reason` (see [`crate::FetchError::reason`]), whether or not
/// the cache then served.
pub const REFRESH_ERRORS: &str = "keeper_sidecar_refresh_errors_total";

/// Secrets (output files) fetched from Keeper.
pub const SECRETS_FETCHED: &str = "keeper_sidecar_secrets_fetched_total";

/// Time of one fetch from Keeper: the batched request, folder lookups and file downloads.
pub const FETCH_DURATION: &str = "keeper_sidecar_fetch_duration_seconds";

/// Output files written because their content, mode or owner changed.
pub const FILES_CHANGED: &str = "keeper_sidecar_files_changed_total";

/// Age of the secrets being served: 0 right after a fetch, growing while the cache serves.
pub const SECRETS_AGE: &str = "keeper_sidecar_secrets_age_seconds";

/// Unix time of the last successful fetch from Keeper.
pub const LAST_SUCCESS: &str = "keeper_sidecar_last_success_timestamp_seconds";

const RESULTS: &[&str] = &["fetched", "cached", "failed"];

/// Describes the metrics and registers every `result` series at zero.
pub fn describe() {
    metrics::describe_counter!(REFRESH, "Secret refresh cycles, by result.");
    metrics::describe_counter!(
        REFRESH_ERRORS,
        "Failed fetches from Keeper Secrets Manager, by reason."
    );
    metrics::describe_counter!(SECRETS_FETCHED, "Secrets fetched from Keeper.");
    metrics::describe_histogram!(
        FETCH_DURATION,
        metrics::Unit::Seconds,
        "Time to fetch the pod's secrets from Keeper."
    );
    metrics::describe_counter!(
        FILES_CHANGED,
        "Secret files rewritten because their content, mode or owner changed."
    );
    metrics::describe_gauge!(
        SECRETS_AGE,
        metrics::Unit::Seconds,
        "Age of the secrets being served."
    );
    metrics::describe_gauge!(
        LAST_SUCCESS,
        metrics::Unit::Seconds,
        "Unix time of the last successful fetch from Keeper."
    );
    for result in RESULTS {
        metrics::counter!(REFRESH, "result" => *result).absolute(0);
    }
    metrics::counter!(SECRETS_FETCHED).absolute(0);
    metrics::counter!(FILES_CHANGED).absolute(0);
}

/// Records a fetch from Keeper that took `took`.
pub(crate) fn fetched(secrets: usize, took: Duration, unix_now: f64) {
    metrics::histogram!(FETCH_DURATION).record(took.as_secs_f64());
    metrics::counter!(SECRETS_FETCHED).increment(secrets as u64);
    metrics::counter!(REFRESH, "result" => "fetched").increment(1);
    metrics::gauge!(LAST_SUCCESS).set(unix_now);
    metrics::gauge!(SECRETS_AGE).set(0.0);
}

/// Records a failed fetch.
pub(crate) fn fetch_failed(reason: &'static str, took: Duration) {
    metrics::histogram!(FETCH_DURATION).record(took.as_secs_f64());
    metrics::counter!(REFRESH_ERRORS, "reason" => reason).increment(1);
}

/// Records how the cycle ended when the fetch failed: served from the cache, or not at all.
pub(crate) fn served_cached(age: Duration) {
    metrics::counter!(REFRESH, "result" => "cached").increment(1);
    metrics::gauge!(SECRETS_AGE).set(age.as_secs_f64());
}

pub(crate) fn failed() {
    metrics::counter!(REFRESH, "result" => "failed").increment(1);
}

pub(crate) fn files_changed(n: usize) {
    metrics::counter!(FILES_CHANGED).increment(n as u64);
}
