//! The remediation audit log: what was done, what would have been done in dry-run, and the
//! refusals that matter (research/sentinel.md §1.7: upstream writes a row for every error,
//! `none` included, and so buries the few that count).
//!
//! An entry also says until when it holds its rule and workload ([`Entry::hold_until_ns`]),
//! so that a replica that becomes the leader rebuilds the cooldowns and the hour's budget
//! from the log ([`crate::remediation::Safety::restore`]) instead of starting afresh.

use std::collections::VecDeque;

use serde::Serialize;

use crate::fingerprint::Fingerprint;

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failed,
    /// Dry-run: what would have been done; nothing was.
    DryRun,
    /// Attempted, and nothing needed doing (a scale already at its bound, a rollback to the
    /// template in place); the budget is not spent.
    Skipped,
    Refused,
    /// An operator lifted the cooldown of `rule` on `owner`.
    CooldownCleared,
}

impl Outcome {
    /// The names, as the API and metrics write them.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::DryRun => "dry_run",
            Self::Skipped => "skipped",
            Self::Refused => "refused",
            Self::CooldownCleared => "cooldown_cleared",
        }
    }

    /// Reads a name written by [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Success,
            Self::Failed,
            Self::DryRun,
            Self::Skipped,
            Self::Refused,
            Self::CooldownCleared,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }

    /// Whether the entry spent the hour's budget (an attempt, whatever its result).
    pub const fn spent(self) -> bool {
        matches!(self, Self::Success | Self::Failed)
    }
}

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Assigned by the store, increasing.
    pub id: u64,
    pub at_ns: i64,
    /// The error that asked for the action; `None` for an operator's entry.
    pub fingerprint: Option<Fingerprint>,
    pub rule: String,
    pub namespace: String,
    /// The pod the error came from.
    pub pod: String,
    /// The owning workload, `Kind/name`.
    pub owner: String,
    /// The action's name, as rules write it (`restart-pod`).
    pub action: String,
    pub outcome: Outcome,
    /// A refusal's bounded reason (`cooldown`, `global_budget`, `not_applicable`, ...).
    pub reason: Option<String>,
    /// What was done or why not, for people.
    pub detail: String,
    /// The replica that decided.
    pub replica: String,
    /// Until when (ns) this entry holds the rule on the owner.
    pub hold_until_ns: Option<i64>,
}

/// Which entries to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub fingerprint: Option<Fingerprint>,
    pub namespace: Option<String>,
    pub outcome: Option<Outcome>,
    /// Entries with an id above this one (for followers of the log).
    pub after_id: Option<u64>,
    /// Entries at or after this time.
    pub since_ns: Option<i64>,
    /// The entries that shape the remediation state at this time: those whose hold lasts
    /// past it (a cleared cooldown's entry holds until the hold it lifted would have ended),
    /// and the attempts of the hour before it.
    pub relevant_at_ns: Option<i64>,
}

impl Filter {
    /// Whether `e` passes.
    pub fn accepts(&self, e: &Entry) -> bool {
        self.fingerprint.is_none_or(|f| e.fingerprint == Some(f))
            && self.namespace.as_ref().is_none_or(|n| *n == e.namespace)
            && self.outcome.is_none_or(|o| o == e.outcome)
            && self.after_id.is_none_or(|id| e.id > id)
            && self.since_ns.is_none_or(|t| e.at_ns >= t)
            && self.relevant_at_ns.is_none_or(|t| {
                e.hold_until_ns.is_some_and(|until| until > t)
                    || (e.outcome.spent() && e.at_ns > t - crate::remediation::HOUR_NS)
            })
    }
}

/// The audit log in memory: the newest `capacity` entries.
#[derive(Debug)]
pub struct MemoryLog {
    entries: VecDeque<Entry>,
    capacity: usize,
    next_id: u64,
}

impl MemoryLog {
    /// A log keeping at most `capacity` entries (the oldest go first).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            next_id: 1,
        }
    }

    /// Appends `entry` under the next id; returns the id.
    pub fn append(&mut self, mut entry: Entry) -> u64 {
        entry.id = self.next_id;
        self.next_id += 1;
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        let id = entry.id;
        self.entries.push_back(entry);
        id
    }

    /// Forgets entries before `cutoff_ns`; returns how many.
    pub fn purge(&mut self, cutoff_ns: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| e.at_ns >= cutoff_ns);
        before - self.entries.len()
    }

    /// Entries passing `filter`, newest first, `offset` skipped and at most `limit`; with the
    /// number that pass.
    pub fn list(&self, filter: &Filter, offset: usize, limit: usize) -> (Vec<Entry>, usize) {
        let passing = self.entries.iter().rev().filter(|e| filter.accepts(e));
        let total = passing.clone().count();
        (passing.skip(offset).take(limit).cloned().collect(), total)
    }
}

/// An entry for tests: rule `restart` acted (or not) on `Deployment/api` in `ns`.
#[cfg(test)]
pub(crate) fn sample(at_ns: i64, outcome: Outcome, ns: &str, hold_until_ns: Option<i64>) -> Entry {
    Entry {
        id: 0,
        at_ns,
        fingerprint: None,
        rule: "restart".into(),
        namespace: ns.into(),
        pod: "api-1".into(),
        owner: "Deployment/api".into(),
        action: "restart-pod".into(),
        outcome,
        reason: None,
        detail: String::new(),
        replica: "a".into(),
        hold_until_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ns: &str, outcome: Outcome) -> Entry {
        sample(10, outcome, ns, None)
    }

    #[test]
    fn keeps_the_newest_and_lists_newest_first() {
        let mut log = MemoryLog::new(2);
        log.append(entry("a", Outcome::Success));
        log.append(entry("b", Outcome::Failed));
        log.append(entry("c", Outcome::DryRun));
        let (all, total) = log.list(&Filter::default(), 0, 10);
        assert_eq!(total, 2);
        assert_eq!(
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            [3, 2],
            "oldest dropped"
        );
        let after = Filter {
            after_id: Some(2),
            ..Filter::default()
        };
        assert_eq!(log.list(&after, 0, 10).0.len(), 1);
        let failed = Filter {
            outcome: Some(Outcome::Failed),
            namespace: Some("b".into()),
            ..Filter::default()
        };
        assert_eq!(log.list(&failed, 0, 10).1, 1);
        assert_eq!(log.list(&Filter::default(), 1, 10).0[0].id, 2, "offset");
    }

    #[test]
    fn outcome_names_read_back() {
        for o in [
            Outcome::Success,
            Outcome::Failed,
            Outcome::DryRun,
            Outcome::Skipped,
            Outcome::Refused,
            Outcome::CooldownCleared,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("ok"), None);
    }
}
