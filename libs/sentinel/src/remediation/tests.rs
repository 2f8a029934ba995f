//! Tests: the order of the checks, the cooldown across a replacement pod, both budgets over a
//! sliding hour, and a dry-run that spends nothing and reports each signal once per cooldown.

use super::*;
use crate::rules::RuleSet;

const MIN: i64 = 60_000_000_000;

fn rules() -> RuleSet {
    RuleSet::parse(
        "rules:\n  - {name: restart, match: {pattern: boom}, priority: P1, remediation: {action: restart-pod, cooldown: 5m}}\n  - {name: watch, match: {pattern: meh}, priority: P4}\n",
        "rules.yaml",
    )
    .unwrap()
}

fn limits() -> Limits {
    Limits {
        enabled: true,
        dry_run: false,
        excluded_namespaces: vec!["kube-system".into()],
        max_actions_per_hour: 3,
        max_actions_per_namespace_per_hour: 2,
    }
}

fn req<'a>(rule: &'a Rule, namespace: &'a str, owner: &'a str) -> Request<'a> {
    Request {
        rule,
        namespace,
        owner,
    }
}

#[test]
fn checks_run_in_order() {
    let set = rules();
    let (restart, watch) = (&set.rules()[0], &set.rules()[1]);
    let mut s = Safety::default();
    assert_eq!(
        s.decide(&limits(), &req(watch, "shop", "Deployment/api"), 0),
        Decision::Nothing
    );
    let off = Limits {
        enabled: false,
        ..limits()
    };
    // Disabled comes before the namespace check.
    assert_eq!(
        s.decide(&off, &req(restart, "kube-system", "Deployment/dns"), 0),
        Decision::Refused(Refusal::Disabled)
    );
    assert_eq!(
        s.decide(&limits(), &req(restart, "kube-system", "Deployment/dns"), 0),
        Decision::Refused(Refusal::ExcludedNamespace)
    );
    assert_eq!(
        s.decide(&limits(), &req(restart, "shop", "Deployment/api"), 0),
        Decision::Act(Action::RestartPod {
            grace_period_seconds: None
        })
    );
    // Refusals spent nothing: one action in the hour.
    assert_eq!(s.budget(&limits(), 1), (1, 2));
}

#[test]
fn the_cooldown_holds_the_workload_not_the_pod() {
    let set = rules();
    let restart = &set.rules()[0];
    let mut s = Safety::default();
    assert!(matches!(
        s.decide(&limits(), &req(restart, "shop", "Deployment/api"), 0),
        Decision::Act(_)
    ));
    // The replacement pod has another name, but the same owner: still cooling down.
    assert_eq!(
        s.decide(&limits(), &req(restart, "shop", "Deployment/api"), 4 * MIN),
        Decision::Refused(Refusal::Cooldown { until_ns: 5 * MIN })
    );
    // Another workload is not held.
    assert!(matches!(
        s.decide(&limits(), &req(restart, "shop", "Deployment/web"), 4 * MIN),
        Decision::Act(_)
    ));
    // A workload of the same name in another namespace is another workload.
    assert!(matches!(
        s.decide(&limits(), &req(restart, "auth", "Deployment/api"), 4 * MIN),
        Decision::Act(_)
    ));
    let web = Held::of(&req(restart, "shop", "Deployment/web"));
    assert_eq!(s.held_until(&web, 4 * MIN), Some(9 * MIN));
    assert!(s.clear_cooldown(&web));
    assert!(!s.clear_cooldown(&web));
}

#[test]
fn namespace_and_global_budgets_over_a_sliding_hour() {
    let set = rules();
    let restart = &set.rules()[0];
    let mut s = Safety::default();
    let l = limits();
    assert!(matches!(
        s.decide(&l, &req(restart, "shop", "Deployment/a"), 0),
        Decision::Act(_)
    ));
    assert!(matches!(
        s.decide(&l, &req(restart, "shop", "Deployment/b"), MIN),
        Decision::Act(_)
    ));
    assert_eq!(
        s.decide(&l, &req(restart, "shop", "Deployment/c"), 2 * MIN),
        Decision::Refused(Refusal::NamespaceBudget)
    );
    assert!(matches!(
        s.decide(&l, &req(restart, "auth", "Deployment/c"), 2 * MIN),
        Decision::Act(_)
    ));
    assert_eq!(
        s.decide(&l, &req(restart, "data", "Deployment/d"), 3 * MIN),
        Decision::Refused(Refusal::GlobalBudget)
    );
    assert_eq!(s.budget(&l, 3 * MIN), (3, 0));
    // An hour after the first action, its slot is free again.
    assert!(matches!(
        s.decide(&l, &req(restart, "data", "Deployment/d"), 60 * MIN + 1),
        Decision::Act(_)
    ));
}

