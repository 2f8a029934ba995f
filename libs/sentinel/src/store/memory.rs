//! The in-memory store (the default): one compact record per fingerprint.
//!
//! Memory per unique error is what bounds this store, so a record holds names as 4-byte
//! symbols into one interner, the normal form once, and per sample only the timestamp, the
//! pod's symbol and the replaced values (the message is rebuilt from the normal form). The
//! benchmark measures the bytes per unique error.
//!
//! Bounds: errors whose last occurrence is older than the retention go at each
//! [`MemoryStore::purge`]; when a new error would exceed `max_errors`, the tenth of the
//! errors seen least recently is evicted first (upstream's rule, which keeps inserts O(1)
//! amortised), and the eviction is counted.

use std::collections::HashMap;

use super::{
    ErrorView, Filter, Occurrence, Page, SAMPLES, SampleView, Stats, rfc3339, sample_message,
};
use crate::fingerprint::Fingerprint;
use crate::rules::Priority;

/// A string's number in the interner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Sym(u32);

/// Names (namespaces, workloads, pods, containers, rules) stored once.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, Sym>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> Sym {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = Sym(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.names.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    fn get(&self, id: Sym) -> &str {
        self.names.get(id.0 as usize).map_or("", |s| s)
    }
}

#[derive(Debug)]
struct Sample {
    ts: i64,
    pod: Sym,
    values: Box<[u8]>,
}

#[derive(Debug)]
struct Record {
    namespace: Sym,
    workload: Sym,
    container: Sym,
    rule: Sym,
    priority: Priority,
    count: u64,
    first_seen: i64,
    last_seen: i64,
    normalized: Box<str>,
    /// `[0]` is the first occurrence; the rest the latest, newest last.
    samples: [Option<Sample>; SAMPLES],
}

/// The memory store.
#[derive(Debug)]
pub struct MemoryStore {
    errors: HashMap<Fingerprint, Record>,
    names: Interner,
    max_errors: usize,
    evicted: u64,
}

impl MemoryStore {
    /// A store that keeps at most `max_errors` errors.
    pub fn new(max_errors: usize) -> Self {
        Self {
            errors: HashMap::new(),
            names: Interner::default(),
            max_errors: max_errors.max(1),
            evicted: 0,
        }
    }

    /// Counts one occurrence.
    pub fn record(&mut self, o: &Occurrence<'_>) {
        if let Some(r) = self.errors.get_mut(&o.fingerprint) {
            r.count += 1;
            let pod = self.names.intern(o.pod);
            let sample = Sample {
                ts: o.timestamp_ns,
                pod,
                values: o.values.into(),
            };
            if o.timestamp_ns < r.first_seen {
                r.first_seen = o.timestamp_ns;
                r.samples[0] = Some(sample);
            } else if o.timestamp_ns >= r.last_seen {
                r.last_seen = o.timestamp_ns;
                r.samples[1..].rotate_left(1);
                r.samples[SAMPLES - 1] = Some(sample);
            }
            // The rule and priority follow the latest rules that saw the error.
            r.rule = self.names.intern(o.rule);
            r.priority = o.priority;
            return;
        }
        if self.errors.len() >= self.max_errors {
            self.evict();
        }
        let mut samples: [Option<Sample>; SAMPLES] = Default::default();
        samples[0] = Some(Sample {
            ts: o.timestamp_ns,
            pod: self.names.intern(o.pod),
            values: o.values.into(),
        });
        let record = Record {
            namespace: self.names.intern(o.namespace),
            workload: self.names.intern(o.workload),
            container: self.names.intern(o.container),
            rule: self.names.intern(o.rule),
            priority: o.priority,
            count: 1,
            first_seen: o.timestamp_ns,
            last_seen: o.timestamp_ns,
            normalized: o.normalized.into(),
            samples,
        };
        self.errors.insert(o.fingerprint, record);
    }

