//! Client construction, the readiness probe and Events.

use std::path::PathBuf;

use bulwark_kube::{ClientOptions, EventType, Events};
use bulwark_test_util::kube_api::FakeKube;
use k8s_openapi::api::core::v1::ObjectReference;

#[tokio::test]
async fn kubeconfig_client_answers_the_probe() {
    let fake = FakeKube::start().await.unwrap();
    let (client, _dir) = super::client_for(&fake).await;
    bulwark_kube::api_probe(&client).await.unwrap();
    // Enough failures to outlast any client-side retry.
    fake.fail_next(10, 500);
    let e = bulwark_kube::api_probe(&client).await.unwrap_err();
    assert_eq!(e.to_string(), "Kubernetes API request failed");
    assert_eq!(e.metric_label(), "api");
}

#[tokio::test]
async fn missing_kubeconfig_names_the_path() {
    let options = ClientOptions {
        kubeconfig: Some(PathBuf::from("/nonexistent/kubeconfig")),
        context: None,
    };
    let Err(e) = bulwark_kube::client(&options).await else {
        panic!("a client from a missing file")
    };
    assert_eq!(
        e.to_string(),
        "cannot read kubeconfig /nonexistent/kubeconfig"
    );
    assert_eq!(e.metric_label(), "kubeconfig");
}

#[tokio::test]
async fn events_are_recorded_against_the_object() {
    let fake = FakeKube::start().await.unwrap();
    let (client, _dir) = super::client_for(&fake).await;
    let events = Events::new(client, "sentinel", Some("sentinel-0".into()));
    let pod = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some("web-1".into()),
        namespace: Some("default".into()),
        uid: Some("1234".into()),
        ..Default::default()
    };
    events
        .publish(
            &pod,
            EventType::Warning,
            "CrashLoopDetected",
            "RestartPod",
            Some("restarted by rule crashloop-backoff".into()),
        )
        .await
        .unwrap();
    let stored = fake.list("events.k8s.io/v1", "events", Some("default"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    let e = &stored[0];
    assert_eq!(e["reason"], "CrashLoopDetected");
    assert_eq!(e["action"], "RestartPod");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["note"], "restarted by rule crashloop-backoff");
    assert_eq!(e["regarding"]["name"], "web-1");
    assert_eq!(e["reportingController"], "sentinel");
}
