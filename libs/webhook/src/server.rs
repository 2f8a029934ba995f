//! Running the HTTPS admission server: load and watch the certificate, serve until shutdown,
//! keep answering for the shutdown delay while readiness fails, then drain.

use std::sync::Arc;
use std::time::Duration;

use bulwark_http::{CertFiles, ReloadingResolver};
use tokio_util::sync::CancellationToken;

use crate::Webhook;
use crate::config::Server;

/// How long open admission requests may take to finish after the shutdown delay.
const DRAIN: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot load the serving certificate")]
    Certificate(#[from] bulwark_http::Error),
    #[error("invalid TLS configuration")]
    Tls(#[from] rustls::Error),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Serves `webhook` over HTTPS as `config` says until `shutdown` fires, then keeps serving for
/// `config.shutdown_delay` (readiness already fails by then) and drains.
pub async fn run(
    config: &Server,
    webhook: Arc<Webhook>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let files = CertFiles {
        cert: config.cert_file.clone(),
        key: config.key_file.clone(),
    };
    let resolver = ReloadingResolver::load(files)?;
    tokio::spawn(
        resolver
            .clone()
            .watch(config.cert_reload_interval.get(), shutdown.clone()),
    );
    let tls = Arc::new(bulwark_http::server_config(resolver)?);
    let addr = config.listen.0;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| Error::Listen { addr, source })?;
    tracing::info!(addr = %local, "Serving admission requests on /mutate-pods.");
    let stop_serving = CancellationToken::new();
    let handler = move |request, _peer| webhook.clone().serve(request);
    let server = tokio::spawn(bulwark_http::serve(
        listener,
        Some(tls),
        handler,
        stop_serving.clone(),
        DRAIN,
    ));
    shutdown.cancelled().await;
    let delay = config.shutdown_delay.get();
    if !delay.is_zero() {
        tracing::info!(
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "Still serving while endpoints drop this replica."
        );
        tokio::time::sleep(delay).await;
    }
    stop_serving.cancel();
    // A panic in the serve loop would already have been reported by the runtime.
    let _ = server.await;
    Ok(())
}
