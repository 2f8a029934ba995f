//! What the store keeps and answers, shared by its backends: one record per fingerprint with
//! exact counts, first and last seen, and a few samples; the filters and pages of the read
//! API; the stats.

use serde::Serialize;

use crate::fingerprint::Fingerprint;
use crate::normalize;
use crate::rules::Priority;

pub mod memory;

/// How many samples an error keeps: its first occurrence and the latest ones.
pub const SAMPLES: usize = 3;

/// One line, as the store records it.
#[derive(Debug, Clone)]
pub struct Occurrence<'a> {
    pub timestamp_ns: i64,
    pub fingerprint: Fingerprint,
    pub namespace: &'a str,
    pub workload: &'a str,
    pub pod: &'a str,
    pub container: &'a str,
    pub rule: &'a str,
    pub priority: Priority,
    pub normalized: &'a str,
    /// The message's replaced values ([`normalize::Normalized::values`]).
    pub values: &'a [u8],
}

/// One occurrence kept as an example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleView {
    pub timestamp: String,
    pub pod: String,
    pub message: String,
}

/// An error as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorView {
    /// The fingerprint, which is also the id in `/api/errors/{id}`.
    pub id: Fingerprint,
    pub namespace: String,
    pub workload: String,
    pub container: String,
    /// The pod of the latest occurrence.
    pub pod: String,
    /// The latest occurrence's message.
    pub message: String,
    pub normalized: String,
    pub rule: String,
    pub priority: Priority,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    pub samples: Vec<SampleView>,
}

/// `GET /api/errors` filters; each given one must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub namespace: Option<String>,
    pub workload: Option<String>,
    /// A substring of the latest pod's name.
    pub pod: Option<String>,
    pub priority: Option<Priority>,
    pub rule: Option<String>,
    /// Last seen at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// A case-insensitive substring of the message, pod, workload or namespace.
    pub search: Option<String>,
}

/// A page of a listing: 1-based page number and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: usize,
    pub page_size: usize,
}

/// Totals for the overview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub unique_errors: u64,
    pub occurrences: u64,
    pub by_priority: std::collections::BTreeMap<Priority, u64>,
    pub by_namespace: std::collections::BTreeMap<String, u64>,
    pub last_seen: Option<String>,
}

/// The samples an error keeps after `new`: its first occurrence and the [`SAMPLES`]` - 1`
/// latest, by timestamp, in timestamp order. `kept` must be what this returned before (or
/// empty); then the result is the same whatever order occurrences arrive in.
pub fn merge_samples<S>(kept: Vec<(i64, S)>, new: (i64, S)) -> Vec<(i64, S)> {
    let mut all = kept;
    // After every sample with the same time: among equal times the later arrival is newer.
    let at = all.partition_point(|(ts, _)| *ts <= new.0);
    all.insert(at, new);
    if all.len() > SAMPLES {
        // Keep the first; drop the oldest of the rest.
        all.remove(1);
    }
    all
}

/// RFC 3339 with nanoseconds, in UTC.
pub fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map_or_else(|_| ns.to_string(), |t| t.to_string())
}

/// The message a sample stood for, or its normal form when the values do not fit it.
pub fn sample_message(normalized: &str, values: &[u8]) -> String {
    normalize::rebuild(normalized, values).unwrap_or_else(|| normalized.to_owned())
}

impl Filter {
    /// Whether the error with these fields passes.
    #[allow(clippy::too_many_arguments)]
    pub fn passes(
        &self,
        namespace: &str,
        workload: &str,
        pod: &str,
        priority: Priority,
        rule: &str,
        last_seen_ns: i64,
        message: impl FnOnce() -> String,
    ) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        if !(eq(&self.namespace, namespace) && eq(&self.workload, workload) && eq(&self.rule, rule))
        {
            return false;
        }
        if self.pod.as_deref().is_some_and(|p| !pod.contains(p))
            || self.priority.is_some_and(|p| p != priority)
            || self.since_ns.is_some_and(|s| last_seen_ns < s)
        {
            return false;
        }
        match &self.search {
            None => true,
            Some(s) => {
                let s = s.to_lowercase();
                [namespace, workload, pod]
                    .iter()
                    .any(|f| f.to_lowercase().contains(&s))
                    || message().to_lowercase().contains(&s)
            }
        }
    }
}
