//! Admission over real HTTPS against the running binary, and certificate rotation.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bulwark_test_util::binary::{Running, http_get};
use bulwark_test_util::promtool;
use bulwark_test_util::tls::{TestCa, https_request};
use serde_json::{Value, json};

pub(super) fn review(uid: &str) -> Vec<u8> {
    review_of(
        uid,
        "Pod",
        json!({"metadata": {"generateName": "web-", "annotations": {"keeper.security/inject": "true", "keeper.security/secret": "db"}},
               "spec": {"containers": [{"name": "app", "image": "nginx"}]}}),
    )
}

fn review_of(uid: &str, kind: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "prod", "operation": "CREATE", "object": object
        }
    }))
    .unwrap()
}

fn start(dir: &Path, ca: &TestCa) -> (Running, SocketAddr, SocketAddr) {
    start_with(&super::env_for(dir, ca))
}

/// Starts the webhook with `env`; returns it, its health address and its HTTPS address.
pub(super) fn start_with(env: &[(String, String)]) -> (Running, SocketAddr, SocketAddr) {
    let mut bin = Running::start(Path::new(super::EXE), &[], &super::as_refs(env)).unwrap();
    let health = bin.health_addr().unwrap();
    let line = bin
        .wait_for_log(
            "Serving admission requests on /mutate-pods.",
            Duration::from_secs(10),
        )
        .unwrap();
    let https = line["addr"].as_str().unwrap().parse().unwrap();
    (bin, health, https)
}

#[test]
fn admits_over_https_and_counts_in_the_seed_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("webhook-ca").unwrap();
    let (mut bin, health, https) = start(dir.path(), &ca);

    let (status, body) = https_request(
        https,
        "localhost",
        ca.pem(),
        "POST",
        "/mutate-pods",
        &review("u-1"),
    )
    .unwrap();
    assert_eq!(status, 200);
    let out: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(out["response"]["uid"], "u-1");
    assert_eq!(out["response"]["patchType"], "JSONPatch");
    let (status, _) = https_request(
        https,
        "localhost",
        ca.pem(),
        "POST",
        "/mutate",
        &review("u-2"),
    )
    .unwrap();
    assert_eq!(status, 200);
    let (status, body) = https_request(
        https,
        "localhost",
        ca.pem(),
        "POST",
        "/mutate-pods",
        b"{not json",
    )
    .unwrap();
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).starts_with("malformed AdmissionReview"));
    let (status, _) =
        https_request(https, "localhost", ca.pem(), "GET", "/mutate-pods", b"").unwrap();
    assert_eq!(status, 405);

    let (_, metrics) = http_get(health, "/metrics").unwrap();
    assert!(
        metrics.contains("keeper_injector_requests_total{result=\"injected\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keeper_injector_requests_total{result=\"bad_request\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keeper_injector_errors_total{reason=\"malformed_review\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("keeper_injector_latency_seconds_bucket"),
        "{metrics}"
    );
    promtool::check_metrics(&metrics).unwrap();
    let (status, _) = bin.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success());
}

#[test]
fn rotated_certificates_are_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old = TestCa::new("old-ca").unwrap();
    let (mut bin, _health, https) = start(dir.path(), &old);
    assert!(
        https_request(
            https,
            "localhost",
            old.pem(),
            "POST",
            "/mutate-pods",
            &review("a")
        )
        .is_ok()
    );

    let new = TestCa::new("new-ca").unwrap();
    new.issue(&["localhost"])
        .unwrap()
        .write(dir.path())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while https_request(
        https,
        "localhost",
        new.pem(),
        "POST",
        "/mutate-pods",
        &review("b"),
    )
    .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the rotated certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        https_request(
            https,
            "localhost",
            old.pem(),
            "POST",
            "/mutate-pods",
            &review("c")
        )
        .is_err()
    );
    // A broken file does not take the server down: once the webhook has read it (and said
    // so), it still serves the last good certificate.
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    let out = bin.wait_for_log(
        "Failed to reload the serving certificate; still serving the previous one.",
        Duration::from_secs(5),
    );
    assert!(out.is_ok(), "{out:?}");
    assert!(
        https_request(
            https,
            "localhost",
            new.pem(),
            "POST",
            "/mutate-pods",
            &review("d")
        )
        .is_ok()
    );
    assert!(bin.terminate(Duration::from_secs(5)).unwrap().0.success());
}

#[test]
fn every_request_that_is_not_injected_leaves_a_log_line_with_its_uid_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("webhook-ca").unwrap();
    let (mut bin, _, https) = start(dir.path(), &ca);
    let post = |body: &[u8]| {
        https_request(https, "localhost", ca.pem(), "POST", "/mutate-pods", body)
            .unwrap()
            .0
    };
    let annotated = |extra: Value| {
        let mut annotations =
            json!({"keeper.security/inject": "true", "keeper.security/secret": "db"});
        annotations
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"metadata": {"name": "web", "annotations": annotations},
               "spec": {"containers": [{"name": "app", "image": "nginx"}],
                        "nodeSelector": {"kubernetes.io/os": "windows"}}})
    };
    assert_eq!(
        post(&review_of("u-conflict", "Pod", annotated(json!({})))),
        200
    );
    let bad = annotated(json!({"keeper.security/refresh-interval": "soon"}));
    assert_eq!(post(&review_of("u-annotation", "Pod", bad)), 200);
    let invalid = json!({"metadata": {"name": "web"}, "spec": {"containers": "app"}});
    assert_eq!(post(&review_of("u-invalid", "Pod", invalid)), 200);
    let config_map = json!({"metadata": {"name": "settings"}, "data": {}});
    assert_eq!(post(&review_of("u-other", "ConfigMap", config_map)), 200);
    let mut huge = review("u-huge");
    huge.splice(
        1..1,
        format!("\"pad\":\"{}\",", "x".repeat(3 << 20)).into_bytes(),
    );
    assert_eq!(post(&huge), 400);

    let (status, _) = bin.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success());
    let lines: Vec<Value> = bin
        .output()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let line = |uid: &str| {
        lines
            .iter()
            .find(|l| l["uid"] == uid)
            .unwrap_or_else(|| panic!("no log line for {uid}: {lines:#?}"))
            .clone()
    };
    let conflict = line("u-conflict");
    assert_eq!(
        (conflict["msg"].as_str(), conflict["reason"].as_str()),
        (Some("Denied a pod."), Some("pod_conflict"))
    );
    assert!(
        conflict["error"].as_str().unwrap().contains("windows"),
        "{conflict}"
    );
    assert_eq!(line("u-annotation")["reason"], "invalid_annotation");
    assert_eq!(line("u-invalid")["reason"], "invalid_pod");
    let other = line("u-other");
    assert_eq!(other["level"], "warn");
    assert_eq!(other["kind"], "/v1/ConfigMap");
    let huge = lines
        .iter()
        .find(|l| l["reason"] == "body_too_large")
        .unwrap_or_else(|| panic!("no log line for the oversized body: {lines:#?}"));
    assert_eq!(huge["msg"], "Rejected an admission request.");
}
