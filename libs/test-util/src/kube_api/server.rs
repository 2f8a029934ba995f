//! The HTTP side: the accept loop, per-request bookkeeping (request log, bearer token,
//! injected faults) and the response helpers shared by the handlers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, trace};

use super::store::Store;
use super::{Error, Fault, handlers};

/// The response body: a whole JSON document, or a watch stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// State shared by the server task, every connection and the [`FakeKube`](super::FakeKube) handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Mutex<Store>,
    /// Carries the latest committed revision, so that watches wake up on every write.
    pub(crate) revisions: watch::Sender<u64>,
    /// Becomes `true`, or closes, when the server shuts down, which ends open watches.
    pub(crate) shutdown: watch::Receiver<bool>,
    pub(crate) requests: Mutex<Vec<(Method, String)>>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) token: String,
    pub(crate) addr: SocketAddr,
    pub(crate) bookmark_interval: Duration,
}

impl Shared {
    /// Locks the store for reading.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    /// Runs a write against the store, then wakes watches if it committed anything.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        let mut store = lock(&self.store);
        let before = store.revision();
        let out = f(&mut store);
        let after = store.revision();
        drop(store);
        if after != before {
            self.revisions.send_replace(after);
        }
        out
    }
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not wedge the server,
/// and every critical section leaves the data consistent before it can panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Accepts connections until shutdown, then aborts the connections still open.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = shared.clone();
                            async move { Ok::<_, Infallible>(handle(shared, req).await) }
                        });
                        let served = http1::Builder::new()
                            .timer(TokioTimer::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                        if let Err(error) = served {
                            debug!(message = "Fake Kubernetes API connection ended with an error.", %error);
                        }
                    });
                }
                Err(error) => {
                    // Accept errors such as EMFILE are transient; back off instead of spinning.
                    debug!(message = "Fake Kubernetes API failed to accept a connection.", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
    debug!(message = "Fake Kubernetes API server stopped.", addr = %shared.addr);
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |pq| pq.as_str().to_owned());
    lock(&shared.requests).push((method.clone(), target.clone()));
    let response = match admit(&shared, &req, &method, &target) {
        Ok(()) => match handlers::respond(&shared, req).await {
            Ok(response) => response,
            Err(error) => status_response(&error),
        },
        Err(error) => status_response(&error),
    };
    // Per-request lines scale with traffic, so they are TRACE, not DEBUG.
    trace!(
        message = "Fake Kubernetes API served a request.",
        method = %method,
        path = %target,
        status = response.status().as_u16(),
    );
    response
}

/// Checks the bearer token and consumes a matching injected fault.
fn admit(
    shared: &Shared,
    req: &Request<Incoming>,
    method: &Method,
    target: &str,
) -> Result<(), Error> {
    // Like a real API server, discovery of the version and health is open to anonymous clients.
    let public = matches!(
        req.uri().path(),
        "/version" | "/healthz" | "/livez" | "/readyz"
    );
    let expected = format!("Bearer {}", shared.token);
    let authorized = req
        .headers()
        .get(AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !public && !authorized {
        return Err(Error::Unauthorized);
    }
    let mut faults = lock(&shared.faults);
    if let Some(fault) = faults.iter_mut().find(|f| f.matches(method, target)) {
        fault.remaining -= 1;
        let code = fault.code;
        faults.retain(|f| f.remaining > 0);
        return Err(Error::Injected { code });
    }
    Ok(())
}

/// A JSON response with the given status code.
pub(crate) fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut body = value.to_string().into_bytes();
    body.push(b'\n');
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The `Status` response for a failure.
pub(crate) fn status_response(error: &Error) -> Response<Body> {
    json_response(error.code(), &error.to_status())
}

/// A plain-text response, for the health endpoints.
pub(crate) fn text_response(text: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())).boxed_unsync());
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
