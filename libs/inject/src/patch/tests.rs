//! Tests of the typed patch: its JSON is RFC 6902, which the independent `json-patch` crate
//! reads and applies.

use serde_json::{Value, json};

use super::{Annotations, Patch, Value as Added, pointer};
use crate::memo::Json;
use crate::objects::VolumeMount;

const MOUNT: VolumeMount<'static> = VolumeMount {
    name: "v",
    mount_path: std::borrow::Cow::Borrowed("/m"),
    read_only: true,
};

/// Applies `patch` to `doc` with `json-patch`.
#[track_caller]
fn applied(doc: Value, patch: &Patch<'_>) -> Value {
    let ops: json_patch::Patch =
        serde_json::from_slice(&patch.to_json()).expect("the patch is RFC 6902 JSON");
    let mut doc = doc;
    json_patch::patch(&mut doc, &ops).expect("the patch applies");
    doc
}

#[test]
fn pointers_escape_tilde_and_slash() {
    assert_eq!(pointer(&[]), "");
    assert_eq!(pointer(&["spec", "containers", "0"]), "/spec/containers/0");
    assert_eq!(
        pointer(&["metadata", "annotations", "keeper.security/inject"]),
        "/metadata/annotations/keeper.security~1inject"
    );
    assert_eq!(pointer(&["a~b/c", ""]), "/a~0b~1c/");
}

#[test]
fn operations_serialise_as_rfc_6902() {
    let mut patch = Patch::new();
    assert!(patch.is_empty());
    assert_eq!(patch.to_json(), b"[]");
    patch.add(&["spec", "shareProcessNamespace"], Added::Bool(true));
    patch.append(&["spec", "volumes"], Added::Mount(MOUNT));
    assert_eq!(patch.len(), 2);
    let json: Value = serde_json::from_slice(&patch.to_json()).unwrap();
    assert_eq!(
        json,
        json!([
            {"op": "add", "path": "/spec/shareProcessNamespace", "value": true},
            {"op": "add", "path": "/spec/volumes/-", "value": {"name": "v", "mountPath": "/m", "readOnly": true}}
        ])
    );
}

#[test]
fn json_patch_applies_members_elements_and_escaped_keys() {
    let mut patch = Patch::new();
    patch.add(
        &["metadata", "annotations"],
        Added::Annotations(Annotations(vec![
            ("b/c", Json::of(&"1")),
            ("a~d", Json::of(&"\"q\"\n")),
        ])),
    );
    patch.add(
        &["metadata", "annotations", "x/y"],
        Added::Json(Json::of(&"z")),
    );
    patch.add(&["list", "0"], Added::Mounts([MOUNT]));
    patch.append(&["list"], Added::Mount(MOUNT));
    let doc = applied(json!({"metadata": {}, "list": [1]}), &patch);
    assert_eq!(
        doc,
        json!({
            "metadata": {"annotations": {"b/c": "1", "a~d": "\"q\"\n", "x/y": "z"}},
            "list": [[{"name": "v", "mountPath": "/m", "readOnly": true}], 1, {"name": "v", "mountPath": "/m", "readOnly": true}]
        })
    );
}
