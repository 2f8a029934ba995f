//! Every metric an alert or a dashboard queries is one a binary exports.
//!
//! Exported names are the string constants of each crate's `metrics.rs` (STYLE.md 2: a crate
//! declares its metric names there, once), `bulwark_build_info`, Prometheus' own `up`, and the
//! one kube-state-metrics series the archiver's alerts need (a CronJob's last success, which
//! its short-lived runs cannot report reliably themselves). A
//! histogram is queried through `_bucket`, `_sum` and `_count`. Queried names are the metric
//! identifiers of PromQL expressions: in alerts, each rule's `expr`; in dashboards (JSON), each
//! target's `expr`.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;

/// PromQL's words that look like metric names: functions, aggregations, keywords.
const PROMQL_WORDS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "and",
    "avg",
    "avg_over_time",
    "bool",
    "bottomk",
    "by",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "count",
    "count_over_time",
    "count_values",
    "day_of_month",
    "day_of_week",
    "delta",
    "deriv",
    "exp",
    "floor",
    "group",
    "group_left",
    "group_right",
    "histogram_quantile",
    "holt_winters",
    "idelta",
    "ignoring",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log2",
    "log10",
    "max",
    "max_over_time",
    "min",
    "min_over_time",
    "offset",
    "on",
    "or",
    "predict_linear",
    "quantile",
    "quantile_over_time",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev",
    "stddev_over_time",
    "stdvar",
    "sum",
    "sum_over_time",
    "time",
    "timestamp",
    "topk",
    "unless",
    "vector",
    "without",
    "inf",
    "nan",
];

/// The metric names the workspace's binaries export.
pub(crate) fn exported_metrics(root: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut names: BTreeSet<String> = [
        "up",
        "bulwark_build_info",
        "kube_cronjob_status_last_successful_time",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let libs = root.join("libs");
    for entry in
        std::fs::read_dir(&libs).with_context(|| format!("cannot list {}", libs.display()))?
    {
        let path = entry?.path().join("src/metrics.rs");
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with("pub const ") && line.contains(": &str = \"") {
                let name = line
                    .split('"')
                    .nth(1)
                    .with_context(|| format!("{}: {line}", path.display()))?;
                names.insert(name.to_owned());
            }
        }
    }
    Ok(names)
}

/// The metric names `expr` (PromQL) queries.
pub(crate) fn queried_metrics(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        // Skip quoted strings (label values, format strings).
        if c == b'"' || c == b'\'' || c == b'`' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        // Skip label matchers and grouping lists: `{...}`, `by (...)` are handled below.
        if c == b'{' {
            while i < bytes.len() && bytes[i] != b'}' {
                i += 1;
            }
            continue;
        }
        if c == b'[' {
            while i < bytes.len() && bytes[i] != b']' {
                i += 1;
            }
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b':' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b':')
            {
                i += 1;
            }
            let word = &expr[start..i];
            let rest = expr[i..].trim_start();
            let grouping = matches!(
                word,
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            );
            if grouping && rest.starts_with('(') {
                // The label names in the list are not metrics.
                while i < bytes.len() && bytes[i] != b')' {
                    i += 1;
                }
                continue;
            }
            let function = rest.starts_with('(');
            let number_suffix = start > 0 && bytes[start - 1].is_ascii_digit();
            if !function && !number_suffix && !PROMQL_WORDS.contains(&word) {
                names.insert(word.to_owned());
            }
            continue;
        }
        i += 1;
    }
    names
}

/// Whether `name` is exported, directly or as a histogram's series.
fn is_exported(name: &str, exported: &BTreeSet<String>) -> bool {
    exported.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|s| {
            name.strip_suffix(s)
                .is_some_and(|base| exported.contains(base))
        })
}

/// Each query in the alerts and dashboards under `manifests` naming a metric not in
/// `exported`, as `file: name (in expr)`.
pub(crate) fn check_metric_names(
    manifests: &Path,
    exported: &BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut todo = vec![manifests.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let exprs = if name == "prometheusrule.yaml" {
                let text = std::fs::read_to_string(&path)?;
                let doc: serde_json::Value = serde_saphyr::from_str(&text)
                    .with_context(|| format!("{} is not YAML", path.display()))?;
                exprs_in(&doc["spec"])
            } else if name.ends_with(".json") && dir.ends_with("dashboard") {
                let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
                exprs_in(&doc)
            } else {
                continue;
            };
            anyhow::ensure!(!exprs.is_empty(), "{} holds no queries", path.display());
            for expr in exprs {
                for metric in queried_metrics(&expr) {
                    if !is_exported(&metric, exported) {
                        problems.push(format!(
                            "{}: {metric} (in `{}`)",
                            path.strip_prefix(crate::project_root())
                                .unwrap_or(&path)
                                .display(),
                            expr.trim()
                        ));
                    }
                }
            }
        }
    }
    problems.sort();
    Ok(problems)
}

/// Every string under an `expr` key in `v`.
fn exprs_in(v: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => out.extend(exprs_in(v)),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| out.extend(exprs_in(v))),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_metrics_of_a_query_and_nothing_else() {
        let expr = r#"sum by (job, reason) (rate(kube_sentinel_loki_query_errors_total{status="failed",job=~"a.b"}[10m]))
            / on (job) group_left max by (job) (kube_sentinel_max_actions_per_hour offset 5m) > 0.8
            and absent(up{job="x"} == 1) or histogram_quantile(0.95, sum by (le) (rate(keeper_injector_latency_seconds_bucket[5m]))) > 1e3"#;
        let got: Vec<String> = queried_metrics(expr).into_iter().collect();
        assert_eq!(
            got,
            [
                "keeper_injector_latency_seconds_bucket",
                "kube_sentinel_loki_query_errors_total",
                "kube_sentinel_max_actions_per_hour",
                "up"
            ]
        );
    }

    #[test]
    fn the_shipped_alerts_and_dashboards_query_exported_metrics_and_a_misspelling_fails() {
        let root = crate::project_root();
        let exported = exported_metrics(root).unwrap();
        assert!(exported.contains("kube_sentinel_leader"), "{exported:?}");
        assert!(is_exported(
            "keeper_injector_latency_seconds_bucket",
            &exported
        ));
        let problems = check_metric_names(&root.join("manifests"), &exported).unwrap();
        assert!(problems.is_empty(), "{problems:#?}");

        // The same files with one name misspelt, as a typo in an alert would be.
        let dir = tempfile::tempdir().unwrap();
        let alerts = dir.path().join("alerts");
        std::fs::create_dir_all(&alerts).unwrap();
        let shipped = std::fs::read_to_string(
            root.join("manifests/injector-webhook/components/alerts/prometheusrule.yaml"),
        )
        .unwrap();
        std::fs::write(
            alerts.join("prometheusrule.yaml"),
            shipped.replace(
                "keeper_injector_errors_total",
                "keeper_injector_error_total",
            ),
        )
        .unwrap();
        let problems = check_metric_names(dir.path(), &exported).unwrap();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].contains("keeper_injector_error_total"),
            "{problems:?}"
        );
    }
}
