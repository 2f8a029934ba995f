//! The properties that the fuzz target (`libs/inject/fuzz`) checks on arbitrary input, here so
//! that `cargo test` runs them on a fixed corpus too.
//!
//! [`check`] panics when a property fails, which is how a fuzzer learns about it; it never
//! panics on input that is merely invalid (that is an `Err`, a denial).

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::patch::Operation;
use crate::{Defaults, SidecarSpec, explain};

/// Feeds `data` to the admission path and checks every property of a successful mutation.
///
/// Input starting with `{` is JSON: an AdmissionReview (its `request.object` is used) or a pod.
/// Other input is annotations, one `key=value` per record separated by `\x1e` (or by newlines
/// when there is no `\x1e`), given to a Deployment-created pod; a key without `/` gets the
/// `keeper.security/` prefix.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let object = if text.trim_start().starts_with('{') {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return;
        };
        match value.pointer("/request/object") {
            Some(object) => object.clone(),
            None => value,
        }
    } else {
        pod_with_annotations(text)
    };
    check_object(&object);
}

/// Checks the properties on one pod object.
pub fn check_object(object: &Value) {
    let defaults = Defaults::default();
    let Ok(explained) = explain(object, &defaults) else {
        return;
    };
    if explained.mutation.is_empty() {
        assert_eq!(&explained.pod, object, "an empty patch changed the pod");
        return;
    }
    let ops = match explained.mutation.patch.operations() {
        Ok(ops) => ops,
        Err(e) => panic!("the patch does not read back: {e}"),
    };
    assert_eq!(ops.len(), explained.mutation.patch.len());
    for op in &ops {
        assert_adds_only(object, op);
    }
    if let Err(e) = Pod::deserialize(&explained.pod) {
        panic!("the patched pod is not a pod: {e}");
    }
    match explain(&explained.pod, &defaults) {
        Ok(again) => assert!(
            again.mutation.is_empty(),
            "a second admission is not a no-op: {:?}",
            again.mutation.patch
        ),
        Err(e) => panic!("a second admission fails: {e}"),
    }
    if let Some(spec) = &explained.mutation.spec {
        assert_eq!(
            spec.to_json_literal(),
            serde_json::to_string(&spec.to_json()).unwrap_or_default(),
            "the spec's literal is not its JSON as a JSON string"
        );
        match SidecarSpec::from_json(&spec.to_json()) {
            Ok(back) => assert_eq!(&back, spec, "the spec does not survive JSON"),
            Err(e) => panic!("the spec does not read back: {e}"),
        }
    }
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
            format!("{}{k}", crate::annotations::PREFIX)
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
fn assert_adds_only(original: &Value, op: &Operation) {
    let Operation::Add { path, .. } = op;
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    let parent_is_array = original.pointer(parent).is_some_and(Value::is_array);
    if parent_is_array {
        return;
    }
    if let Some(existing) = original.pointer(path) {
        assert!(
            !(existing.is_object() || existing.is_array()),
            "the patch replaces the {} at {path} (last token {last:?})",
            if existing.is_object() {
                "object"
            } else {
                "array"
            },
        );
    }
}

#[cfg(test)]
mod tests;
