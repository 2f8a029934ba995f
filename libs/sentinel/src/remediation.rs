//! Remediation safety (issue 18's order, research/sentinel.md §1.7): whether a matched error
//! may act, decided in this order, each step able to refuse:
//!
//! 1. the rule's action is `none`: nothing to decide, nothing to record;
//! 2. remediation is enabled;
//! 3. the namespace is not excluded;
//! 4. the cooldown, keyed on the rule and the **owning workload** (`Deployment/api` in its
//!    namespace), not the pod: a replacement pod with a new name is the same workload and
//!    waits too, and `api` in another namespace is another workload;
//! 5. the namespace's hourly budget, then the global one (`max_actions_per_hour`), over a
//!    sliding hour of the actions taken;
//! 6. act, or in dry-run say what would be done.
//!
//! Upstream's defects this fixes: its cooldown is keyed on the pod name, so a restarted pod
//! bypasses it; its dry-run reports success and spends the budget. Here a dry-run decision is
//! [`Decision::DryRun`], spends no budget, and holds the cooldown like an action, so the same
//! signal is reported once per cooldown rather than on every line. An attempted action starts
//! the cooldown and spends the budget whether it then succeeds or fails: a failing action is
//! not retried faster than a working one.
//!
//! Pure: the clock is an argument, so the tests drive it.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::audit::{Entry, Outcome};
use crate::rules::{Action, Rule};

pub mod plan;

/// The limits, from the config's `remediation` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub enabled: bool,
    pub dry_run: bool,
    pub excluded_namespaces: Vec<String>,
    /// Actions in any hour, across the cluster.
    pub max_actions_per_hour: u32,
    /// Actions in any hour, per namespace.
    pub max_actions_per_namespace_per_hour: u32,
}

impl From<&crate::config::Remediation> for Limits {
    fn from(c: &crate::config::Remediation) -> Self {
        Self {
            enabled: c.enabled,
            dry_run: c.dry_run,
            excluded_namespaces: c.excluded_namespaces.clone(),
            max_actions_per_hour: c.max_actions_per_hour,
            max_actions_per_namespace_per_hour: c.max_actions_per_namespace_per_hour,
        }
    }
}

/// The two switches an operator may flip at run time (`POST /api/settings`), over the
/// config's `remediation.enabled` and `remediation.dry_run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Switches {
    pub enabled: bool,
    pub dry_run: bool,
}

/// A change to the switches: those given are set, the others kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwitchChange {
    pub enabled: Option<bool>,
    pub dry_run: Option<bool>,
}

impl SwitchChange {
    /// `current` with this change applied.
    pub fn apply(self, current: Switches) -> Switches {
        Switches {
            enabled: self.enabled.unwrap_or(current.enabled),
            dry_run: self.dry_run.unwrap_or(current.dry_run),
        }
    }
}

impl Limits {
    /// The switches these limits hold.
    pub fn switches(&self) -> Switches {
        Switches {
            enabled: self.enabled,
            dry_run: self.dry_run,
        }
    }

    /// These limits with `switches` applied.
    pub fn with(&self, switches: Option<Switches>) -> Self {
        let mut limits = self.clone();
        if let Some(s) = switches {
            limits.enabled = s.enabled;
            limits.dry_run = s.dry_run;
        }
        limits
    }
}

/// What a rule wants done, and to what.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub rule: &'a Rule,
    pub namespace: &'a str,
    /// The owning workload, `Kind/name` (`Deployment/api`), or `Pod/name` for a bare pod.
    pub owner: &'a str,
}

/// Why an action was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Disabled,
    ExcludedNamespace,
    /// In cooldown for this rule and workload until `until_ns`.
    Cooldown {
        until_ns: i64,
    },
    NamespaceBudget,
    GlobalBudget,
}

