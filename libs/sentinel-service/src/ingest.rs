//! The poll loop: every `poll_interval`, read Loki from the cursor to now, detect each new
//! line, count it in the store; on a failure retry with backoff and report it on `/ready`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulwark_loki::{Client, Cursor, Entry, PageError, Window, read_window};
use bulwark_sentinel::detect::{Stream, Workspace};
use bulwark_sentinel::store::Occurrence;
use bulwark_sentinel::store::memory::MemoryStore;
use tokio_util::sync::CancellationToken;

use crate::metrics;
use crate::rules::{Loaded, Rules, now_ns};

/// What the poll loop needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub query: String,
    pub poll_interval: Duration,
    pub lookback: Duration,
    pub overlap: Duration,
    pub limit: u32,
    pub retention: Duration,
}

/// The last poll's outcome, for `/ready`.
#[derive(Debug, Default)]
pub struct Status {
    problem: Mutex<Option<String>>,
}

impl Status {
    /// `None` when the last poll read its window whole.
    pub fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }
}

/// Polls until `stop`, starting `lookback` before now.
pub async fn run(
    client: Client,
    settings: Settings,
    rules: Arc<Rules>,
    store: Arc<Mutex<MemoryStore>>,
    status: Arc<Status>,
    stop: CancellationToken,
) {
    let mut cursor = Cursor::new(now_ns() - nanos(settings.lookback));
    let mut backoff = Duration::from_secs(1);
    let mut last_purge = Instant::now();
    let mut last_end: Option<i64> = None;
    loop {
        let end = now_ns();
        let loaded = rules.current();
        let mut ws = loaded.detector.workspace();
        let started = Instant::now();
        let result = read_window(
            &client,
            Window {
                query: &settings.query,
                end_ns: end,
                overlap_ns: nanos(settings.overlap),
                limit: settings.limit,
            },
            &mut cursor,
            |e| record(&loaded, &mut ws, &store, e),
            async |_| {},
        )
        .await;
        metrics::poll(started.elapsed());
        let wait = match result {
            Ok(stats) => {
                status.set(None);
                backoff = Duration::from_secs(1);
                last_end = Some(end);
                metrics::window(stats.delivered, stats.bytes);
                tracing::debug!(
                    pages = stats.pages,
                    lines = stats.delivered,
                    remembered = cursor.remembered(),
                    "Poll done."
                );
                settings.poll_interval
            }
            Err(error) => {
                let (reason, transient) = match &error {
                    PageError::Loki(e) => (e.reason(), e.is_transient()),
                    PageError::Saturated { .. } => ("saturated", false),
                };
                metrics::query_error(reason);
                tracing::warn!(error = %error, "Cannot read Loki; trying again.");
                status.set(Some(format!("Loki: {error}")));
                if transient {
                    let wait = backoff.min(settings.poll_interval);
                    backoff = (backoff * 2).min(settings.poll_interval);
                    wait
                } else {
                    settings.poll_interval
                }
            }
        };
        if let Some(end) = last_end {
            metrics::lag(now_ns() - end);
        }
        {
            let mut store = store.lock().unwrap_or_else(|e| e.into_inner());
            if last_purge.elapsed() >= Duration::from_secs(600) {
                let purged = store.purge(now_ns() - nanos(settings.retention));
                if purged > 0 {
                    tracing::info!(purged, "Errors past the retention forgotten.");
                }
                last_purge = Instant::now();
            }
            metrics::store(store.len(), store.evicted());
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Detects one new line and counts it.
fn record(loaded: &Loaded, ws: &mut Workspace, store: &Mutex<MemoryStore>, e: &Entry) {
    let stream = Stream::new(&e.labels);
    let d = loaded.detector.detect(ws, &stream, &e.line);
    let values = d.values();
    let rule = d.rule_name();
    let priority = d.priority();
    metrics::line(rule, priority.as_str());
    store
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .record(&Occurrence {
            timestamp_ns: e.ts_ns,
            fingerprint: d.fingerprint,
            namespace: stream.source.namespace,
            workload: stream.workload,
            pod: stream.source.pod,
            container: stream.source.container,
            rule,
            priority,
            normalized: &d.normalized.text,
            values: &values,
        });
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}
