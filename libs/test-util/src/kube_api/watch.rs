//! Watch streams: newline-delimited `{"type": ..., "object": ...}` events, sent as writes happen.
//!
//! A watch starts either from the current state (no resourceVersion, or "0": synthetic ADDED
//! events first) or from a given resourceVersion, replaying the retained history after it.
//! A resourceVersion older than the history answers a 410 `ERROR` event, as a real API server does
//! after etcd compaction, which makes clients relist.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_TYPE, HeaderValue};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::Instant;

use super::Error;
use super::handlers::{Query, as_partial};
use super::resources::Resource;
use super::selector::Selectors;
use super::server::{Body, Shared};
use super::store::{Change, ChangeKind};

/// How long a watch without `timeoutSeconds` stays open, the API server's default minimum.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Starts a watch response.
pub(crate) fn respond(
    shared: &Arc<Shared>,
    resource: &'static Resource,
    namespace: Option<String>,
    query: &Query,
    metadata_only: bool,
) -> Result<Response<Body>, Error> {
    let selectors = query.selectors()?;
    let requested = match query.resource_version.as_deref() {
        None | Some("" | "0") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| Error::BadRequest(format!("invalid resource version {rv:?}")))?,
        ),
    };
    let timeout = query
        .timeout_seconds
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let mut watch = Watch {
        shared: shared.clone(),
        resource,
        namespace,
        selectors,
        metadata_only,
        bookmarks: query.allow_bookmarks,
        last: 0,
        queue: VecDeque::new(),
        done: false,
        deadline: Instant::now() + timeout,
        next_bookmark: Instant::now() + shared.bookmark_interval,
        revisions: shared.revisions.subscribe(),
        shutdown: shared.shutdown.clone(),
    };
    match requested {
        Some(rv) if !query.send_initial_events => watch.last = rv,
        _ => {
            // Without a resourceVersion the watch starts with the current state,
            // so clients need no separate list.
            let store = shared.store();
            for (_, object) in store.list(resource, watch.namespace.as_deref(), &watch.selectors) {
                watch.push_event("ADDED", &object);
            }
            watch.last = store.revision();
            drop(store);
            if query.send_initial_events && watch.bookmarks {
                watch.push_bookmark(true);
            }
        }
    }
    let stream = futures::stream::unfold(watch, next_frame);
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// The state of one open watch.
struct Watch {
    shared: Arc<Shared>,
    resource: &'static Resource,
    namespace: Option<String>,
    selectors: Selectors,
    metadata_only: bool,
    bookmarks: bool,
    /// The revision up to which every change has been considered.
    last: u64,
    queue: VecDeque<Bytes>,
    done: bool,
    deadline: Instant,
    next_bookmark: Instant,
    revisions: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
}

impl Watch {
    fn push_event(&mut self, kind: &str, object: &Value) {
        let object = if self.metadata_only {
            as_partial(object)
        } else {
            object.clone()
        };
        self.push_line(&json!({"type": kind, "object": object}));
    }

    fn push_bookmark(&mut self, initial_events_end: bool) {
        let mut metadata = json!({"resourceVersion": self.last.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.resource.kind,
            "apiVersion": self.resource.api_version(),
            "metadata": metadata,
        });
        self.push_line(&json!({"type": "BOOKMARK", "object": object}));
    }

    fn push_line(&mut self, event: &Value) {
        let mut line = event.to_string().into_bytes();
        line.push(b'\n');
        self.queue.push_back(Bytes::from(line));
    }

    /// Queues the events committed since `last`, or the 410 that ends the watch.
    fn refill(&mut self) {
        let store = self.shared.store();
        match store.changes_after(self.last) {
            Ok(changes) => {
                let revision = store.revision();
                drop(store);
                for change in &changes {
                    if let Some((kind, object)) = self.event_for(change) {
                        self.push_event(kind, object);
                    }
                }
                self.last = revision;
            }
            Err(error) => {
                drop(store);
                self.push_line(&json!({"type": "ERROR", "object": error.to_status()}));
                self.done = true;
            }
        }
    }

    /// The event this watch sees for a change, if any. An object that starts or stops
    /// matching the selectors is seen as ADDED or DELETED, as Kubernetes does.
    fn event_for<'c>(&self, change: &'c Change) -> Option<(&'static str, &'c Value)> {
        if *change.resource != *self.resource {
            return None;
        }
        if self
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != change.namespace)
        {
            return None;
        }
        let now = self.selectors.matches(&change.object);
        match change.kind {
            ChangeKind::Added => now.then_some(("ADDED", &change.object)),
            ChangeKind::Deleted => now.then_some(("DELETED", &change.object)),
            ChangeKind::Modified => {
                let before = change
                    .previous
                    .as_ref()
                    .is_some_and(|p| self.selectors.matches(p));
                match (before, now) {
                    (true, true) => Some(("MODIFIED", &change.object)),
                    (false, true) => Some(("ADDED", &change.object)),
                    (true, false) => Some(("DELETED", &change.object)),
                    (false, false) => None,
                }
            }
        }
    }
}

/// Produces the next chunk of the watch body, waiting for writes, bookmarks, the timeout or shutdown.
async fn next_frame(mut watch: Watch) -> Option<(Result<Frame<Bytes>, Infallible>, Watch)> {
    loop {
        if let Some(line) = watch.queue.pop_front() {
            return Some((Ok(Frame::data(line)), watch));
        }
        if watch.done || *watch.shutdown.borrow() {
            return None;
        }
        // Mark the current revision seen before reading the store, so that a write
        // committed after the read always wakes the wait below.
        watch.revisions.borrow_and_update();
        watch.refill();
        if !watch.queue.is_empty() {
            continue;
        }
        let bookmarks = watch.bookmarks;
        tokio::select! {
            changed = watch.revisions.changed() => {
                if changed.is_err() {
                    watch.done = true;
                }
            }
            () = tokio::time::sleep_until(watch.deadline) => {
                // A last bookmark lets the client resume exactly where this watch ended.
                if bookmarks {
                    watch.push_bookmark(false);
                }
                watch.done = true;
            }
            () = tokio::time::sleep_until(watch.next_bookmark), if bookmarks => {
                watch.push_bookmark(false);
                watch.next_bookmark = Instant::now() + watch.shared.bookmark_interval;
            }
            _ = watch.shutdown.changed() => watch.done = true,
        }
    }
}
