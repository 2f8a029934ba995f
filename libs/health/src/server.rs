//! The server for `/health`, `/ready` and `/metrics`, on the shared connection loop of `bulwark-http`.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bulwark_http::{ResponseBody, text};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use crate::{Readiness, Shutdown};

/// A binary's own routes beside health and metrics (sentinel's API), given every request the
/// health server does not answer itself.
pub type App = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>
        + Send
        + Sync,
>;

/// What the server reports: readiness checks, metrics, and whether shutdown has begun.
#[derive(Clone)]
pub struct HealthState {
    pub readiness: Readiness,
    pub metrics: Option<bulwark_metrics::Metrics>,
    /// Once triggered, `/ready` answers 503 so that load balancers stop sending traffic
    /// while in-flight work drains.
    pub shutdown: Shutdown,
    /// The binary's own routes, if any.
    pub app: Option<App>,
    /// A path prefix (`/kube-sentinel`) under which the health paths answer too.
    pub base_path: String,
}

impl std::fmt::Debug for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthState")
            .field("readiness", &self.readiness)
            .field("app", &self.app.is_some())
            .field("base_path", &self.base_path)
            .finish_non_exhaustive()
    }
}

/// Serves until `state.shutdown` fires, then stops accepting, lets open requests finish for
/// up to `drain`, and returns.
pub async fn serve(listener: TcpListener, state: HealthState, drain: Duration) {
    let state = Arc::new(state);
    let shutdown = state.shutdown.token();
    let handler = move |req: Request<Incoming>, _peer| {
        let state = state.clone();
        async move {
            let path = req.uri().path();
            let own = HEALTH_PATHS.contains(&path)
                || path
                    .strip_prefix(state.base_path.as_str())
                    .is_some_and(|p| !state.base_path.is_empty() && HEALTH_PATHS.contains(&p));
            match &state.app {
                Some(app) if !own => app(req).await,
                _ => route(&state, &req).await,
            }
        }
    };
    bulwark_http::serve(listener, None, handler, shutdown, drain).await;
}

const HEALTH_PATHS: [&str; 6] = [
    "/health", "/healthz", "/livez", "/ready", "/readyz", "/metrics",
];

async fn route(state: &HealthState, req: &Request<Incoming>) -> Response<ResponseBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let path = req.uri().path();
    let path = if state.base_path.is_empty() {
        path
    } else {
        path.strip_prefix(state.base_path.as_str()).unwrap_or(path)
    };
    match path {
        "/health" | "/healthz" | "/livez" => text(StatusCode::OK, "ok\n"),
        "/ready" | "/readyz" => ready(state).await,
        "/metrics" => match &state.metrics {
            Some(m) => bulwark_http::response(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                m.render(),
            ),
            None => text(StatusCode::NOT_FOUND, "metrics are not enabled\n"),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /health, /ready or /metrics\n",
        ),
    }
}

async fn ready(state: &HealthState) -> Response<ResponseBody> {
    if state.shutdown.is_triggered() {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n",
        );
    }
    let report = state.readiness.check().await;
    let mut body = String::new();
    for c in &report.checks {
        let _ = match &c.error {
            None => writeln!(body, "[+] {} ok ({}ms)", c.name, c.duration.as_millis()),
            Some(e) => writeln!(
                body,
                "[-] {} failed: {e} ({}ms)",
                c.name,
                c.duration.as_millis()
            ),
        };
    }
    if report.ready() {
        body.push_str("ready\n");
        text(StatusCode::OK, body)
    } else {
        let _ = writeln!(body, "not ready: {} failed", report.failed().join(", "));
        text(StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

#[cfg(test)]
mod tests;