impl Refusal {
    /// A short, bounded label for metrics and the audit log.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::ExcludedNamespace => "excluded_namespace",
            Self::Cooldown { .. } => "cooldown",
            Self::NamespaceBudget => "namespace_budget",
            Self::GlobalBudget => "global_budget",
        }
    }

    /// Whether the refusal belongs in the audit log: a cooldown or a disabled engine refuses
    /// the same signal over and over, and is counted in metrics only.
    pub const fn audited(self) -> bool {
        matches!(
            self,
            Self::ExcludedNamespace | Self::NamespaceBudget | Self::GlobalBudget
        )
    }
}

/// The outcome of [`Safety::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The rule's action is `none`.
    Nothing,
    /// Carry out the action; the budget is spent and the cooldown started.
    Act(Action),
    /// Dry-run: record what would be done; nothing spent, the cooldown held.
    DryRun(Action),
    Refused(Refusal),
}

/// An hour, in nanoseconds: the budgets' window.
pub const HOUR_NS: i64 = 3_600_000_000_000;

/// What a cooldown holds: one rule on one workload (`Kind/name` in `namespace`; a workload's
/// name is unique only within its namespace).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Held {
    pub rule: String,
    pub namespace: String,
    pub owner: String,
}

impl Held {
    /// What `req` would hold.
    pub fn of(req: &Request<'_>) -> Self {
        Self {
            rule: req.rule.name.clone(),
            namespace: req.namespace.to_owned(),
            owner: req.owner.to_owned(),
        }
    }

    fn of_entry(e: &Entry) -> Self {
        Self {
            rule: e.rule.clone(),
            namespace: e.namespace.clone(),
            owner: e.owner.clone(),
        }
    }
}

/// The state the decisions keep: cooldowns and the actions of the last hour.
#[derive(Debug, Default, Clone)]
pub struct Safety {
    /// Until when (ns) each rule and workload is held.
    cooldowns: HashMap<Held, i64>,
    /// Actions taken in the last hour: when, and in which namespace.
    taken: VecDeque<(i64, String)>,
    /// Until when each refusal reason on a rule and workload stays out of the audit log.
    refusals: HashMap<(Held, &'static str), i64>,
}

impl Safety {
    /// Decides `req` at `now_ns` under `limits`, and records what it decided.
    pub fn decide(&mut self, limits: &Limits, req: &Request<'_>, now_ns: i64) -> Decision {
        if req.rule.action == Action::None {
            return Decision::Nothing;
        }
        if !limits.enabled {
            return Decision::Refused(Refusal::Disabled);
        }
        if limits
            .excluded_namespaces
            .iter()
            .any(|n| n == req.namespace)
        {
            return Decision::Refused(Refusal::ExcludedNamespace);
        }
        let key = Held::of(req);
        if let Some(&until_ns) = self.cooldowns.get(&key)
            && now_ns < until_ns
        {
            return Decision::Refused(Refusal::Cooldown { until_ns });
        }
        self.forget_before(now_ns - HOUR_NS);
        let in_namespace = self
            .taken
            .iter()
            .filter(|(_, ns)| ns == req.namespace)
            .count();
        if in_namespace >= limits.max_actions_per_namespace_per_hour as usize {
            return Decision::Refused(Refusal::NamespaceBudget);
        }
        if self.taken.len() >= limits.max_actions_per_hour as usize {
            return Decision::Refused(Refusal::GlobalBudget);
        }
        let until = now_ns.saturating_add(nanos(req.rule.cooldown));
        self.cooldowns.insert(key, until);
        if limits.dry_run {
            return Decision::DryRun(req.rule.action);
        }
        self.taken.push_back((now_ns, req.namespace.to_owned()));
        Decision::Act(req.rule.action)
    }

    /// Actions taken in the hour before `now_ns`, and those left in the global budget.
    pub fn budget(&mut self, limits: &Limits, now_ns: i64) -> (u32, u32) {
        self.forget_before(now_ns - HOUR_NS);
        let used = u32::try_from(self.taken.len()).unwrap_or(u32::MAX);
        (used, limits.max_actions_per_hour.saturating_sub(used))
    }

