//! The health server as a running service: signal handling, bind, serve, stop.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::{HealthState, Readiness, Shutdown};

/// A health server running on a background task, with the shutdown trigger it obeys.
#[derive(Debug)]
pub struct Service {
    /// Fires on SIGTERM/SIGINT or when the binary triggers it.
    pub shutdown: Shutdown,
    /// Register readiness checks here.
    pub readiness: Readiness,
    addr: SocketAddr,
    task: JoinHandle<()>,
    drain: Duration,
}

impl Service {
    /// Installs SIGTERM/SIGINT handlers, binds `listen`, and serves `/health`, `/ready` and
    /// (when given) `/metrics` until shutdown; open requests get `drain` to finish.
    pub async fn start(
        listen: SocketAddr,
        metrics: Option<bulwark_metrics::Metrics>,
        drain: Duration,
    ) -> std::io::Result<Self> {
        Self::start_with_app(listen, metrics, drain, None, String::new()).await
    }

    /// As [`Service::start`], with the binary's own routes (`app`) for every other path, and
    /// the health paths answering under `base_path` too.
    pub async fn start_with_app(
        listen: SocketAddr,
        metrics: Option<bulwark_metrics::Metrics>,
        drain: Duration,
        app: Option<crate::App>,
        base_path: String,
    ) -> std::io::Result<Self> {
        let shutdown = Shutdown::on_signals()?;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {listen} for health: {e}"),
            )
        })?;
        let addr = listener.local_addr()?;
        let readiness = Readiness::default();
        let state = HealthState {
            readiness: readiness.clone(),
            metrics,
            shutdown: shutdown.clone(),
            app,
            base_path,
        };
        let task = tokio::spawn(crate::serve(listener, state, drain));
        tracing::info!(addr = %addr, "Serving /health, /ready and /metrics.");
        Ok(Self {
            shutdown,
            readiness,
            addr,
            task,
            drain,
        })
    }

    /// The bound address (useful when the port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Triggers shutdown (if not already) and waits for the server to drain.
    pub async fn stop(self) -> std::io::Result<()> {
        self.shutdown.trigger();
        match tokio::time::timeout(self.drain + Duration::from_secs(1), self.task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(join)) => Err(std::io::Error::other(join)),
            Err(_) => Err(std::io::Error::other(
                "health server did not stop within the drain deadline",
            )),
        }
    }
}
