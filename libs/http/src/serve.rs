//! The connection loop: accept, optionally TLS-handshake, serve HTTP/1.1 or HTTP/2, and on
//! shutdown stop accepting and let open requests finish for a bounded time.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, Response};
#[cfg(feature = "http2")]
use hyper_util::rt::TokioExecutor;
use hyper_util::rt::{TokioIo, TokioTimer};
#[cfg(feature = "http2")]
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::body::ResponseBody;

/// A response of `status` with `body` of the given content type.
pub fn response(
    status: hyper::StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::from(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// A plain-text UTF-8 response.
pub fn text(status: hyper::StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    response(status, "text/plain; charset=utf-8", body)
}

/// Handles one request. Implemented for closures `Fn(Request<Incoming>, SocketAddr) -> Future`.
pub trait Handler: Clone + Send + Sync + 'static {
    /// The response future.
    type Future: Future<Output = Response<ResponseBody>> + Send + 'static;
    /// Handles `request` from `peer`.
    fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Self::Future;
}

impl<F, Fut> Handler for F
where
    F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ResponseBody>> + Send + 'static,
{
    type Future = Fut;
    fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Fut {
        self(request, peer)
    }
}

/// How long a client may take to finish the TLS handshake or send request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The workspace's TLS server configuration: ring provider, TLS 1.3 and 1.2 only, ALPN h2 and
/// http/1.1, certificates from `resolver`.
pub fn server_config(
    resolver: Arc<dyn rustls::server::ResolvesServerCert>,
) -> Result<ServerConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = if cfg!(feature = "http2") {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Ok(config)
}

/// Serves `handler` on `listener` (over TLS when `tls` is given) until `shutdown`, then stops
/// accepting and gives open connections up to `drain` to finish their requests.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    handler: H,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(error) => {
                    // Accept errors (such as running out of file descriptors) are transient;
                    // back off briefly instead of spinning.
                    tracing::warn!(%error, "Failed to accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (handler, acceptor, shutdown) = (handler.clone(), acceptor.clone(), shutdown.clone());
        tracker.spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let fut = handler.handle(req, peer);
                async move { Ok::<_, std::convert::Infallible>(fut.await) }
            });
            match acceptor {
                Some(acceptor) => {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "TLS handshake failed.");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out.");
                            return;
                        }
                    };
                    serve_connection(TokioIo::new(tls), service, shutdown).await;
                }
                None => serve_connection(TokioIo::new(stream), service, shutdown).await,
            }
        });
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(drain, tracker.wait()).await.is_err() {
        tracing::warn!(
            drain_ms = u64::try_from(drain.as_millis()).unwrap_or(u64::MAX),
            "Connections still open after the drain deadline."
        );
    }
}

async fn serve_connection<I, S>(io: I, service: S, shutdown: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<
            Request<Incoming>,
            Response = Response<ResponseBody>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    #[cfg(feature = "http2")]
    let mut builder = auto::Builder::new(TokioExecutor::new());
    #[cfg(feature = "http2")]
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT);
    #[cfg(feature = "http2")]
    builder.http2().timer(TokioTimer::new());
    #[cfg(feature = "http2")]
    let conn = builder.serve_connection(io, service);
    #[cfg(not(feature = "http2"))]
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

#[cfg(test)]
mod tests;