    /// Lifts the cooldown on `held`; returns whether there was one.
    pub fn clear_cooldown(&mut self, held: &Held) -> bool {
        self.cooldowns.remove(held).is_some()
    }

    /// Holds `held` until `until_ns` without spending the budget.
    pub fn hold(&mut self, held: Held, until_ns: i64) {
        self.cooldowns.insert(held, until_ns);
    }

    /// Until when `held` is held, if it is at `now_ns`.
    pub fn held_until(&self, held: &Held, now_ns: i64) -> Option<i64> {
        self.cooldowns
            .get(held)
            .copied()
            .filter(|until| *until > now_ns)
    }

    /// Gives back the budget of the action just taken at `at_ns` in `namespace`, when it
    /// turned out to need nothing done; its cooldown stays.
    pub fn refund(&mut self, namespace: &str, at_ns: i64) {
        if let Some(i) = self
            .taken
            .iter()
            .rposition(|(ts, ns)| *ts == at_ns && ns == namespace)
        {
            self.taken.remove(i);
        }
    }

    /// Whether a refusal for `reason` on `req`'s rule and workload is new enough to write to
    /// the audit log: once per the rule's cooldown, so that a spent budget or an excluded
    /// namespace is recorded, not repeated for every line.
    pub fn first_refusal(&mut self, req: &Request<'_>, reason: Refusal, now_ns: i64) -> bool {
        let key = (Held::of(req), reason.reason());
        match self.refusals.get(&key) {
            Some(&until) if now_ns < until => false,
            _ => {
                self.refusals
                    .insert(key, now_ns.saturating_add(nanos(req.rule.cooldown)));
                true
            }
        }
    }

    /// The state the audit log implies at `now_ns`: its holds still in force and the attempts
    /// of the last hour, so that a new leader keeps its predecessor's cooldowns and budget.
    /// Entries come in any order; a cleared cooldown lifts the holds written before it.
    /// [`audit::Filter::relevant_at`](crate::audit::Filter) selects the entries that matter.
    pub fn restore(entries: &[Entry], now_ns: i64) -> Self {
        let mut safety = Self::default();
        safety.rebuild(entries, now_ns);
        safety
    }

    /// Replaces the cooldowns and the hour's attempts with what `entries` imply at `now_ns`
    /// (see [`Self::restore`]), keeping which refusals were already reported.
    pub fn rebuild(&mut self, entries: &[Entry], now_ns: i64) {
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by_key(|e| (e.at_ns, e.id));
        self.cooldowns.clear();
        self.taken.clear();
        for e in sorted {
            if e.outcome == Outcome::CooldownCleared {
                self.clear_cooldown(&Held::of_entry(e));
                continue;
            }
            if let Some(until) = e.hold_until_ns
                && until > now_ns
            {
                self.hold(Held::of_entry(e), until);
            }
            if e.outcome.spent() && e.at_ns > now_ns - HOUR_NS {
                self.taken.push_back((e.at_ns, e.namespace.clone()));
            }
        }
    }

    /// Cooldowns in force at `now_ns`, soonest to end first.
    pub fn cooldowns(&self, now_ns: i64) -> Vec<(Held, i64)> {
        let mut held: Vec<_> = self
            .cooldowns
            .iter()
            .filter(|(_, until)| **until > now_ns)
            .map(|(h, until)| (h.clone(), *until))
            .collect();
        held.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        held
    }

    /// Drops expired cooldowns and refusal marks.
    pub fn expire(&mut self, now_ns: i64) {
        self.cooldowns.retain(|_, until| *until > now_ns);
        self.refusals.retain(|_, until| *until > now_ns);
    }

    fn forget_before(&mut self, cutoff_ns: i64) {
        while self.taken.front().is_some_and(|(ts, _)| *ts <= cutoff_ns) {
            self.taken.pop_front();
        }
    }
}

/// `d` in nanoseconds, as the decisions' clock counts (saturating: a cooldown of centuries is
/// forever).
pub fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
