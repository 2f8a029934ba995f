//! Benchmark: lines per second through extraction, matching and fingerprinting on one core,
//! with the shipped rules over a generated, realistic mix of error logs
//! (`bulwark_test_util::logs`), against upstream's algorithm in the same run; and the memory
//! store's bytes per unique error.
//!
//! The lines are laid out as the Loki client hands them to ingestion: one `Arc<Labels>` per
//! stream and each line's text allocated in turn, as a page is decoded.
//!
//! The baseline is upstream's per-line work (research/sentinel.md §1.4-1.5) in Go, with Go's
//! regexp as upstream runs it (`benches/upstream/main.go`, built and run when `go` is on
//! PATH), over the same lines. The same algorithm also runs in Rust, with every regex
//! compiled once (upstream compiles some per line, so this flatters it): the message found by
//! upstream's regexes, each rule's regex tried in turn against the message and the line with
//! the keywords lower-cased per rule, upstream's five normalising replacements, its pod-name
//! rules and the SHA-256 fingerprint. A third figure isolates the matching: our extraction and
//! fingerprinting with the rule loop in place of the one-pass set.
//!
//! Targets (issue 17): at least 1,000,000 lines/s and 10x the baseline; under 300 bytes per
//! unique error in the memory store. Run with `cargo bench -p sentinel --bench detect`;
//! `-- stages` prints only where a line's time goes, `-- ours` only our throughput (for a
//! profiler: `perf record --call-graph dwarf`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use bulwark_sentinel::detect::{Detection, Detector, Stream};
use bulwark_sentinel::extract;
use bulwark_sentinel::fingerprint::{Fingerprint, workload};
use bulwark_sentinel::model::Labels;
use bulwark_sentinel::normalize::{Normalized, Normalizer};
use bulwark_sentinel::rules::{Rule, RuleSet};
use bulwark_sentinel::store::Occurrence;
use bulwark_sentinel::store::memory::MemoryStore;
use regex::Regex;
use sha2::{Digest, Sha256};

/// Counts live heap bytes, to weigh the store.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

#[allow(unsafe_code)]
// SAFETY: forwards to the system allocator unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout, as the caller guarantees.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as for `realloc` itself.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const LINES: usize = 200_000;
const RUNS: usize = 5;
/// Lines per Loki page, as ingestion gets them (its default limit).
const PAGE: usize = 1000;
const TARGET_LPS: f64 = 1_000_000.0;
const TARGET_RATIO: f64 = 10.0;
const TARGET_BYTES: f64 = 300.0;

