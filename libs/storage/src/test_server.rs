//! A loopback HTTP server for the unit tests, over plain TCP or TLS with the fixture
//! certificates in `tests/data` (regenerate them with `tests/data/gen-certs.sh`).

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub(crate) const CA_PEM: &str = include_str!("../tests/data/ca.pem");
const SERVER_CERT_PEM: &str = include_str!("../tests/data/server.pem");
const SERVER_KEY_PEM: &str = include_str!("../tests/data/server.key");

pub(crate) type TestBody = BoxBody<Bytes, Infallible>;

/// A running server; it stops with the test's runtime.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl TestServer {
    /// Starts a server that answers every request with `handler`. With `tls`, it offers
    /// HTTP/2 and HTTP/1.1 through ALPN; without, it detects the protocol from the preface.
    pub(crate) async fn start<F, Fut>(tls: bool, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tls.then(|| TlsAcceptor::from(Arc::new(server_config())));
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let response = handler(request);
                        async move { Ok::<_, Infallible>(response.await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    // Failed handshakes and reset connections are what some tests provoke.
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                        None => {
                            let _ = builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Self { addr, connections }
    }

    /// `http://127.0.0.1:PORT` or `https://...` plus `path`.
    pub(crate) fn url(&self, tls: bool, path: &str) -> String {
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// How many TCP connections the server has accepted.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A root store that trusts only the test CA.
pub(crate) fn test_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(CA_PEM.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A complete response body.
pub(crate) fn full(body: impl Into<Bytes>) -> TestBody {
    Full::new(body.into()).boxed()
}

fn server_config() -> rustls::ServerConfig {
    let certs = CertificateDer::pem_slice_iter(SERVER_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}