    fn evict(&mut self) {
        let n = (self.errors.len() / 10).max(1);
        let mut by_age: Vec<(i64, Fingerprint)> =
            self.errors.iter().map(|(f, r)| (r.last_seen, *f)).collect();
        by_age.select_nth_unstable(n - 1);
        for (_, f) in &by_age[..n] {
            self.errors.remove(f);
        }
        self.evicted += n as u64;
    }

    /// Removes errors last seen before `cutoff_ns`; returns how many.
    pub fn purge(&mut self, cutoff_ns: i64) -> usize {
        let before = self.errors.len();
        self.errors.retain(|_, r| r.last_seen >= cutoff_ns);
        before - self.errors.len()
    }

    /// Unique errors held.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Errors evicted by the `max_errors` bound so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// One error.
    pub fn get(&self, id: Fingerprint) -> Option<ErrorView> {
        self.errors.get(&id).map(|r| self.view(id, r))
    }

    /// The errors that pass `filter`, most urgent first, then most recently seen; with the
    /// total before paging.
    pub fn list(&self, filter: &Filter, page: Page) -> (Vec<ErrorView>, usize) {
        let mut hits: Vec<(&Fingerprint, &Record)> = self
            .errors
            .iter()
            .filter(|(_, r)| {
                let pod = self.latest(r).map_or("", |s| self.names.get(s.pod));
                filter.passes(
                    self.names.get(r.namespace),
                    self.names.get(r.workload),
                    pod,
                    r.priority,
                    self.names.get(r.rule),
                    r.last_seen,
                    || self.latest_message(r),
                )
            })
            .collect();
        hits.sort_unstable_by(|(fa, a), (fb, b)| {
            (a.priority, std::cmp::Reverse(a.last_seen), *fa).cmp(&(
                b.priority,
                std::cmp::Reverse(b.last_seen),
                *fb,
            ))
        });
        let total = hits.len();
        let skip = page.page.saturating_sub(1).saturating_mul(page.page_size);
        let views = hits
            .into_iter()
            .skip(skip)
            .take(page.page_size)
            .map(|(f, r)| self.view(*f, r))
            .collect();
        (views, total)
    }

    /// Totals.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        let mut last = None;
        for r in self.errors.values() {
            s.unique_errors += 1;
            s.occurrences += r.count;
            *s.by_priority.entry(r.priority).or_default() += r.count;
            *s.by_namespace
                .entry(self.names.get(r.namespace).to_owned())
                .or_default() += r.count;
            last = last.max(Some(r.last_seen));
        }
        s.last_seen = last.map(rfc3339);
        s
    }

    fn latest<'r>(&self, r: &'r Record) -> Option<&'r Sample> {
        r.samples.iter().rev().flatten().next()
    }

    fn latest_message(&self, r: &Record) -> String {
        self.latest(r).map_or_else(
            || r.normalized.to_string(),
            |s| sample_message(&r.normalized, &s.values),
        )
    }

    fn view(&self, id: Fingerprint, r: &Record) -> ErrorView {
        let samples: Vec<SampleView> = r
            .samples
            .iter()
            .flatten()
            .map(|s| SampleView {
                timestamp: rfc3339(s.ts),
                pod: self.names.get(s.pod).to_owned(),
                message: sample_message(&r.normalized, &s.values),
            })
            .collect();
        let latest = samples.last().cloned();
        ErrorView {
            id,
            namespace: self.names.get(r.namespace).to_owned(),
            workload: self.names.get(r.workload).to_owned(),
            container: self.names.get(r.container).to_owned(),
            pod: latest.as_ref().map(|s| s.pod.clone()).unwrap_or_default(),
            message: latest.map(|s| s.message).unwrap_or_default(),
            normalized: r.normalized.to_string(),
            rule: self.names.get(r.rule).to_owned(),
            priority: r.priority,
            count: r.count,
            first_seen: rfc3339(r.first_seen),
            last_seen: rfc3339(r.last_seen),
            samples,
        }
    }
}

#[cfg(test)]
mod tests;
