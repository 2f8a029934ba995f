//! Sentinel's metrics. Names the upstream whitepaper's observability section recommends are
//! used as written there (`kube_sentinel_errors_total`,
//! `kube_sentinel_loki_poll_duration_seconds`), but one: its `kube_sentinel_store_errors_count`
//! is `kube_sentinel_store_errors`, because a `_count` suffix belongs to histograms and
//! summaries (`promtool check metrics` refuses it on a gauge, and `_count` queries would
//! mistake it for one). The others follow them. Labels are rule names, priorities and bounded
//! reasons, never a log line or a pod.

pub const ERRORS: &str = "kube_sentinel_errors_total";
pub const RULE_MATCHES: &str = "kube_sentinel_rule_matches_total";
pub const POLL_DURATION: &str = "kube_sentinel_loki_poll_duration_seconds";
pub const LINES: &str = "kube_sentinel_loki_lines_total";
pub const BYTES: &str = "kube_sentinel_loki_bytes_total";
pub const QUERY_ERRORS: &str = "kube_sentinel_loki_query_errors_total";
pub const LAG: &str = "kube_sentinel_ingestion_lag_seconds";
pub const STORE_ERRORS: &str = "kube_sentinel_store_errors";
pub const STORE_EVICTED: &str = "kube_sentinel_store_evicted_total";
pub const RULES_LOADED: &str = "kube_sentinel_rules_loaded";
pub const RULE_RELOADS: &str = "kube_sentinel_rule_reloads_total";
pub const RULES_LAST_RELOAD_OK: &str = "kube_sentinel_rules_last_reload_success";

/// Describes the metrics on the installed recorder.
pub fn describe() {
    metrics::describe_counter!(ERRORS, "Error lines read from Loki, by priority.");
    metrics::describe_counter!(
        RULE_MATCHES,
        "Error lines by the rule they matched (`default`: none)."
    );
    metrics::describe_histogram!(
        POLL_DURATION,
        metrics::Unit::Seconds,
        "Time to read one poll's window from Loki, all pages."
    );
    metrics::describe_counter!(LINES, "Lines read from Loki, each counted once.");
    metrics::describe_counter!(
        BYTES,
        metrics::Unit::Bytes,
        "Bytes of the lines read from Loki."
    );
    metrics::describe_counter!(QUERY_ERRORS, "Failed Loki requests, by reason.");
    metrics::describe_gauge!(
        LAG,
        metrics::Unit::Seconds,
        "Time since the end of the last window read whole."
    );
    metrics::describe_gauge!(STORE_ERRORS, "Unique errors (fingerprints) in the store.");
    metrics::describe_counter!(
        STORE_EVICTED,
        "Errors evicted by the store's max_errors bound."
    );
    metrics::describe_gauge!(RULES_LOADED, "Rules in use, enabled or not.");
    metrics::describe_counter!(
        RULE_RELOADS,
        "Rule file reloads, by result (`success`, `failure`)."
    );
    metrics::describe_gauge!(
        RULES_LAST_RELOAD_OK,
        "1 when the last read of the rules file succeeded, 0 when the rules in use are older."
    );
}

pub(crate) fn rules_loaded(count: usize, ok: bool) {
    metrics::gauge!(RULES_LOADED).set(count as f64);
    metrics::gauge!(RULES_LAST_RELOAD_OK).set(if ok { 1.0 } else { 0.0 });
}

pub(crate) fn rules_reload_result(ok: bool) {
    let result = if ok { "success" } else { "failure" };
    metrics::counter!(RULE_RELOADS, "result" => result).increment(1);
    metrics::gauge!(RULES_LAST_RELOAD_OK).set(if ok { 1.0 } else { 0.0 });
}

pub(crate) fn poll(took: std::time::Duration) {
    metrics::histogram!(POLL_DURATION).record(took.as_secs_f64());
}

/// Lines (and their bytes) of a page once it is stored.
pub(crate) fn window(lines: u64, bytes: u64) {
    metrics::counter!(LINES).increment(lines);
    metrics::counter!(BYTES).increment(bytes);
}

pub(crate) fn line(rule: &str, priority: &'static str) {
    metrics::counter!(ERRORS, "priority" => priority).increment(1);
    metrics::counter!(RULE_MATCHES, "rule" => rule.to_owned(), "priority" => priority).increment(1);
}

pub(crate) fn query_error(reason: &'static str) {
    metrics::counter!(QUERY_ERRORS, "reason" => reason).increment(1);
}

pub(crate) fn lag(ns: i64) {
    metrics::gauge!(LAG).set(ns as f64 / 1e9);
}

pub(crate) fn store(errors: usize, evicted: u64) {
    metrics::gauge!(STORE_ERRORS).set(errors as f64);
    metrics::counter!(STORE_EVICTED).absolute(evicted);
}