#[test]
fn dry_run_spends_nothing_and_holds_the_signal_for_the_cooldown() {
    let set = rules();
    let restart = &set.rules()[0];
    let mut s = Safety::default();
    let dry = Limits {
        dry_run: true,
        ..limits()
    };
    for i in 0..10 {
        let owner = format!("Deployment/w{i}");
        assert_eq!(
            s.decide(&dry, &req(restart, "data", &owner), 0),
            Decision::DryRun(Action::RestartPod {
                grace_period_seconds: None
            })
        );
    }
    // Ten would-be actions, past both budgets, spent none of them.
    assert_eq!(s.budget(&dry, 1), (0, 3));
    assert!(matches!(
        s.decide(&dry, &req(restart, "data", "Deployment/w0"), MIN),
        Decision::Refused(Refusal::Cooldown { .. })
    ));
    assert!(!Refusal::Cooldown { until_ns: 0 }.audited());
    assert!(Refusal::GlobalBudget.audited());
    s.expire(10 * MIN);
    assert!(matches!(
        s.decide(&dry, &req(restart, "data", "Deployment/w0"), 10 * MIN),
        Decision::DryRun(_)
    ));
}

#[test]
fn limits_come_from_the_seed_config() {
    let c: crate::config::Config =
        bulwark_config::Loader::new(&std::collections::HashMap::<String, String>::new(), "")
            .load_str(
                include_str!("../../tests/data/seed-config.yaml"),
                "config.yaml",
            )
            .unwrap();
    let l = Limits::from(&c.remediation);
    assert_eq!(
        (l.enabled, l.dry_run, l.max_actions_per_hour),
        (true, false, 50)
    );
    assert_eq!(l.max_actions_per_namespace_per_hour, 10);
    assert!(l.excluded_namespaces.iter().any(|n| n == "kube-sentinel"));
}

use crate::audit::sample as entry;

#[test]
fn a_new_leader_keeps_the_cooldowns_and_the_hours_budget() {
    let rules = rules();
    let rule = &rules.rules()[0];
    let now = 100 * MIN;
    let log = [
        // An hour and more ago: its budget is back.
        entry(now - 61 * MIN, Outcome::Success, "shop", None),
        entry(now - 10 * MIN, Outcome::Failed, "shop", None),
        entry(now - 2 * MIN, Outcome::Success, "web", Some(now + 3 * MIN)),
        // Dry-run holds but spends nothing.
        entry(now - MIN, Outcome::DryRun, "web", Some(now + 4 * MIN)),
    ];
    let mut s = Safety::restore(&log, now);
    assert_eq!(s.budget(&limits(), now), (2, 1));
    assert_eq!(
        s.decide(&limits(), &req(rule, "web", "Deployment/api"), now),
        Decision::Refused(Refusal::Cooldown {
            until_ns: now + 4 * MIN
        })
    );
    let held = Held {
        rule: "restart".into(),
        namespace: "web".into(),
        owner: "Deployment/api".into(),
    };
    assert_eq!(s.cooldowns(now), [(held.clone(), now + 4 * MIN)]);
    assert_eq!(
        s.decide(&limits(), &req(rule, "shop", "Deployment/api"), now),
        Decision::Act(rule.action),
        "shop's api is another workload than web's"
    );
    // Cleared afterwards: the hold is gone; the budget is not given back.
    let mut cleared = log.to_vec();
    cleared.push(entry(
        now - 1,
        Outcome::CooldownCleared,
        "web",
        Some(now + 4 * MIN),
    ));
    let mut s = Safety::restore(&cleared, now);
    assert!(s.cooldowns(now).is_empty());
    // The audit filter keeps exactly the entries that matter now.
    let relevant = crate::audit::Filter {
        relevant_at_ns: Some(now),
        ..crate::audit::Filter::default()
    };
    let kept: Vec<Entry> = cleared
        .iter()
        .filter(|e| relevant.accepts(e))
        .cloned()
        .collect();
    assert_eq!(
        kept.len(),
        4,
        "all but the attempt of more than an hour ago"
    );
    let mut rebuilt = Safety::default();
    rebuilt.rebuild(&kept, now);
    assert_eq!(rebuilt.budget(&limits(), now), s.budget(&limits(), now));
    assert!(rebuilt.cooldowns(now).is_empty());
    assert_eq!(
        s.decide(&limits(), &req(rule, "web", "Deployment/api"), now),
        Decision::Act(rule.action)
    );
}

#[test]
fn refunds_holds_and_refusals_reported_once_per_cooldown() {
    let rules = rules();
    let rule = &rules.rules()[0];
    let mut s = Safety::default();
    let r = req(rule, "shop", "Deployment/api");
    assert_eq!(s.decide(&limits(), &r, 0), Decision::Act(rule.action));
    s.refund("shop", 0);
    assert_eq!(s.budget(&limits(), 1), (0, 3), "a no-op spends nothing");
    assert!(
        matches!(
            s.decide(&limits(), &r, 1),
            Decision::Refused(Refusal::Cooldown { .. })
        ),
        "but its cooldown holds"
    );
    let db = req(rule, "shop", "StatefulSet/db");
    s.hold(Held::of(&db), 5 * MIN);
    assert!(matches!(
        s.decide(&limits(), &db, MIN),
        Decision::Refused(Refusal::Cooldown { .. })
    ));
    assert!(s.first_refusal(&r, Refusal::GlobalBudget, 0));
    assert!(!s.first_refusal(&r, Refusal::GlobalBudget, MIN));
    assert!(
        s.first_refusal(&r, Refusal::NamespaceBudget, MIN),
        "per reason"
    );
    assert!(
        s.first_refusal(&r, Refusal::GlobalBudget, 5 * MIN),
        "after the cooldown"
    );
}
