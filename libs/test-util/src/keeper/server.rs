//! The network side: the loopback address, the server thread with its own Tokio runtime, the
//! TLS accept loop (which drops connections while the server is "down"), and HTTP/1.1.
//!
//! The fake runs on a thread of its own so that it keeps answering whatever the test does on
//! its own thread: block in a synchronous Keeper client, or run a current-thread runtime.
//! The accept loop is ours rather than `bulwark_http::serve` because an outage must drop
//! connections at accept time while the address stays bound, so that no other fake server
//! takes it over in the meantime.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::protocol;
use super::state::State;

/// The port the official Rust crate always calls, whatever `hostname` says.
const HTTPS_PORT: u16 = 443;
/// How long a client may take to finish the TLS handshake or send its request headers.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request body the server reads; KSM payloads are a few hundred bytes.
const MAX_BODY: usize = 1 << 20;

/// State shared by the server thread and the [`FakeKeeper`](super::FakeKeeper) handle.
pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    /// Whether the server drops every connection, to simulate an outage.
    pub(crate) down: watch::Sender<bool>,
}

impl Shared {
    /// Locks the state, ignoring poisoning: a panicking test thread must not wedge the server,
    /// and no critical section leaves the state half-changed.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds the first free `127.0.0.N:443` (N from 2 to 254), or an ephemeral port on 127.0.0.1
/// when port 443 cannot be bound at all (not root, no `CAP_NET_BIND_SERVICE`).
pub(crate) fn bind() -> io::Result<std::net::TcpListener> {
    for n in 2..=254 {
        match std::net::TcpListener::bind((Ipv4Addr::new(127, 0, 0, n), HTTPS_PORT)) {
            Ok(listener) => return Ok(listener),
            // Another fake server (or anything else) has this address: try the next one.
            Err(error) if error.kind() == io::ErrorKind::AddrInUse => {}
            Err(error) => {
                tracing::debug!(%error, "Cannot bind port 443; using an ephemeral port.");
                break;
            }
        }
    }
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

/// Starts the server thread; it serves until `stop`'s sender is dropped.
pub(crate) fn spawn(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    stop: watch::Receiver<()>,
) -> io::Result<thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    thread::Builder::new()
        .name("fake-keeper".to_owned())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => accept_loop(listener, tls, shared, stop).await,
                    Err(error) => tracing::warn!(%error, "Fake Keeper cannot use its listener."),
                }
            });
        })
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut down = shared.down.subscribe();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) if *down.borrow() => refuse(stream),
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, acceptor.clone(), shared.clone()));
                }
                Err(error) => {
                    // Accept errors (such as running out of file descriptors) are transient;
                    // back off briefly instead of spinning.
                    tracing::debug!(%error, "Fake Keeper failed to accept a connection.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            changed = down.changed() => {
                if changed.is_err() {
                    break;
                }
                // Going down also cuts the connections clients keep alive between requests.
                if *down.borrow_and_update() {
                    connections.abort_all();
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            // The handle was dropped (or signalled): stop serving.
            _ = stop.changed() => break,
        }
    }
    connections.shutdown().await;
}

/// Closes a connection at once with a reset, as a crashed server would.
fn refuse(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "Fake Keeper TLS handshake failed.");
            return;
        }
        Err(_) => return,
    };
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(request, &shared).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service)
        .await;
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "Fake Keeper connection ended with an error.");
    }
}

async fn handle(request: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let mut response = Response::new(Full::new(Bytes::from_static(b"request too large")));
            *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
            return response;
        }
    };
    let reply = protocol::route(
        &mut shared.state(),
        &parts.method,
        parts.uri.path(),
        &parts.headers,
        &body,
    );
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response
}
