//! Tests for admission answers: one per outcome, asserting the response and the metric result.

use base64::Engine;
use serde_json::{Value, json};

use super::Webhook;

fn webhook() -> std::sync::Arc<Webhook> {
    Webhook::new(bulwark_inject::Defaults {
        ksm_config: Some("keeper-auth".into()),
        ..Default::default()
    })
}

fn review(object: Value, dry_run: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "uid-1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "prod", "operation": "CREATE", "dryRun": dry_run, "object": object
        }
    }))
    .unwrap()
}

fn pod(annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "web-7d9f-", "annotations": annotations},
           "spec": {"containers": [{"name": "app", "image": "nginx"}]}})
}

#[track_caller]
fn check(body: &[u8], result: &str) -> Value {
    let admitted = webhook().admit(body);
    assert_eq!(
        admitted.verdict.result(),
        result,
        "{:?}",
        String::from_utf8_lossy(&admitted.body)
    );
    serde_json::from_slice(&admitted.body).unwrap_or(Value::Null)
}

#[test]
fn injects_and_patch_applies() {
    let object =
        pod(json!({"keeper.security/inject": "true", "keeper.security/secret": "db-credentials"}));
    let out = check(&review(object.clone(), false), "injected");
    let r = &out["response"];
    assert_eq!(
        (r["uid"].as_str(), r["allowed"].as_bool()),
        (Some("uid-1"), Some(true))
    );
    let patch = base64::engine::general_purpose::STANDARD
        .decode(r["patch"].as_str().unwrap())
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut patched = object;
    json_patch::patch(&mut patched, &patch).unwrap();
    assert_eq!(
        patched["metadata"]["annotations"]["keeper.security/injected"],
        "true"
    );
    // A dry run is admitted identically.
    let dry = check(&review(patched.clone(), true), "already_injected");
    assert_eq!(dry["response"], json!({"uid": "uid-1", "allowed": true}));
    let again = check(
        &review(
            pod(
                json!({"keeper.security/inject": "true", "keeper.security/secret": "db-credentials"}),
            ),
            true,
        ),
        "injected",
    );
    assert_eq!(again["response"]["patch"], out["response"]["patch"]);
}

#[test]
fn pods_without_the_annotation_pass_unchanged() {
    let out = check(&review(pod(json!({"team": "a"})), false), "not_requested");
    assert_eq!(out["response"], json!({"uid": "uid-1", "allowed": true}));
}

#[test]
fn invalid_annotations_are_denied_naming_the_annotation() {
    let object = pod(
        json!({"keeper.security/inject": "true", "keeper.security/secret": "db", "keeper.security/refresh-interval": "often"}),
    );
    let out = check(&review(object, false), "denied");
    let status = &out["response"]["status"];
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(status["code"], 400);
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("keeper.security/refresh-interval"),
        "{status}"
    );
}

#[test]
fn malformed_reviews_are_bad_requests() {
    let admitted = webhook().admit(b"{\"apiVersion\":");
    assert_eq!(admitted.verdict.result(), "bad_request");
    assert!(
        String::from_utf8_lossy(&admitted.body)
            .starts_with("malformed AdmissionReview: the body is not JSON")
    );
    let not_a_pod = review(
        json!({"metadata": {"name": "x"}, "spec": {"containers": "nope"}}),
        false,
    );
    let out = check(&not_a_pod, "denied");
    assert!(
        out["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the pod in the AdmissionReview is not a valid Pod")
    );
}

#[test]
fn other_kinds_and_operations_are_skipped() {
    let mut body: Value = serde_json::from_slice(&review(
        pod(json!({"keeper.security/inject": "true"})),
        false,
    ))
    .unwrap();
    body["request"]["operation"] = json!("UPDATE");
    let out = check(&serde_json::to_vec(&body).unwrap(), "skipped");
    assert_eq!(out["response"]["allowed"], true);
}

#[test]
fn objects_that_are_not_pods_are_skipped_whatever_their_shape() {
    // A ConfigMap whose data would not read as a pod: the one-pass read fails, the second
    // read sees that it is not a pod and lets it through.
    let mut body: Value = serde_json::from_slice(&review(
        json!({"metadata": {"name": "c"}, "spec": {"containers": 7}}),
        false,
    ))
    .unwrap();
    body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    let out = check(&serde_json::to_vec(&body).unwrap(), "skipped");
    assert_eq!(out["response"], json!({"uid": "uid-1", "allowed": true}));
    // An invalid pod in an UPDATE is not read at all.
    body["request"]["kind"] = json!({"group": "", "version": "v1", "kind": "Pod"});
    body["request"]["operation"] = json!("UPDATE");
    check(&serde_json::to_vec(&body).unwrap(), "skipped");
    // Fields in any order, the object before the kind.
    let reordered = br#"{"request":{"object":{"metadata":{"annotations":{"keeper.security/inject":"true","keeper.security/secret":"db"}},"spec":{"containers":[{"name":"a"}]}},"operation":"CREATE","kind":{"kind":"Pod","version":"v1","group":""},"uid":"u"},"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#;
    check(reordered, "injected");
}
