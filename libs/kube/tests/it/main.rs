//! Integration tests of `bulwark-kube` against the fake Kubernetes API server.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod client;
mod election;
mod leader_label;
mod workloads;

use std::time::{Duration, Instant};

use bulwark_test_util::kube_api::FakeKube;

/// A client for `fake`, built the production way: from a kubeconfig file.
async fn client_for(fake: &FakeKube) -> (kube::Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = fake.write_kubeconfig(dir.path(), "default").unwrap();
    let options = bulwark_kube::ClientOptions {
        kubeconfig: Some(path),
        context: None,
    };
    (bulwark_kube::client(&options).await.unwrap(), dir)
}

/// Waits until `pred` holds, checking every 20 ms, for at most `timeout`.
async fn until(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pred()
}
