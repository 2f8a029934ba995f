//! The in-memory store (the default): one compact record per fingerprint.
//!
//! Memory per unique error is what bounds this store, so a record holds names and its normal
//! form as 4-byte symbols into one interner (the same error text recurs across workloads),
//! and its samples packed into one allocation, each only the timestamp, the pod's symbol and
//! the replaced values (the message is rebuilt from the normal form). The benchmark
//! (`cargo bench -p sentinel`) measures the bytes per unique error.
//!
//! The interner keeps every name it was given until [`MemoryStore::purge`] finds it holds
//! more than twice the names the records use, and rebuilds it then.
//!
//! Bounds: errors whose last occurrence is older than the retention go at each
//! [`MemoryStore::purge`]; when a new error would exceed `max_errors`, the tenth of the
//! errors seen least recently is evicted first (upstream's rule, which keeps inserts O(1)
//! amortised), and the eviction is counted.

use std::collections::HashMap;

use super::{ErrorView, Filter, Occurrence, Page, SampleView, Stats, rfc3339, sample_message};
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
struct Record {
    namespace: Sym,
    workload: Sym,
    container: Sym,
    rule: Sym,
    /// Interned too: one library's error text recurs across workloads and namespaces.
    normalized: Sym,
    priority: Priority,
    count: u64,
    first_seen: i64,
    last_seen: i64,
    /// Up to [`super::SAMPLES`] samples, the first occurrence first and then the latest, newest
    /// last, packed into one allocation (see [`Samples`]).
    samples: Box<[u8]>,
}

/// One sample as stored: its time, its pod, and the values its message had.
#[derive(Debug, Clone, Copy)]
struct Sample<'a> {
    ts: i64,
    pod: Sym,
    values: &'a [u8],
}

/// The packed samples: per sample the timestamp (8 bytes, little-endian), the pod's symbol
/// (4 bytes), the values' length (4 bytes) and the values.
struct Samples<'a>(&'a [u8]);

impl<'a> Iterator for Samples<'a> {
    type Item = Sample<'a>;

    fn next(&mut self) -> Option<Sample<'a>> {
        let (head, rest) = self.0.split_at_checked(16)?;
        let ts = i64::from_le_bytes(head[..8].try_into().ok()?);
        let pod = Sym(u32::from_le_bytes(head[8..12].try_into().ok()?));
        let len = u32::from_le_bytes(head[12..16].try_into().ok()?) as usize;
        let (values, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(Sample { ts, pod, values })
    }
}

fn pack<'a>(samples: impl IntoIterator<Item = Sample<'a>>) -> Box<[u8]> {
    let mut out = Vec::new();
    for s in samples {
        out.extend_from_slice(&s.ts.to_le_bytes());
        out.extend_from_slice(&s.pod.0.to_le_bytes());
        out.extend_from_slice(&u32::try_from(s.values.len()).unwrap_or(0).to_le_bytes());
        out.extend_from_slice(if s.values.len() > u32::MAX as usize {
            &[]
        } else {
            s.values
        });
    }
    out.into_boxed_slice()
}

/// Where the memory store's bytes are (see [`MemoryStore::footprint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    /// The table of records, by capacity.
    pub records: usize,
    /// The packed samples.
    pub samples: usize,
    /// Distinct names interned, and their bytes with both of the interner's copies.
    pub names: usize,
    pub name_bytes: usize,
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
        let pod = self.names.intern(o.pod);
        let new = Sample {
            ts: o.timestamp_ns,
            pod,
            values: o.values,
        };
        if let Some(r) = self.errors.get_mut(&o.fingerprint) {
            r.count += 1;
            r.first_seen = r.first_seen.min(o.timestamp_ns);
            r.last_seen = r.last_seen.max(o.timestamp_ns);
            let kept: Vec<(i64, Sample<'_>)> = Samples(&r.samples).map(|s| (s.ts, s)).collect();
            let merged = super::merge_samples(kept, (o.timestamp_ns, new));
            r.samples = pack(merged.into_iter().map(|(_, s)| s));
            // The rule and priority follow the latest rules that saw the error.
            r.rule = self.names.intern(o.rule);
            r.priority = o.priority;
            return;
        }
        if self.errors.len() >= self.max_errors {
            self.evict();
        }
        let record = Record {
            namespace: self.names.intern(o.namespace),
            workload: self.names.intern(o.workload),
            container: self.names.intern(o.container),
            rule: self.names.intern(o.rule),
            normalized: self.names.intern(o.normalized),
            priority: o.priority,
            count: 1,
            first_seen: o.timestamp_ns,
            last_seen: o.timestamp_ns,
            samples: pack([new]),
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
        self.compact_names();
        before - self.errors.len()
    }

    /// Rebuilds the interner when it holds more than twice the names the records use.
    fn compact_names(&mut self) {
        let mut used = std::collections::HashSet::new();
        for r in self.errors.values() {
            used.extend([r.namespace, r.workload, r.container, r.rule, r.normalized]);
            used.extend(Samples(&r.samples).map(|s| s.pod));
        }
        if self.names.names.len() <= 2 * used.len() {
            return;
        }
        let old = std::mem::take(&mut self.names);
        let names = &mut self.names;
        let mut map = |sym: Sym| names.intern(old.get(sym));
        for r in self.errors.values_mut() {
            r.namespace = map(r.namespace);
            r.workload = map(r.workload);
            r.container = map(r.container);
            r.rule = map(r.rule);
            r.normalized = map(r.normalized);
            let samples: Vec<Sample<'_>> = Samples(&r.samples)
                .map(|s| Sample {
                    pod: map(s.pod),
                    ..s
                })
                .collect();
            r.samples = pack(samples);
        }
    }

    /// Unique errors held.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// An estimate of the heap bytes held: records, packed samples, names.
    pub fn footprint(&self) -> Footprint {
        let record = std::mem::size_of::<(Fingerprint, Record)>() + 1;
        Footprint {
            records: self.errors.capacity() * record,
            samples: self.errors.values().map(|r| r.samples.len()).sum(),
            names: self.names.names.len(),
            name_bytes: self
                .names
                .names
                .iter()
                .map(|n| 2 * n.len() + 2 * std::mem::size_of::<Box<str>>() + 8)
                .sum(),
        }
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

    fn latest<'r>(&self, r: &'r Record) -> Option<Sample<'r>> {
        Samples(&r.samples).last()
    }

    fn latest_message(&self, r: &Record) -> String {
        let normalized = self.names.get(r.normalized);
        self.latest(r).map_or_else(
            || normalized.to_owned(),
            |s| sample_message(normalized, s.values),
        )
    }

    fn view(&self, id: Fingerprint, r: &Record) -> ErrorView {
        let normalized = self.names.get(r.normalized);
        let samples: Vec<SampleView> = Samples(&r.samples)
            .map(|s| SampleView {
                timestamp: rfc3339(s.ts),
                pod: self.names.get(s.pod).to_owned(),
                message: sample_message(normalized, s.values),
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
            normalized: normalized.to_owned(),
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
