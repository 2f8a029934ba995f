//! Tests for the connection loop over real loopback TLS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;

use super::{ResponseBody, serve, server_config};
use crate::reload::tests::self_signed;
use crate::{CertFiles, ReloadingResolver};

fn client_config(
    ca_pem: &str,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

async fn get(
    config: rustls::ClientConfig,
    url: &str,
    http2: bool,
) -> Result<(hyper::Version, String), String> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let https = if http2 {
        builder.enable_http2().build()
    } else {
        builder.enable_http1().build()
    };
    let client = Client::builder(TokioExecutor::new())
        .http2_only(http2)
        .build::<_, Empty<Bytes>>(https);
    let resp = client
        .request(Request::get(url).body(Empty::new()).unwrap())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let version = resp.version();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((version, String::from_utf8(body.to_vec()).unwrap()))
}

#[tokio::test]
async fn https_tls12_tls13_h2_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed("localhost");
    std::fs::write(dir.path().join("tls.crt"), &a.0).unwrap();
    std::fs::write(dir.path().join("tls.key"), &a.1).unwrap();
    let files = CertFiles {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
    };
    let resolver = ReloadingResolver::load(files).unwrap();
    let tls = Arc::new(server_config(resolver.clone()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let shutdown = CancellationToken::new();
    let handler = |req: Request<hyper::body::Incoming>, _peer| async move {
        Response::new(ResponseBody::from(format!("hello {}", req.uri().path())))
    };
    let server = tokio::spawn(serve(
        listener,
        Some(tls),
        handler,
        shutdown.clone(),
        Duration::from_secs(1),
    ));
    let url = format!("https://localhost:{port}/x");

    let (v, body) = get(client_config(&a.0, &[&rustls::version::TLS13]), &url, false)
        .await
        .unwrap();
    assert_eq!((v, body.as_str()), (hyper::Version::HTTP_11, "hello /x"));
    let (v, _) = get(client_config(&a.0, &[&rustls::version::TLS12]), &url, false)
        .await
        .unwrap();
    assert_eq!(v, hyper::Version::HTTP_11);
    if cfg!(feature = "http2") {
        let (v, _) = get(client_config(&a.0, &[&rustls::version::TLS13]), &url, true)
            .await
            .unwrap();
        assert_eq!(v, hyper::Version::HTTP_2);
    }

    // Rotate: new connections see the new certificate without a restart.
    let b = self_signed("localhost");
    std::fs::write(dir.path().join("tls.crt"), &b.0).unwrap();
    std::fs::write(dir.path().join("tls.key"), &b.1).unwrap();
    assert!(resolver.reload().unwrap());
    assert!(
        get(client_config(&a.0, &[&rustls::version::TLS13]), &url, false)
            .await
            .is_err(),
        "old CA still trusted"
    );
    assert!(
        get(client_config(&b.0, &[&rustls::version::TLS13]), &url, false)
            .await
            .is_ok()
    );

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn plain_http_and_shutdown_stops_accepting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let handler = |_req, peer: std::net::SocketAddr| async move {
        Response::new(ResponseBody::from(peer.ip().to_string()))
    };
    let server = tokio::spawn(serve(
        listener,
        None,
        handler,
        shutdown.clone(),
        Duration::from_secs(1),
    ));
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = client
        .get(format!("http://{addr}/").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        resp.into_body().collect().await.unwrap().to_bytes(),
        "127.0.0.1"
    );
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(3), server)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
