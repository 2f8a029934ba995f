//! Tests of JSON pointers and of our applier, against the independent `json-patch` crate.

use serde_json::{Value, json};

use super::{Operation, Patch, apply, pointer};

fn add(path: &str, value: Value) -> Operation {
    Operation::add(path.to_owned(), &value)
}

/// Applies `ops` with our applier and with `json-patch`, which must agree with `expect`.
#[track_caller]
fn check(doc: Value, ops: &[Operation], expect: Value) {
    let mut ours = doc.clone();
    apply(&mut ours, ops).unwrap();
    let patch: json_patch::Patch =
        serde_json::from_value(serde_json::to_value(ops).unwrap()).unwrap();
    let mut theirs = doc;
    json_patch::patch(&mut theirs, &patch).unwrap();
    assert_eq!(ours, expect);
    assert_eq!(theirs, expect);
}

/// Our applier and `json-patch` both refuse `ops`.
#[track_caller]
fn check_refused(doc: Value, ops: &[Operation], message: &str) {
    let mut ours = doc.clone();
    assert_eq!(apply(&mut ours, ops).unwrap_err().to_string(), message);
    // json-patch refuses a malformed pointer already when it reads the patch.
    if let Ok(patch) =
        serde_json::from_value::<json_patch::Patch>(serde_json::to_value(ops).unwrap())
    {
        let mut theirs = doc;
        assert!(json_patch::patch(&mut theirs, &patch).is_err());
    }
}

#[test]
fn pointers_escape_tilde_and_slash() {
    assert_eq!(
        pointer(&["metadata", "annotations", "keeper.security/injected"]),
        "/metadata/annotations/keeper.security~1injected"
    );
    assert_eq!(pointer(&["a~b", "c/d~1"]), "/a~0b/c~1d~01");
    assert_eq!(pointer(&[""]), "/");
    assert_eq!(pointer(&[]), "");
}

#[test]
fn operations_serialize_as_rfc_6902() {
    assert_eq!(
        serde_json::to_value(add("/a", json!(1))).unwrap(),
        json!({"op": "add", "path": "/a", "value": 1})
    );
}

#[test]
fn add_members_elements_and_escaped_keys() {
    check(
        json!({"metadata": {"annotations": {"x/y": "1"}}, "list": [1, 2]}),
        &[
            add(
                "/metadata/annotations/keeper.security~1injected",
                json!("true"),
            ),
            add("/metadata/annotations/a~0b", json!("t")),
            add("/list/0", json!(0)),
            add("/list/-", json!(3)),
            add("/list/4", json!(4)),
            add("/new", json!({"k": []})),
            add("/new/k/-", json!("v")),
        ],
        json!({
            "metadata": {"annotations": {"x/y": "1", "keeper.security/injected": "true", "a~b": "t"}},
            "list": [0, 1, 2, 3, 4],
            "new": {"k": ["v"]}
        }),
    );
}

#[test]
fn refused_operations() {
    check_refused(
        json!({"a": [1]}),
        &[add("/a/5", json!(1))],
        r#"patch operation at "/a/5" does not apply: "5" is not an index below 2"#,
    );
    check_refused(
        json!({"a": [1]}),
        &[add("/a/01", json!(1))],
        r#"patch operation at "/a/01" does not apply: "01" is not an index below 2"#,
    );
    check_refused(
        json!({}),
        &[add("/a/b", json!(1))],
        r#"patch operation at "/a/b" does not apply: no value at "a""#,
    );
    check_refused(
        json!({"a": 1}),
        &[add("/a/b", json!(1))],
        r#"patch operation at "/a/b" does not apply: the parent is neither an object nor an array"#,
    );
    check_refused(
        json!({}),
        &[add("a", json!(1))],
        r#"patch operation at "a" does not apply: a pointer starts with /"#,
    );
    check_refused(
        json!({}),
        &[add("/a~2", json!(1))],
        r#"patch operation at "/a~2" does not apply: invalid escape in "a~2": expected ~0 or ~1"#,
    );
}

#[test]
fn a_patch_is_written_as_its_operations_serialise() {
    let mut patch = Patch::new();
    assert!(patch.is_empty());
    assert_eq!(patch.as_json(), "[]");
    assert_eq!(patch.operations().unwrap(), []);
    patch.add(
        &["metadata", "annotations", "keeper.security/injected"],
        |out| {
            out.push_str("\"true\"");
        },
    );
    patch.append(&["spec", "volumes"], |out| {
        out.push_str(r#"{"name":"a\"b\\c","emptyDir":{}}"#);
    });
    patch.add(&["spec", "x\"y\\z~/\u{1}"], |out| out.push_str("[1,null]"));
    let ops = [
        add(
            "/metadata/annotations/keeper.security~1injected",
            json!("true"),
        ),
        add(
            "/spec/volumes/-",
            json!({"name": "a\"b\\c", "emptyDir": {}}),
        ),
        add("/spec/x\"y\\z~0~1\u{1}", json!([1, null])),
    ];
    assert_eq!(patch.len(), 3);
    assert_eq!(
        serde_json::from_str::<Value>(patch.as_json()).unwrap(),
        serde_json::to_value(ops.as_slice()).unwrap()
    );
    let values = |ops: &[Operation]| -> Vec<(String, Value)> {
        ops.iter()
            .map(|Operation::Add { path, value }| (path.clone(), value.to_value()))
            .collect()
    };
    assert_eq!(values(&patch.operations().unwrap()), values(&ops));
    assert_eq!(
        serde_json::to_value(&patch).unwrap(),
        serde_json::to_value(ops.as_slice()).unwrap()
    );
    check(
        json!({"metadata": {"annotations": {}}, "spec": {"volumes": []}}),
        &ops,
        json!({
            "metadata": {"annotations": {"keeper.security/injected": "true"}},
            "spec": {"volumes": [{"name": "a\"b\\c", "emptyDir": {}}], "x\"y\\z~/\u{1}": [1, null]},
        }),
    );
}
