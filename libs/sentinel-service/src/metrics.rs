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
pub const REMEDIATIONS: &str = "kube_sentinel_remediations_total";
pub const REFUSALS: &str = "kube_sentinel_remediation_refusals_total";
pub const REMEDIATION_DURATION: &str = "kube_sentinel_remediation_duration_seconds";
pub const ACTIONS_THIS_HOUR: &str = "kube_sentinel_actions_this_hour";
pub const MAX_ACTIONS_PER_HOUR: &str = "kube_sentinel_max_actions_per_hour";
pub const BUDGET_REMAINING: &str = "kube_sentinel_remediation_budget_remaining";
pub const REMEDIATION_ENABLED: &str = "kube_sentinel_remediation_enabled";
pub const DRY_RUN: &str = "kube_sentinel_remediation_dry_run";
pub const LEADER: &str = "kube_sentinel_leader";
pub const LIVE_SUBSCRIBERS: &str = "kube_sentinel_live_subscribers";

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
    metrics::describe_counter!(
        REMEDIATIONS,
        "Remediation actions by action and status (`success`, `failed`, `dry_run`, `skipped`)."
    );
    metrics::describe_counter!(
        REFUSALS,
        "Remediations refused, by action and reason (`disabled`, `excluded_namespace`, \
         `cooldown`, `namespace_budget`, `global_budget`, `not_applicable`, `pod_gone`, \
         `owner_unknown`)."
    );
    metrics::describe_histogram!(
        REMEDIATION_DURATION,
        metrics::Unit::Seconds,
        "Time to carry out one action on the API server, by action."
    );
    metrics::describe_gauge!(
        ACTIONS_THIS_HOUR,
        "Actions attempted in the last hour (the leader's count)."
    );
    metrics::describe_gauge!(MAX_ACTIONS_PER_HOUR, "The hourly action budget.");
    metrics::describe_gauge!(BUDGET_REMAINING, "Actions left in this hour's budget.");
    metrics::describe_gauge!(REMEDIATION_ENABLED, "1 when remediation is enabled.");
    metrics::describe_gauge!(DRY_RUN, "1 when remediation only says what it would do.");
    metrics::describe_gauge!(
        LEADER,
        "1 while this replica holds the Lease (or runs without leader election)."
    );
    metrics::describe_gauge!(
        LIVE_SUBSCRIBERS,
        "Dashboard clients following live updates (Server-Sent Events; upstream's \
         kube_sentinel_websocket_connections)."
    );
}

pub(crate) fn remediation(action: &'static str, status: &'static str) {
    metrics::counter!(REMEDIATIONS, "action" => action, "status" => status).increment(1);
}

pub(crate) fn refusal(action: &'static str, reason: &'static str) {
    metrics::counter!(REFUSALS, "action" => action, "reason" => reason).increment(1);
}

pub(crate) fn remediation_duration(action: &'static str, took: std::time::Duration) {
    metrics::histogram!(REMEDIATION_DURATION, "action" => action).record(took.as_secs_f64());
}

pub(crate) fn budget(limits: &bulwark_sentinel::remediation::Limits, used: u32, leader: bool) {
    let flag = |b: bool| if b { 1.0 } else { 0.0 };
    metrics::gauge!(ACTIONS_THIS_HOUR).set(f64::from(used));
    metrics::gauge!(MAX_ACTIONS_PER_HOUR).set(f64::from(limits.max_actions_per_hour));
    metrics::gauge!(BUDGET_REMAINING)
        .set(f64::from(limits.max_actions_per_hour.saturating_sub(used)));
    metrics::gauge!(REMEDIATION_ENABLED).set(flag(limits.enabled));
    metrics::gauge!(DRY_RUN).set(flag(limits.dry_run));
    metrics::gauge!(LEADER).set(flag(leader));
}

pub(crate) fn subscribers(n: usize) {
    metrics::gauge!(LIVE_SUBSCRIBERS).set(n as f64);
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