fn main() {
    let (corpus, labels) = as_decoded(bulwark_test_util::logs::generate(
        17,
        LINES,
        1_764_892_800_000_000_000,
    ));
    let bytes: usize = corpus.iter().map(|l| l.line.len()).sum();
    println!(
        "corpus: {LINES} lines, {:.0} bytes per line on average",
        bytes as f64 / LINES as f64
    );

    let rules = RuleSet::defaults();
    let detector = Detector::new(rules.clone());
    // `cargo bench -p sentinel --bench detect -- stages`: only where a line's time goes.
    if std::env::args().any(|a| a == "stages") {
        stages(&detector, &corpus, &labels);
        return;
    }
    let ours = best(|| {
        let mut acc = 0u64;
        by_pages(&detector, &corpus, &labels, |d| acc ^= d.fingerprint.0);
        acc
    });
    // `-- ours`: only our throughput (for a profiler).
    if std::env::args().any(|a| a == "ours") {
        println!("one-pass (ours): {:.0} lines/s", LINES as f64 / ours);
        return;
    }
    let upstream = Upstream::new(&rules);
    let normalizer = Normalizer::new();
    let loop_only = best(|| {
        let mut acc = 0u64;
        let mut n = Normalized::default();
        let mut buf = String::new();
        for (l, labels) in corpus.iter().zip(&labels) {
            let s = labels.source();
            let read = extract::read(&l.line);
            let rule = upstream.first_match(s.namespace, labels, &read.parts(), &l.line);
            normalizer.normalize_into(read.text(&mut buf), &mut n);
            let f = Fingerprint::new(s.namespace, workload(s.pod), s.container, &n.text);
            acc ^= f.0 ^ rule.map_or(0, |r| r.name.len() as u64);
        }
        acc
    });
    let baseline = best(|| {
        let mut acc = 0u64;
        for (l, labels) in corpus.iter().zip(&labels) {
            acc ^= upstream.line(labels, &l.line);
        }
        acc
    });
    // Ours (as measured: a page at a time) and the baseline must agree on each line's rule.
    let mut ours_rules = Vec::with_capacity(LINES);
    by_pages(&detector, &corpus, &labels, |d| {
        ours_rules.push(d.rule_name().to_owned());
    });
    for ((l, labels), ours) in corpus.iter().zip(&labels).zip(&ours_rules) {
        let theirs = upstream
            .first_match(
                labels.source().namespace,
                labels,
                &extract::read(&l.line).parts(),
                &l.line,
            )
            .map_or("default", |r| r.name.as_str());
        assert_eq!(ours, theirs, "rule for {:?}", l.line);
    }

    stages(&detector, &corpus, &labels);

    let go = go_upstream(&rules, &corpus);

    let lps = |secs: f64| LINES as f64 / secs;
    println!("one-pass (ours):              {:>10.0} lines/s", lps(ours));
    println!(
        "rule loop, our extraction:    {:>10.0} lines/s",
        lps(loop_only)
    );
    println!(
        "upstream's algorithm:         {:>10.0} lines/s",
        lps(baseline)
    );
    match go {
        Some(go) => println!("upstream's algorithm in Go:   {go:>10.0} lines/s"),
        None => println!("upstream's algorithm in Go:   skipped (no `go` on PATH)"),
    }
    println!(
        "ratio against upstream in Go: {} (target {TARGET_RATIO}x); in Rust: {:.1}x; against the rule loop alone: {:.1}x",
        go.map_or("skipped".to_owned(), |g| format!("{:.1}x", lps(ours) / g)),
        baseline / ours,
        loop_only / ours
    );
    println!(
        "throughput: {:.2} M lines/s (target {:.1}) {}",
        lps(ours) / 1e6,
        TARGET_LPS / 1e6,
        verdict(lps(ours) >= TARGET_LPS && go.is_none_or(|g| lps(ours) / g >= TARGET_RATIO))
    );

    let per_error = store_bytes(&detector, &corpus, &labels);
    println!(
        "memory store: {per_error:.0} bytes per unique error (target < {TARGET_BYTES}) {}",
        verdict(per_error < TARGET_BYTES)
    );
}

