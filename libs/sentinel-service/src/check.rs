//! `sentinel --check`: what the config and rules say, without contacting anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bulwark_sentinel::config::Config;
use bulwark_sentinel::rules::{Priority, RuleSet};

/// The summary `--check` prints for a config and the rules it loads from `source`.
pub fn summary(config: &Config, rules: &RuleSet, source: &str) -> String {
    let mut out = String::new();
    let all = rules.rules();
    let enabled = all.iter().filter(|r| r.enabled).count();
    let _ = writeln!(
        out,
        "loki: {} every {}, looking back {} (overlap {}, {} lines per page)",
        config.loki.url,
        config.loki.poll_interval,
        config.loki.lookback,
        config.loki.overlap,
        config.loki.limit
    );
    let _ = writeln!(out, "query: {}", config.loki.query);
    let _ = writeln!(
        out,
        "web: {}{}; store: {:?}, {} retention, at most {} errors",
        config.web.listen,
        if config.web.base_path.is_empty() {
            ""
        } else {
            &config.web.base_path
        },
        config.store.kind,
        config.store.retention,
        config.store.max_errors
    );
    let _ = writeln!(
        out,
        "remediation: {}{}, at most {} actions an hour, never in {}",
        if config.remediation.enabled {
            "enabled"
        } else {
            "disabled"
        },
        if config.remediation.dry_run {
            " (dry run)"
        } else {
            ""
        },
        config.remediation.max_actions_per_hour,
        config.remediation.excluded_namespaces.join(", ")
    );
    let _ = writeln!(out, "rules: {} from {source}, {enabled} enabled", all.len());
    let mut by_priority: BTreeMap<Priority, usize> = BTreeMap::new();
    let mut by_action: BTreeMap<&str, usize> = BTreeMap::new();
    for r in all.iter().filter(|r| r.enabled) {
        *by_priority.entry(r.priority).or_default() += 1;
        *by_action.entry(r.action.name()).or_default() += 1;
    }
    let list = |m: Vec<String>| {
        if m.is_empty() {
            "none".to_owned()
        } else {
            m.join(", ")
        }
    };
    let _ = writeln!(
        out,
        "  priorities: {}",
        list(
            by_priority
                .iter()
                .map(|(p, n)| format!("{p} {n}"))
                .collect()
        )
    );
    let _ = writeln!(
        out,
        "  actions: {}",
        list(by_action.iter().map(|(a, n)| format!("{a} {n}")).collect())
    );
    for r in all {
        let _ = writeln!(
            out,
            "  {:<24} {} {:<16} cooldown {}s{}{}",
            r.name,
            r.priority,
            r.action.name(),
            r.cooldown.as_secs(),
            if r.enabled { "" } else { "  (disabled)" },
            if r.slow_pattern {
                "  (slow: Unicode \\b; use (?-u:\\b))"
            } else {
                ""
            }
        );
    }
    out
}
