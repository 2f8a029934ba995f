//! The poll loop: every `poll_interval`, read Loki from the cursor to now, detect each new
//! line, and record each page with the cursor in the store; on a failure retry with backoff
//! and report it on `/ready`.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulwark_loki::pager::LineId;
use bulwark_loki::{Client, Cursor, Entry, PageError, Window, read_window};
use bulwark_sentinel::detect::{Detection, Stream, Workspace};
use bulwark_sentinel::remediation::nanos;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::live::Update;
use crate::metrics;
use crate::remediate::Candidate;
use crate::rules::{Loaded, Rules, now_ns};
use crate::store::{Line, Store};

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

/// Where a stored page goes besides the store.
#[derive(Debug, Clone)]
pub struct Outlet {
    /// The remediation engine, handed the lines whose rule has an action.
    pub candidates: Option<mpsc::Sender<Vec<Candidate>>>,
    /// The dashboard's live updates.
    pub updates: broadcast::Sender<Update>,
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

/// Polls until `stop`: from the cursor the store saved for this query, else `lookback`
/// before now.
pub async fn run(
    client: Client,
    settings: Settings,
    rules: Arc<Rules>,
    store: Arc<dyn Store>,
    status: Arc<Status>,
    outlet: Outlet,
    stop: CancellationToken,
) {
    let start = now_ns() - nanos(settings.lookback);
    let mut cursor = loop {
        match store.cursor(&settings.query).await {
            Ok(Some(saved)) => {
                tracing::info!(from_ns = saved.from_ns, "Resuming from the saved cursor.");
                break saved;
            }
            Ok(None) => break Cursor::new(start),
            Err(error) => {
                status.set(Some(format!("store: {error}")));
                tracing::warn!(error = %error, "Cannot read the saved cursor; trying again.");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    };
    let mut backoff = Duration::from_secs(1);
    let mut last_purge: Option<Instant> = None;
    let mut last_end: Option<i64> = None;
    // The regex caches fill as they meet lines: kept across polls while the rules stay.
    let mut kept: Option<(Arc<Loaded>, Workspace)> = None;
    loop {
        let end = now_ns();
        let loaded = rules.current();
        let ws = match kept.take() {
            Some((rules_then, ws)) if Arc::ptr_eq(&rules_then, &loaded) => ws,
            _ => loaded.detector.workspace(),
        };
        let ws = RefCell::new(ws);
        let page = RefCell::new(Vec::new());
        let page_bytes = RefCell::new(0u64);
        let wanted: RefCell<Wanted> = RefCell::new((Vec::new(), HashSet::new()));
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
            |new| {
                *page_bytes.borrow_mut() +=
                    new.iter().map(|(e, _)| e.line.len() as u64).sum::<u64>();
                let mut wanted = wanted.borrow_mut();
                let acting = outlet.candidates.is_some();
                detect(
                    &loaded,
                    &mut ws.borrow_mut(),
                    new,
                    &mut page.borrow_mut(),
                    acting.then_some(&mut *wanted),
                );
            },
            async |cursor| {
                let lines = std::mem::take(&mut *page.borrow_mut());
                let bytes = std::mem::take(&mut *page_bytes.borrow_mut());
                store
                    .record(&lines, &settings.query, cursor)
                    .await
                    .map_err(|e| e.to_string())?;
                // Counted only once stored: a page the store refused is read again.
                for l in &lines {
                    metrics::line(&l.rule, l.priority.as_str());
                }
                metrics::window(lines.len() as u64, bytes);
                let (candidates, seen) = std::mem::take(&mut *wanted.borrow_mut());
                drop(seen);
                if let Some(tx) = &outlet.candidates
                    && !candidates.is_empty()
                {
                    // Waits while the engine is busy: remediation is not dropped.
                    let _ = tx.send(candidates).await;
                }
                if !lines.is_empty() {
                    let _ = outlet.updates.send(Update::Page {
                        lines: lines.len() as u64,
                    });
                }
                Ok(())
            },
        )
        .await;
        metrics::poll(started.elapsed());
        kept = Some((loaded, ws.into_inner()));
        let wait = match result {
            Ok(stats) => {
                status.set(None);
                backoff = Duration::from_secs(1);
                last_end = Some(end);
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
                    PageError::Sink(_) => ("store", true),
                };
                metrics::query_error(reason);
                tracing::warn!(error = %error, "Cannot read Loki into the store; trying again.");
                status.set(Some(match &error {
                    PageError::Sink(_) => format!("store: {error}"),
                    _ => format!("Loki: {error}"),
                }));
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
        if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
            match store.purge(now_ns() - nanos(settings.retention)).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "Errors past the retention forgotten."),
                Err(error) => tracing::warn!(error = %error, "Cannot purge old errors."),
            }
            last_purge = Some(Instant::now());
        }
        if let Ok((errors, evicted)) = store.size().await {
            metrics::store(errors, evicted);
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The remediation candidates of a page, and the (rule, namespace, pod) already among them.
type Wanted = (Vec<Candidate>, HashSet<(String, String, String)>);

/// Detects a page's new lines into `page`; adds each to `wanted` when its rule has an action.
fn detect(
    loaded: &Loaded,
    ws: &mut Workspace,
    new: &[(&Entry, LineId)],
    page: &mut Vec<Line>,
    mut wanted: Option<&mut Wanted>,
) {
    let lines: Vec<(Stream<'_>, &str)> = new
        .iter()
        .map(|(e, _)| (Stream::new(&e.labels), e.line.as_str()))
        .collect();
    loaded.detector.detect_each(ws, &lines, |i, d| {
        let (e, line_id) = new[i];
        let stream = lines[i].0;
        if let (Some((candidates, seen)), Some(rule)) = (wanted.as_deref_mut(), d.rule)
            && rule.action != bulwark_sentinel::rules::Action::None
            && seen.insert((
                rule.name.clone(),
                stream.source.namespace.to_owned(),
                stream.source.pod.to_owned(),
            ))
        {
            candidates.push(Candidate {
                rule: Arc::new(rule.clone()),
                fingerprint: d.fingerprint,
                namespace: stream.source.namespace.to_owned(),
                pod: stream.source.pod.to_owned(),
            });
        }
        page.push(line(&stream, e, line_id, &d));
    });
}

/// What the store keeps of a detected line.
fn line(stream: &Stream<'_>, e: &Entry, line_id: LineId, d: &Detection<'_>) -> Line {
    Line {
        line_id,
        timestamp_ns: e.ts_ns,
        fingerprint: d.fingerprint,
        namespace: stream.source.namespace.to_owned(),
        workload: stream.workload.to_owned(),
        pod: stream.source.pod.to_owned(),
        container: stream.source.container.to_owned(),
        rule: d.rule_name().to_owned(),
        priority: d.priority(),
        normalized: d.normalized.text.clone(),
        values: d.values(),
    }
}
