//! Tests for the AdmissionReview codec.

use base64::Engine;
use serde_json::{Value, json};

use super::{Error, allow, deny, parse};

fn review(request: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})).unwrap()
}

#[test]
fn parses_a_pod_create() {
    let body = review(json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": "prod", "operation": "CREATE", "dryRun": true,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": {"metadata": {"generateName": "web-"}},
        "oldObject": null
    }));
    let r = parse(&body).unwrap();
    assert!(r.is_pod_create());
    assert!(r.dry_run);
    assert_eq!(r.namespace.as_deref(), Some("prod"));
    let object: Value = serde_json::from_str(r.object.unwrap().get()).unwrap();
    assert_eq!(object["metadata"]["generateName"], "web-");
}

#[test]
fn malformed_reviews_say_what_is_wrong() {
    assert!(matches!(parse(b"{"), Err(Error::Json(_))));
    assert!(matches!(parse(b"[]"), Err(Error::Json(_))));
    let e = parse(br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#).unwrap_err();
    assert!(e.to_string().contains("admission.k8s.io/v1beta1"), "{e}");
    assert!(matches!(
        parse(br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#),
        Err(Error::NoRequest)
    ));
    assert!(matches!(
        parse(&review(json!({"kind": {"kind": "Pod"}}))),
        Err(Error::NoUid)
    ));
}

#[test]
fn allow_carries_a_base64_json_patch_and_warnings() {
    let out: Value =
        serde_json::from_slice(&allow("u1", &bulwark_inject::Patch::new(), &[])).unwrap();
    assert_eq!(out["response"], json!({"uid": "u1", "allowed": true}));
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");

    let injector = bulwark_inject::Injector::new(crate::fuzzing::defaults());
    let pod = crate::explain::explain_pod(
        &json!({"metadata": {"generateName": "web-", "annotations": {"keeper.security/inject": "true", "keeper.security/secret": "db"}}, "spec": {"containers": [{"name": "app", "image": "app"}]}}),
        &injector,
    )
    .unwrap();
    let out: Value =
        serde_json::from_slice(&allow("u\"2\\", &pod.mutation.patch, &["w\"".into()])).unwrap();
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(out["kind"], "AdmissionReview");
    let r = &out["response"];
    assert_eq!(r["uid"], "u\"2\\");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["patchType"], "JSONPatch");
    assert_eq!(r["warnings"], json!(["w\""]));
    let patch = base64::engine::general_purpose::STANDARD
        .decode(r["patch"].as_str().unwrap())
        .unwrap();
    assert_eq!(patch, pod.mutation.patch.to_json());
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    assert!(!patch.0.is_empty());
}

#[test]
fn deny_has_a_status() {
    let out: Value =
        serde_json::from_slice(&deny("u3", 400, "keeper.security/refresh-interval: bad")).unwrap();
    assert_eq!(out["response"]["allowed"], false);
    assert_eq!(out["response"]["status"]["code"], 400);
    assert_eq!(
        out["response"]["status"]["message"],
        "keeper.security/refresh-interval: bad"
    );
}

#[test]
fn escaped_strings_are_unescaped() {
    let body = review(json!({
        "uid": "u\"1\\", "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE", "namespace": "a\u{e9}b", "object": null
    }));
    let r = parse(&body).unwrap();
    assert_eq!(r.uid, "u\"1\\");
    assert_eq!(r.namespace.as_deref(), Some("a\u{e9}b"));
    assert!(r.is_pod_create());
    assert!(r.object.is_none());
    let other = review(
        json!({"uid": "x", "kind": {"group": "apps", "version": "v1", "kind": "Pod"}, "operation": "CREATE"}),
    );
    assert!(!parse(&other).unwrap().is_pod_create());
}

#[test]
fn a_body_that_is_not_utf8_is_not_json() {
    let e = parse(b"{\"apiVersion\":\"\xff\"}").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("the body is not JSON: invalid utf-8 sequence of 1 bytes from index 15"),
        "{e}"
    );
}
