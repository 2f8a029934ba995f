//! Live updates for the dashboard, as Server-Sent Events (`GET /api/events`): a page of
//! lines stored, an audit entry written, the switches changed. Each subscriber gets its own
//! task forwarding from one broadcast channel; a slow one that falls behind is told to
//! `resync` rather than holding the others up. A comment every 15 s keeps proxies from
//! closing the stream and finds clients that left.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bulwark_http::ResponseBody;
use bulwark_sentinel::audit::Entry;
use bulwark_sentinel::remediation::Switches;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// Subscribers served at once; more get 503.
pub const MAX_SUBSCRIBERS: usize = 64;
const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a subscriber may take to accept one event before it is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What changed.
#[derive(Debug, Clone)]
pub enum Update {
    /// A page of `lines` lines was stored.
    Page {
        lines: u64,
    },
    Audit(Box<Entry>),
    Switches(Switches),
}

impl Update {
    /// The event's name and JSON data.
    fn event(&self) -> (&'static str, String) {
        match self {
            Self::Page { lines } => ("page", json!({ "lines": lines }).to_string()),
            Self::Audit(e) => ("audit", serde_json::to_string(e).unwrap_or_default()),
            Self::Switches(s) => ("settings", serde_json::to_string(s).unwrap_or_default()),
        }
    }
}

/// The live-update hub.
#[derive(Debug)]
pub struct Live {
    tx: broadcast::Sender<Update>,
    subscribers: AtomicUsize,
    stop: CancellationToken,
}

impl Live {
    /// A hub whose streams end when `stop` fires.
    pub fn new(stop: CancellationToken) -> Arc<Self> {
        let (tx, _) = broadcast::channel(256);
        Arc::new(Self {
            tx,
            subscribers: AtomicUsize::new(0),
            stop,
        })
    }

    /// Where updates are sent.
    pub fn sender(&self) -> broadcast::Sender<Update> {
        self.tx.clone()
    }

    /// Clients following now.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// A Server-Sent Events response following the updates.
    pub fn subscribe(self: &Arc<Self>) -> Response<ResponseBody> {
        let taken = self
            .subscribers
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < MAX_SUBSCRIBERS).then_some(n + 1)
            });
        if taken.is_err() {
            return bulwark_http::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many live-update subscribers\n",
            );
        }
        metrics::subscribers(self.subscribers());
        let (out, body) = mpsc::channel::<Bytes>(16);
        let mut rx = self.tx.subscribe();
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            let _ = out.send(Bytes::from_static(b"retry: 3000\n\n")).await;
            let mut beat = tokio::time::interval(HEARTBEAT);
            beat.tick().await;
            loop {
                let frame = tokio::select! {
                    () = hub.stop.cancelled() => break,
                    _ = beat.tick() => Bytes::from_static(b": keep-alive\n\n"),
                    got = rx.recv() => match got {
                        Ok(update) => {
                            let (name, data) = update.event();
                            Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            Bytes::from_static(b"event: resync\ndata: {}\n\n")
                        }
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                };
                // A client that stops reading is dropped rather than holding its slot.
                let sent = tokio::select! {
                    () = hub.stop.cancelled() => break,
                    sent = tokio::time::timeout(SEND_TIMEOUT, out.send(frame)) => sent,
                };
                if !matches!(sent, Ok(Ok(()))) {
                    break;
                }
            }
            hub.subscribers.fetch_sub(1, Ordering::Relaxed);
            metrics::subscribers(hub.subscribers());
        });
        let mut resp = Response::new(ResponseBody::stream(body));
        let h = resp.headers_mut();
        h.insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/event-stream"),
        );
        h.insert(
            hyper::header::CACHE_CONTROL,
            hyper::header::HeaderValue::from_static("no-store"),
        );
        // nginx and friends buffer responses unless told otherwise.
        h.insert(
            "x-accel-buffering",
            hyper::header::HeaderValue::from_static("no"),
        );
        resp
    }
}
