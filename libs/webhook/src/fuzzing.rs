//! The properties that the fuzz target (`libs/webhook/fuzz`) checks on arbitrary input, here so
//! that `cargo test` runs them on the seed corpus and on generated pods too.
//!
//! [`check`] panics when a property fails, which is how a fuzzer learns about it; it never
//! panics on input that is merely invalid (that is a denial or a bad request).

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bulwark_inject::{Defaults, Injector, SidecarSpec};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::explain::explain_pod;
use crate::{Verdict, Webhook};

/// The defaults the properties are checked with: those of a webhook that names a default KSM
/// configuration Secret, so that pods without `ksm-config` can be injected too.
pub fn defaults() -> Defaults {
    Defaults {
        ksm_config: Some("keeper-auth".to_owned()),
        ..Defaults::default()
    }
}

static WEBHOOK: LazyLock<std::sync::Arc<Webhook>> = LazyLock::new(|| Webhook::new(defaults()));

/// Feeds `data` to the webhook and checks every property of its answer.
///
/// Input starting with `{` is JSON: an AdmissionReview, or a pod that is wrapped in one.
/// Other input is annotations, one `key=value` per record separated by `\x1e` (or by newlines
/// when there is no `\x1e`), given to a Deployment-created pod; a key without `/` gets the
/// `keeper.security/` prefix.
pub fn check(data: &[u8]) {
    let admitted = WEBHOOK.admit(data);
    assert!(!admitted.body.is_empty(), "an empty answer");
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !text.trim_start().starts_with('{') {
        check_object(&pod_with_annotations(text));
        return;
    }
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    match value.get("request") {
        Some(_) => check_answer(&value, &admitted.body, admitted.verdict),
        None => check_object(&value),
    }
}

/// Checks the properties on one pod object: admitted through the webhook as a review, and
/// explained offline, the two agree, and the patched pod passes [`check_patched`].
pub fn check_object(object: &Value) {
    let review = review(object);
    let admitted = WEBHOOK.admit(&review);
    check_answer(
        &serde_json::from_slice(&review).unwrap_or_default(),
        &admitted.body,
        admitted.verdict,
    );
}

/// An AdmissionReview of a pod CREATE with `object`.
pub fn review(object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "object": object,
        },
    }))
    .unwrap_or_default()
}

/// Checks the webhook's `answer` to `review`: an AdmissionReview response for its uid whose
/// patch, when there is one, `json-patch` applies to the object, giving a pod that
/// [`check_patched`] accepts; and offline explanation agrees with it.
fn check_answer(review: &Value, answer: &[u8], verdict: Verdict) {
    if let Verdict::BadRequest(_) = verdict {
        return;
    }
    let object = &review["request"]["object"];
    // The API server decodes every object into a Pod before it calls a webhook; the webhook
    // reads only the fields it needs and leaves the rest to that check.
    if Pod::deserialize(object).is_err() {
        return;
    }
    let answer: Value = serde_json::from_slice(answer).unwrap_or_else(|e| {
        panic!("the answer is not JSON: {e}");
    });
    let response = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        response["uid"], review["request"]["uid"],
        "the uid is not echoed"
    );
    let Some(patch) = response["patch"].as_str() else {
        if verdict == Verdict::Injected {
            panic!("injected without a patch: {answer}");
        }
        return;
    };
    assert_eq!(verdict, Verdict::Injected);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = BASE64
        .decode(patch)
        .unwrap_or_else(|e| panic!("the patch is not base64: {e}"));
    let ops: json_patch::Patch =
        serde_json::from_slice(&patch).unwrap_or_else(|e| panic!("the patch is not RFC 6902: {e}"));
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &ops)
        .unwrap_or_else(|e| panic!("the patch does not apply: {e}"));
    for op in &ops.0 {
        assert_adds_only(object, op);
    }
    check_patched(&patched);
    // Offline explanation with a new injector is the same admission: what the webhook's
    // injector kept from earlier pods changes nothing.
    match explain_pod(object, &Injector::new(defaults())) {
        Ok(explained) => assert_eq!(explained.pod, patched, "explain disagrees"),
        Err(e) => panic!("explain denies what the webhook injected: {e}"),
    }
}

/// A patched pod is a Pod, its keeper containers read their spec from its annotation, and a
/// second admission is a no-op.
pub fn check_patched(patched: &Value) {
    if let Err(e) = Pod::deserialize(patched) {
        panic!("the patched pod is not a pod: {e}");
    }
    let spec = patched["metadata"]["annotations"][bulwark_inject::spec::SPEC_ANNOTATION]
        .as_str()
        .unwrap_or_else(|| panic!("no spec annotation: {patched}"));
    match SidecarSpec::from_json(spec) {
        Ok(spec) => assert_eq!(
            SidecarSpec::from_json(&spec.to_json()).as_ref(),
            Ok(&spec),
            "the spec does not survive JSON"
        ),
        Err(e) => panic!("the spec does not read back: {e}"),
    }
    let again = WEBHOOK.admit(&review(patched));
    assert_eq!(
        again.verdict,
        Verdict::AlreadyInjected,
        "a second admission is not a no-op: {}",
        String::from_utf8_lossy(&again.body)
    );
}

/// A pod as a Deployment creates it (no name, no uid), with `text` as its annotations.
pub fn pod_with_annotations(text: &str) -> Value {
    let separator = if text.contains('\x1e') { '\x1e' } else { '\n' };
    let mut annotations = serde_json::Map::new();
    for record in text.split(separator) {
        let (k, v) = record.split_once('=').unwrap_or((record, ""));
        let k = if k.contains('/') {
            k.to_owned()
        } else {
            format!("{}{k}", bulwark_inject::annotations::PREFIX)
        };
        annotations.insert(k, Value::String(v.to_owned()));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c-",
            "namespace": "shop",
            "labels": {"app": "web"},
            "annotations": annotations,
        },
        "spec": {
            "initContainers": [{"name": "migrate", "image": "migrate:1"}],
            "containers": [
                {"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
                {"name": "proxy", "image": "proxy:1", "volumeMounts": [{"name": "cache", "mountPath": "/cache"}]},
            ],
            "volumes": [{"name": "cache", "emptyDir": {}}],
        },
    })
}

/// An `add` never replaces an object or array that the pod already has at its path.
fn assert_adds_only(original: &Value, op: &json_patch::PatchOperation) {
    let json_patch::PatchOperation::Add(add) = op else {
        panic!("not an add: {op:?}");
    };
    let path = add.path.to_string();
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    if original.pointer(parent).is_some_and(Value::is_array) {
        return;
    }
    if let Some(existing) = original.pointer(&path) {
        assert!(
            !(existing.is_object() || existing.is_array()),
            "the patch replaces the value at {path}"
        );
    }
}

#[cfg(test)]
mod tests;