/// The lines as the Loki client hands them to ingestion: one shared `Arc<Labels>` per
/// stream, and each line's text allocated in turn as a page is decoded (the generator's
/// scattered allocations would measure cache misses that ingestion does not have).
/// Detects the corpus as ingestion does: a page at a time, each line with its stream's source
/// and workload.
fn by_pages(
    detector: &Detector,
    corpus: &[bulwark_test_util::logs::LogLine],
    labels: &[Arc<Labels>],
    mut each: impl FnMut(Detection<'_>),
) {
    let mut ws = detector.workspace();
    let mut page = Vec::with_capacity(PAGE);
    for (lines, labels) in corpus.chunks(PAGE).zip(labels.chunks(PAGE)) {
        page.clear();
        page.extend(
            lines
                .iter()
                .zip(labels)
                .map(|(l, labels)| (Stream::new(labels), l.line.as_str())),
        );
        detector.detect_each(&mut ws, &page, |_, d| each(d));
    }
}

fn as_decoded(
    generated: Vec<bulwark_test_util::logs::LogLine>,
) -> (Vec<bulwark_test_util::logs::LogLine>, Vec<Arc<Labels>>) {
    let mut streams: HashMap<Vec<(String, String)>, Arc<Labels>> = HashMap::new();
    let labels = generated
        .iter()
        .map(|l| {
            let stream = streams
                .entry(l.labels.clone())
                .or_insert_with(|| Arc::new(Labels::new(l.labels.iter().cloned())));
            Arc::clone(stream)
        })
        .collect();
    let lines = generated.iter().map(|l| l.line.clone()).collect::<Vec<_>>();
    let corpus = generated
        .into_iter()
        .zip(lines)
        .map(|(l, line)| bulwark_test_util::logs::LogLine { line, ..l })
        .collect();
    (corpus, labels)
}

/// Where a line's time goes: each stage alone, in nanoseconds per line.
fn stages(
    detector: &Detector,
    corpus: &[bulwark_test_util::logs::LogLine],
    labels: &[Arc<Labels>],
) {
    let reads: Vec<extract::Message<'_>> = corpus.iter().map(|l| extract::read(&l.line)).collect();
    let messages: Vec<String> = reads
        .iter()
        .map(|r| r.clone().into_text().into_owned())
        .collect();
    let per_line = |secs: f64| secs * 1e9 / LINES as f64;
    let extraction = best(|| {
        corpus
            .iter()
            .map(|l| extract::message(&l.line).len() as u64)
            .sum()
    });
    let rules = detector.rules();
    // As detection does: a page's lines scanned first, then each line's rule.
    let matching = best(|| {
        let mut scratch = rules.matcher().scratch();
        let mut acc = 0;
        let mut i = 0;
        for page in corpus.chunks(PAGE) {
            let texts: Vec<&str> = page.iter().map(|l| l.line.as_str()).collect();
            let mut scanned = rules.scan_page(&texts, &mut scratch);
            for k in 0..texts.len() {
                let namespace = labels[i].source().namespace;
                acc += scanned
                    .first_match(k, namespace, &labels[i], &reads[i].parts())
                    .map_or(0, |r| r.name.len() as u64);
                i += 1;
            }
        }
        acc
    });
    let normalizer = Normalizer::new();
    let mut n = Normalized::default();
    let normalizing = best(|| {
        messages
            .iter()
            .map(|m| {
                normalizer.normalize_into(m, &mut n);
                n.text.len() as u64
            })
            .sum()
    });
    // As detection does: the normal form, with the stream's source and workload.
    let normal_forms: Vec<String> = messages.iter().map(|m| normalizer.normalize(m)).collect();
    let fingerprinting = best(|| {
        normal_forms
            .iter()
            .zip(labels)
            .map(|(n, labels)| {
                let s = labels.source();
                Fingerprint::new(s.namespace, labels.workload(), s.container, n).0
            })
            .fold(0, |a, b| a ^ b)
    });
    let line_bytes = corpus.iter().map(|l| l.line.len()).sum::<usize>() as f64;
    let message_bytes = messages.iter().map(String::len).sum::<usize>() as f64;
    println!(
        "per line: extraction {:.0} ns, matching {:.0} ns ({:.1} ns per byte of line), normalising {:.0} ns ({:.1} ns per byte of message), fingerprint {:.0} ns",
        per_line(extraction),
        per_line(matching),
        matching * 1e9 / line_bytes,
        per_line(normalizing),
        normalizing * 1e9 / message_bytes,
        per_line(fingerprinting)
    );
}

/// Upstream's algorithm in Go (`benches/upstream`, Go's regexp as upstream runs it) over the
/// first 50,000 lines: lines per second, or `None` without a Go toolchain.
fn go_upstream(rules: &RuleSet, corpus: &[bulwark_test_util::logs::LogLine]) -> Option<f64> {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("upstream");
    // Relative to the package root, where cargo runs benchmarks.
    let src = "benches/upstream";
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(src)
        .env("GOFLAGS", "-mod=mod")
        .env("GOCACHE", dir.path().join("gocache"))
        .status();
    if !built.is_ok_and(|s| s.success()) {
        return None;
    }
    let upstream_rules: Vec<serde_json::Value> = rules
        .rules()
        .iter()
        .filter(|r| r.enabled)
        .map(|r| {
            // Go's `\b` is ASCII already, and Go has no `(?-u:...)`.
            let pattern = r
                .pattern
                .clone()
                .unwrap_or_default()
                .replace("(?-u:\\b)", "\\b");
            serde_json::json!({"name": r.name, "pattern": pattern, "keywords": r.keywords})
        })
        .collect();
    std::fs::write(
        dir.path().join("rules.json"),
        serde_json::to_vec(&upstream_rules).unwrap(),
    )
    .unwrap();
    let mut jsonl = String::new();
    for l in corpus.iter().take(50_000) {
        let get = |k: &str| {
            l.labels
                .iter()
                .find(|(n, _)| n == k)
                .map_or("", |(_, v)| v.as_str())
        };
        jsonl.push_str(
            &serde_json::json!({"namespace": get("namespace"), "pod": get("pod"), "container": get("container"), "line": l.line})
                .to_string(),
        );
        jsonl.push('\n');
    }
    std::fs::write(dir.path().join("lines.jsonl"), jsonl).unwrap();
    let out = std::process::Command::new(&exe)
        .arg(dir.path().join("rules.json"))
        .arg(dir.path().join("lines.jsonl"))
        .arg("3")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next()?.parse().ok()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

/// The best of [`RUNS`] timings of `f`, in seconds, after a warm-up.
fn best(mut f: impl FnMut() -> u64) -> f64 {
    black_box(f());
    (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Heap bytes per unique error after recording every line of the corpus, plus lines of
/// other seeds until there are 20,000 unique errors.
fn store_bytes(
    detector: &Detector,
    corpus: &[bulwark_test_util::logs::LogLine],
    labels: &[Arc<Labels>],
) -> f64 {
    let mut ws = detector.workspace();
    let (extra, extra_labels) = as_decoded(bulwark_test_util::logs::generate(
        18,
        LINES,
        1_764_979_200_000_000_000,
    ));
    // Detect first and weigh only the store: the regex caches grow as they meet new lines.
    let detected: Vec<_> = corpus
        .iter()
        .zip(labels)
        .chain(extra.iter().zip(&extra_labels))
        .map(|(l, labels)| {
            let d = detector.detect(&mut ws, &Stream::new(labels), &l.line);
            (
                l.timestamp_ns,
                d.fingerprint,
                labels,
                d.workload.to_owned(),
                d.rule_name().to_owned(),
                d.priority(),
                d.normalized.text.clone(),
                d.values(),
            )
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    let mut store = MemoryStore::new(1_000_000);
    for (ts, fingerprint, labels, workload, rule, priority, normalized, values) in &detected {
        let s = labels.source();
        store.record(&Occurrence {
            timestamp_ns: *ts,
            fingerprint: *fingerprint,
            namespace: s.namespace,
            workload,
            pod: s.pod,
            container: s.container,
            rule,
            priority: *priority,
            normalized,
            values,
        });
    }
    let lines = detected.len();
    let used = LIVE.load(Ordering::Relaxed) - before;
    let unique = store.len();
    println!(
        "memory store: {lines} lines, {unique} unique errors, {:.1} MiB",
        used as f64 / 1024.0 / 1024.0
    );
    println!("memory store: {:?}", store.footprint());
    black_box(&store);
    used as f64 / unique as f64
}

/// Upstream's per-line algorithm, regexes compiled once.
struct Upstream<'r> {
    rules: Vec<(&'r Rule, Option<Regex>)>,
    fields: Vec<Regex>,
    after_keyword: Regex,
    after_header: Regex,
    timestamp: Regex,
    uuid: Regex,
    hex: Regex,
    ip: Regex,
    number: Regex,
    deployment: Regex,
    statefulset: Regex,
    job: Regex,
}

impl<'r> Upstream<'r> {
    fn new(rules: &'r RuleSet) -> Self {
        let re = |p: &str| Regex::new(p).unwrap();
        Self {
            rules: rules
                .rules()
                .iter()
                .filter(|r| r.enabled)
                .map(|r| (r, r.pattern.as_deref().map(re)))
                .collect(),
            fields: ["message", "msg", "error", "err"]
                .iter()
                .map(|f| re(&format!(r#""{f}"\s*:\s*"([^"]*)""#)))
                .collect(),
            after_keyword: re(r"(?i)\b(error|fatal|panic|exception|fail(ed|ure)?)\b[:\s]+(.*)"),
            after_header: re(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}\S*\s+(?:\w+\s+)?(.*)"),
            timestamp: re(r"\d{4}-\d{2}-\d{2}[T\s]\d{2}:\d{2}:\d{2}[.\d]*[Z]?"),
            uuid: re(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
            hex: re(r"[0-9a-f]{24,}"),
            ip: re(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(:\d+)?"),
            number: re(r"\d{6,}"),
            deployment: re(r"^(.+)-[a-z0-9]{8,10}-[a-z0-9]{5}$"),
            statefulset: re(r"^(.+)-\d+$"),
            job: re(r"^(.+)-[a-z0-9]{5}$"),
        }
    }

    /// Upstream's rule loop: each enabled rule in turn, each criterion in turn.
    fn first_match(
        &self,
        namespace: &str,
        labels: &Labels,
        messages: &[&str],
        line: &str,
    ) -> Option<&'r Rule> {
        for (rule, re) in &self.rules {
            if !rule.namespaces.passes(namespace) {
                continue;
            }
            if !rule.labels.iter().all(|(k, t)| t.passes(labels.get(k))) {
                continue;
            }
            if let Some(re) = re
                && !messages.iter().any(|m| re.is_match(m))
                && !re.is_match(line)
            {
                continue;
            }
            if !rule.keywords.is_empty() {
                let hay = format!("{} {line}", messages.join(" ")).to_lowercase();
                if !rule
                    .keywords
                    .iter()
                    .any(|k| hay.contains(&k.to_lowercase()))
                {
                    continue;
                }
            }
            return Some(rule);
        }
        None
    }

    fn message<'l>(&self, line: &'l str) -> &'l str {
        for f in &self.fields {
            if let Some(c) = f.captures(line) {
                return c.get(1).map_or("", |m| m.as_str());
            }
        }
        if let Some(c) = self.after_keyword.captures(line) {
            return c.get(3).map_or("", |m| m.as_str());
        }
        if let Some(c) = self.after_header.captures(line) {
            return c.get(1).map_or("", |m| m.as_str());
        }
        let mut end = line.len().min(500);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        &line[..end]
    }

    fn pod_base<'p>(&self, pod: &'p str) -> &'p str {
        for re in [&self.deployment, &self.statefulset, &self.job] {
            if let Some(c) = re.captures(pod) {
                return c.get(1).map_or(pod, |m| m.as_str());
            }
        }
        pod
    }

    fn line(&self, labels: &Labels, line: &str) -> u64 {
        let s = labels.source();
        let message = self.message(line);
        let rule = self.first_match(s.namespace, labels, &[message], line);
        let m = self.timestamp.replace_all(message, "");
        let m = self.uuid.replace_all(&m, "<UUID>");
        let m = self.hex.replace_all(&m, "<ID>");
        let m = self.ip.replace_all(&m, "<IP>");
        let m = self.number.replace_all(&m, "<NUM>");
        let key = format!(
            "{}|{}|{}|{}",
            s.namespace,
            self.pod_base(s.pod),
            s.container,
            m.trim()
        );
        let digest = Sha256::digest(key.as_bytes());
        u64::from_be_bytes(digest[..8].try_into().unwrap())
            ^ rule.map_or(0, |r| r.name.len() as u64)
    }
}
