//! Tests for the health server over real loopback HTTP.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{HealthState, serve};
use crate::{Readiness, Shutdown};

async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    let resp = client
        .get(format!("http://{addr}{path}").parse().unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

async fn start(
    readiness: Readiness,
) -> (std::net::SocketAddr, Shutdown, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let state = HealthState {
        app: None,
        base_path: String::new(),
        readiness,
        metrics: None,
        shutdown: shutdown.clone(),
    };
    let task = tokio::spawn(serve(listener, state, Duration::from_secs(2)));
    (addr, shutdown, task)
}

#[tokio::test]
async fn health_ready_and_failing_checks() {
    let readiness = Readiness::default();
    readiness.register("always", Duration::from_secs(1), || async { Ok(()) });
    let (addr, shutdown, task) = start(readiness.clone()).await;

    assert_eq!(get(addr, "/health").await, (200, "ok\n".into()));
    let (status, body) = get(addr, "/ready").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[+] always ok"), "{body}");

    readiness.register("loki", Duration::from_secs(1), || async {
        Err(crate::NotReady::new("connection refused"))
    });
    readiness.register("slow", Duration::from_millis(50), || async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(())
    });
    let (status, body) = get(addr, "/ready").await;
    assert_eq!(status, 503);
    assert!(
        body.contains("[-] loki failed: connection refused"),
        "{body}"
    );
    assert!(
        body.contains("[-] slow failed: timed out after 50ms"),
        "{body}"
    );
    assert!(body.contains("not ready: loki, slow failed"), "{body}");
    // Liveness never depends on readiness checks.
    assert_eq!(get(addr, "/health").await.0, 200);
    assert_eq!(get(addr, "/metrics").await.0, 404);
    assert_eq!(get(addr, "/nope").await.0, 404);

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_and_drains() {
    let (addr, shutdown, task) = start(Readiness::default()).await;
    assert_eq!(get(addr, "/ready").await.0, 200);
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(3), task)
        .await
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
