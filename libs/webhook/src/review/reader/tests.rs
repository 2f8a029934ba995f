//! Tests of the fast reader: it answers as serde_json does or not at all, and it does answer
//! the reviews the API server sends.

use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::from_str;
use crate::review::{ReviewIn, agrees_with_serde_json};

fn review() -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "prod", "operation": "CREATE", "dryRun": false,
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "uid": "u", "groups": ["system:serviceaccounts", "system:authenticated"], "extra": {"a": ["b"]}},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "generateName": "web-7d9f6c-", "namespace": "prod",
                    "labels": {"app": "web"},
                    "annotations": {"keeper.security/inject": "true", "keeper.security/config": "secrets:\n  - record: \"db\"\n    path: /keeper/secrets/db.json\n", "note": "caf\u{e9} \u{1f512} \\ \" \t"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f6c", "uid": "x", "controller": true, "blockOwnerDeletion": true}]
                },
                "spec": {
                    "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "runAsNonRoot": true},
                    "shareProcessNamespace": true,
                    "containers": [
                        {"name": "app", "image": "web:1", "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                         "resources": {"limits": {"cpu": "1.5", "memory": "1e3Mi"}}, "securityContext": {"runAsUser": -5},
                         "volumeMounts": [{"name": "cache", "mountPath": "/cache", "readOnly": true}],
                         "livenessProbe": {"httpGet": {"path": "/", "port": 8080}, "initialDelaySeconds": 0, "failureThreshold": 3.5e0}},
                        {"name": "proxy", "image": "envoy:1", "args": [], "env": [{"name": "A", "value": "\u{0}"}]}
                    ],
                    "initContainers": [{"name": "migrate", "image": "m:1"}],
                    "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
                    "os": {"name": "linux"},
                    "terminationGracePeriodSeconds": 30, "priority": -1, "overhead": null
                }
            },
            "oldObject": null,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    })
}

type Review<'a> = ReviewIn<'a, bulwark_inject::Pod<'a>>;

#[test]
fn reads_a_real_review_as_serde_json_does() {
    let text = review().to_string();
    let fast: Review<'_> = from_str(&text).expect("the fast reader gives up on a plain review");
    let slow: Review<'_> = serde_json::from_str(&text).unwrap();
    assert_eq!(fast, slow);
    let pod = fast.request.unwrap().object.unwrap();
    assert_eq!(
        pod.spec.unwrap().containers[0].ports.as_ref().unwrap()[0].container_port,
        8080
    );
    // Pretty-printed, with every kind of whitespace between tokens (a raw newline is never
    // inside a JSON string).
    let pretty = serde_json::to_string_pretty(&review())
        .unwrap()
        .replace("\n ", "\n\t\r ");
    assert!(from_str::<Review<'_>>(&pretty).is_some());
    assert!(agrees_with_serde_json(pretty.as_bytes()));
}

#[test]
fn strings_without_escapes_are_borrowed() {
    let text = review().to_string();
    let review: Review<'_> = from_str(&text).unwrap();
    let request = review.request.unwrap();
    assert!(matches!(request.uid, std::borrow::Cow::Borrowed(_)));
    let pod = request.object.unwrap();
    let annotations = pod.metadata.annotations.unwrap();
    let (_, note) = annotations.iter().find(|(k, _)| &*k.0 == "note").unwrap();
    assert!(matches!(note.0, std::borrow::Cow::Owned(_)));
    assert_eq!(&*note.0, "caf\u{e9} \u{1f512} \\ \" \t");
}

/// Bodies each reader must agree on, valid or not.
const SAMPLES: &[&str] = &[
    "",
    " ",
    "null",
    "{}",
    "[]",
    "{\"a\":1}",
    "{\"a\":1,}",
    "{,\"a\":1}",
    "{\"a\" 1}",
    "{\"a\":1 \"b\":2}",
    "{\"a\":1}}",
    "{\"a\":1} x",
    "[1,]",
    "[,1]",
    "[1 2]",
    "[01]",
    "[-0]",
    "[-]",
    "[1.]",
    "[.5]",
    "[1e]",
    "[1e+]",
    "[1.5e-3, -2E+7, 0.0]",
    "[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809]",
    "[true, false, null, tru, nul]",
    "[\"\\u00e9\\ud83d\\udd12\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
    "[\"\\ud83d\"]",
    "[\"\\udd12\"]",
    "[\"\\ud83dx\"]",
    "[\"\\ud83d\\u0041\"]",
    "[\"\\x\"]",
    "[\"\\u12\"]",
    "[\"\\u12g4\"]",
    "[\"a\u{1}b\"]",
    "[\"a\u{7f}b\"]",
    "[\"unterminated]",
    "{\"a\":{\"b\":[{\"c\":[[[[[[[[[[1]]]]]]]]]]}]}}",
    "\u{feff}{}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"uid\":\"v\"}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"object\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":8080.0}]}]}}}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"object\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":-0}]}]}}}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"object\":{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":[{\"containerPort\":4294967296}]}]}}}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"object\":{\"metadata\":{\"annotations\":{\"a\":1}}}}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"object\":{\"metadata\":{\"annotations\":{\"a\":\"1\",\"a\":\"2\"}}}}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"dryRun\":\"yes\"}}",
    "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\",\"object\":{\"spec\":{\"containers\":[{\"image\":\"no name\"}]}}}}",
    "{\"api\\u0056ersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{\"uid\":\"u\"}}",
];

#[test]
fn every_sample_agrees_with_serde_json() {
    for sample in SAMPLES {
        assert!(agrees_with_serde_json(sample.as_bytes()), "{sample:?}");
    }
    assert!(agrees_with_serde_json(review().to_string().as_bytes()));
}

#[test]
fn valid_json_is_read_not_left_to_serde_json() {
    // The agreement test passes for a reader that answers nothing: these show it answers.
    for sample in [
        "{}",
        "[1.5e-3, -2E+7, 0.0]",
        "[\"\\u00e9\\ud83d\\udd12\\/\\b\\f\\n\\r\\t\\\"\\\\\"]",
        "[\"a\u{7f}b\"]",
        "{\"a\":{\"b\":[{\"c\":[[[[[[[[[[1]]]]]]]]]]}]}}",
        // Skipped strings may hold lone surrogates, as serde_json allows.
        "[\"\\ud83d\"]",
    ] {
        assert!(from_str::<IgnoredAny>(sample).is_some(), "{sample:?}");
    }
    assert_eq!(
        from_str::<Value>("[18446744073709551615, -9223372036854775808, \"\\ud83d\\udd12\"]"),
        Some(json!([u64::MAX, i64::MIN, "\u{1f512}"]))
    );
}

#[test]
fn what_serde_json_refuses_is_left_to_it() {
    for sample in [
        "{\"a\":1,}",
        "[01]",
        "[1.]",
        "[\"a\u{1}b\"]",
        "\u{feff}{}",
        "{\"a\":1} x",
    ] {
        assert!(from_str::<IgnoredAny>(sample).is_none(), "{sample:?}");
        assert!(
            serde_json::from_str::<IgnoredAny>(sample).is_err(),
            "{sample:?}"
        );
    }
}

#[test]
fn deep_nesting_is_left_to_serde_json() {
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    assert!(from_str::<IgnoredAny>(&deep).is_none());
    assert!(serde_json::from_str::<IgnoredAny>(&deep).is_ok());
    let too_deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    assert!(agrees_with_serde_json(too_deep.as_bytes()));
}
