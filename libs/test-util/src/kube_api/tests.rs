//! Unit tests of the pure pieces: selectors, strategic merge, routing, the store's bookkeeping.

use serde_json::{Value, json};

use super::Error;
use super::handlers::{Query, Target, percent_decode, resolve};
use super::patch::{self, PatchKind, strategic_merge};
use super::resources::{self, NAMESPACES, RESOURCES};
use super::selector::{FieldSelector, LabelSelector, Selectors};
use super::store::{Deletion, Preconditions, Scope, Store, scale_of};

#[track_caller]
fn check_labels(selector: &str, labels: Value, expected: bool) {
    let parsed = LabelSelector::parse(selector).unwrap();
    assert_eq!(
        parsed.matches(labels.as_object()),
        expected,
        "selector {selector:?} on {labels}"
    );
}

#[test]
fn label_equality() {
    check_labels("app=web", json!({"app": "web"}), true);
    check_labels("app==web", json!({"app": "web"}), true);
    check_labels("app=web", json!({"app": "db"}), false);
    check_labels("app=web", json!({}), false);
}

#[test]
fn label_inequality_matches_missing_keys() {
    check_labels("app!=web", json!({"app": "db"}), true);
    check_labels("app!=web", json!({}), true);
    check_labels("app!=web", json!({"app": "web"}), false);
}

#[test]
fn label_sets() {
    check_labels("env in (prod, staging)", json!({"env": "staging"}), true);
    check_labels("env in (prod,staging)", json!({"env": "dev"}), false);
    check_labels("env in (prod)", json!({}), false);
    check_labels("env notin (prod,staging)", json!({"env": "dev"}), true);
    check_labels("env notin (prod,staging)", json!({}), true);
    check_labels("env notin (prod,staging)", json!({"env": "prod"}), false);
}

#[test]
fn label_existence() {
    check_labels("app", json!({"app": "x"}), true);
    check_labels("app", json!({}), false);
    check_labels("!app", json!({}), true);
    check_labels("!app", json!({"app": "x"}), false);
}

#[test]
fn label_conjunction_with_sets() {
    let selector = "app=web,env in (a,b),!legacy,tier";
    check_labels(
        selector,
        json!({"app": "web", "env": "b", "tier": "1"}),
        true,
    );
    check_labels(
        selector,
        json!({"app": "web", "env": "b", "tier": "1", "legacy": "y"}),
        false,
    );
    check_labels(
        selector,
        json!({"app": "web", "env": "c", "tier": "1"}),
        false,
    );
}

#[test]
fn label_numeric_comparisons() {
    check_labels("gen>2", json!({"gen": "3"}), true);
    check_labels("gen>2", json!({"gen": "2"}), false);
    check_labels("gen<2", json!({"gen": "1"}), true);
    check_labels("gen<2", json!({}), false);
}

#[test]
fn empty_label_selector_selects_everything() {
    check_labels("", json!({}), true);
    check_labels("", json!({"a": "b"}), true);
}

#[test]
fn label_selector_errors_are_bad_requests() {
    for bad in [
        "app=web,",
        "env in (a",
        "env in a,b",
        "app=we b",
        "=x",
        "app~x",
        "a,,b",
    ] {
        let err = LabelSelector::parse(bad).unwrap_err();
        assert_eq!(err.code(), 400, "{bad:?} gave {err}");
        assert_eq!(err.reason(), "BadRequest");
    }
}

#[test]
fn field_selectors() {
    let pod = json!({"metadata": {"name": "p1", "namespace": "ns"}, "status": {"phase": "Running"}, "spec": {"priority": 5}});
    let check = |selector: &str, expected: bool| {
        assert_eq!(
            FieldSelector::parse(selector).unwrap().matches(&pod),
            expected,
            "{selector}"
        );
    };
    check("metadata.name=p1", true);
    check("metadata.name==p1", true);
    check("metadata.name!=p1", false);
    check("metadata.name=p2", false);
    check("metadata.namespace=ns,metadata.name=p1", true);
    check("metadata.namespace=ns,metadata.name=p2", false);
    check("status.phase!=Pending", true);
    check("spec.priority=5", true);
    // A missing field compares as the empty string.
    check("spec.nodeName=", true);
    check("spec.nodeName!=", false);
    check("", true);
    for bad in ["metadata.name", "=x", "metadata..name=x", "a=b,"] {
        assert_eq!(FieldSelector::parse(bad).unwrap_err().code(), 400, "{bad}");
    }
}

#[track_caller]
fn check_strategic(target: Value, patch: Value, expected: Value) {
    let mut target = target;
    strategic_merge(&mut target, &patch).unwrap();
    assert_eq!(target, expected);
}

#[test]
fn strategic_merge_adds_a_container_by_name() {
    check_strategic(
        json!({"spec": {"containers": [{"name": "app", "image": "a:1"}]}}),
        json!({"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}),
        json!({"spec": {"containers": [{"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "s:1"}]}}),
    );
}

#[test]
fn strategic_merge_merges_a_container_with_the_same_name() {
    check_strategic(
        json!({"spec": {"containers": [{"name": "app", "image": "a:1", "args": ["x"]}]}}),
        json!({"spec": {"containers": [{"name": "app", "image": "a:2"}]}}),
        json!({"spec": {"containers": [{"name": "app", "image": "a:2", "args": ["x"]}]}}),
    );
}

#[test]
fn strategic_merge_keys_nested_lists() {
    check_strategic(
        json!({"containers": [{"name": "app",
            "volumeMounts": [{"name": "v", "mountPath": "/a"}],
            "env": [{"name": "A", "value": "1"}],
            "ports": [{"containerPort": 80, "name": "http"}]}]}),
        json!({"containers": [{"name": "app",
            "volumeMounts": [{"name": "w", "mountPath": "/b"}, {"name": "v2", "mountPath": "/a"}],
            "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
            "ports": [{"containerPort": 9090, "name": "metrics"}]}]}),
        json!({"containers": [{"name": "app",
            "volumeMounts": [{"name": "v2", "mountPath": "/a"}, {"name": "w", "mountPath": "/b"}],
            "env": [{"name": "A", "value": "2"}, {"name": "B", "value": "3"}],
            "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 9090, "name": "metrics"}]}]}),
    );
}

#[test]
fn strategic_merge_deletes_by_directive_and_null() {
    check_strategic(
        json!({"metadata": {"labels": {"a": "1", "b": "2"}},
               "spec": {"volumes": [{"name": "x"}, {"name": "y"}]}}),
        json!({"metadata": {"labels": {"a": null}},
               "spec": {"volumes": [{"name": "x", "$patch": "delete"}]}}),
        json!({"metadata": {"labels": {"b": "2"}}, "spec": {"volumes": [{"name": "y"}]}}),
    );
}

#[test]
fn strategic_merge_replace_directives() {
    check_strategic(
        json!({"spec": {"template": {"a": 1, "b": 2}, "volumes": [{"name": "x"}, {"name": "y"}]}}),
        json!({"spec": {"template": {"$patch": "replace", "c": 3},
                        "volumes": [{"$patch": "replace"}, {"name": "z"}]}}),
        json!({"spec": {"template": {"c": 3}, "volumes": [{"name": "z"}]}}),
    );
}

#[test]
fn strategic_merge_replaces_unkeyed_lists_and_unions_finalizers() {
    check_strategic(
        json!({"args": ["a", "b"], "metadata": {"finalizers": ["x"]}}),
        json!({"args": ["c"], "metadata": {"finalizers": ["y", "x"]}}),
        json!({"args": ["c"], "metadata": {"finalizers": ["x", "y"]}}),
    );
    check_strategic(
        json!({"metadata": {"finalizers": ["x", "y"]}}),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        json!({"metadata": {"finalizers": ["y"]}}),
    );
}

#[test]
fn strategic_merge_ignores_ordering_directives() {
    check_strategic(
        json!({"spec": {"containers": [{"name": "a"}]}}),
        json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "a", "image": "i"}]}}),
        json!({"spec": {"containers": [{"name": "a", "image": "i"}]}}),
    );
}

#[test]
fn strategic_merge_needs_the_merge_key() {
    let mut target = json!({"containers": [{"name": "a"}]});
    let err = strategic_merge(&mut target, &json!({"containers": [{"image": "x"}]})).unwrap_err();
    assert_eq!(err.code(), 400);
}

#[test]
fn patch_kinds_follow_the_content_type() {
    assert_eq!(
        PatchKind::from_content_type(Some("application/merge-patch+json")),
        Ok(PatchKind::Merge)
    );
    assert_eq!(
        PatchKind::from_content_type(Some(
            "application/strategic-merge-patch+json; charset=utf-8"
        )),
        Ok(PatchKind::Strategic)
    );
    assert_eq!(
        PatchKind::from_content_type(Some("application/json-patch+json")),
        Ok(PatchKind::Json)
    );
    assert_eq!(
        PatchKind::from_content_type(Some("application/apply-patch+yaml")),
        Ok(PatchKind::Apply)
    );
    assert_eq!(
        PatchKind::from_content_type(Some("application/json"))
            .unwrap_err()
            .code(),
        415
    );
    assert_eq!(PatchKind::from_content_type(None).unwrap_err().code(), 415);
}

#[test]
fn patches_reject_malformed_bodies() {
    let target = json!({"a": 1});
    for kind in [
        PatchKind::Merge,
        PatchKind::Strategic,
        PatchKind::Apply,
        PatchKind::Json,
    ] {
        assert_eq!(
            patch::apply(kind, &target, b"{not json")
                .unwrap_err()
                .code(),
            400,
            "{kind:?}"
        );
    }
    assert_eq!(
        patch::apply(PatchKind::Merge, &target, b"[1]")
            .unwrap_err()
            .code(),
        400
    );
    let failed_test = br#"[{"op": "test", "path": "/a", "value": 2}]"#;
    assert_eq!(
        patch::apply(PatchKind::Json, &target, failed_test)
            .unwrap_err()
            .code(),
        422
    );
}

#[test]
fn merge_patch_replaces_lists() {
    let target = json!({"spec": {"containers": [{"name": "a"}]}});
    let patched = patch::apply(
        PatchKind::Merge,
        &target,
        br#"{"spec": {"containers": [{"name": "b"}]}}"#,
    )
    .unwrap();
    assert_eq!(patched, json!({"spec": {"containers": [{"name": "b"}]}}));
}

#[test]
fn routes() {
    let pods = resources::find("", "v1", "pods").unwrap();
    let deployments = resources::find("apps", "v1", "deployments").unwrap();
    assert_eq!(
        resolve("", "v1", &["namespaces", "ns", "pods"]),
        Ok(Target::Collection {
            resource: pods,
            namespace: Some("ns".into())
        })
    );
    assert_eq!(
        resolve("", "v1", &["pods"]),
        Ok(Target::Collection {
            resource: pods,
            namespace: None
        })
    );
    assert_eq!(
        resolve(
            "apps",
            "v1",
            &["namespaces", "ns", "deployments", "web", "scale"]
        ),
        Ok(Target::Object {
            resource: deployments,
            namespace: "ns".into(),
            name: "web".into(),
            subresource: Some("scale".into()),
        })
    );
    assert_eq!(
        resolve("", "v1", &["namespaces", "ns"]),
        Ok(Target::Object {
            resource: NAMESPACES,
            namespace: String::new(),
            name: "ns".into(),
            subresource: None
        })
    );
    assert_eq!(
        resolve("", "v1", &["namespaces", "ns", "status"]),
        Ok(Target::Object {
            resource: NAMESPACES,
            namespace: String::new(),
            name: "ns".into(),
            subresource: Some("status".into()),
        })
    );
    assert_eq!(
        resolve("", "v1", &["pods", "p"]),
        Err(Error::UnknownResource)
    );
    assert_eq!(
        resolve("", "v1", &["namespaces", "ns", "nodes"]),
        Err(Error::UnknownResource)
    );
    assert_eq!(resolve("", "v1", &["widgets"]), Err(Error::UnknownResource));
    assert_eq!(
        resolve("apps", "v2", &["deployments"]),
        Err(Error::UnknownResource)
    );
}

#[test]
fn queries_decode_like_kube_rs_encodes_them() {
    let query = Query::parse(
        "&watch=true&labelSelector=app%3Dweb%2Cenv+in+%28a%2Cb%29&timeoutSeconds=290&dryRun=All",
    )
    .unwrap();
    assert!(query.watch);
    assert!(query.dry_run);
    assert_eq!(query.label_selector, "app=web,env in (a,b)");
    assert_eq!(query.timeout_seconds, Some(290));
    assert_eq!(Query::parse("watch=maybe").unwrap_err().code(), 400);
    assert_eq!(Query::parse("dryRun=Some").unwrap_err().code(), 400);
    assert_eq!(percent_decode("a%2Fb+c", false).unwrap(), "a/b+c");
    assert_eq!(percent_decode("%zz", false).unwrap_err().code(), 400);
}

#[test]
fn namespaces_index_in_the_table() {
    assert_eq!(NAMESPACES.plural, "namespaces");
    assert!(!NAMESPACES.namespaced);
    for (i, a) in RESOURCES.iter().enumerate() {
        for b in &RESOURCES[i + 1..] {
            assert!(
                (a.group, a.version, a.plural) != (b.group, b.version, b.plural),
                "{} twice",
                a.plural
            );
        }
    }
}

fn pods() -> &'static resources::Resource {
    resources::find("", "v1", "pods").unwrap()
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"containers": [{"name": "app", "image": "a:1"}]}})
}

fn rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn store_seeds_namespaces_and_counts_revisions() {
    let mut store = Store::new(100, 1);
    assert!(store.get(NAMESPACES, "", "default").is_ok());
    let start = store.revision();
    let created = store
        .create(pods(), "default", pod("a"), Scope::Main, false)
        .unwrap();
    assert_eq!(rv(&created), start + 1);
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["metadata"]["namespace"], "default");
    assert!(
        created["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    let other = store
        .create(pods(), "default", pod("b"), Scope::Main, false)
        .unwrap();
    assert_eq!(rv(&other), start + 2);
}

#[test]
fn store_refuses_conflicts_and_skips_no_op_writes() {
    let mut store = Store::new(100, 1);
    let created = store
        .create(pods(), "default", pod("a"), Scope::Main, false)
        .unwrap();
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = "1".into();
    let err = store
        .update(pods(), "default", "a", stale, Scope::Main, false)
        .unwrap_err();
    assert_eq!((err.code(), err.reason()), (409, "Conflict"));
    let same = store
        .update(pods(), "default", "a", created.clone(), Scope::Main, false)
        .unwrap();
    assert_eq!(same, created);
    let mut changed = created.clone();
    changed["spec"]["containers"][0]["image"] = "a:2".into();
    let updated = store
        .update(pods(), "default", "a", changed, Scope::Main, false)
        .unwrap();
    assert_eq!(rv(&updated), rv(&created) + 1);
    assert_eq!(updated["metadata"]["generation"], 2);
}

#[test]
fn store_keeps_status_out_of_main_writes() {
    let mut store = Store::new(100, 1);
    let mut seeded = pod("a");
    seeded["status"] = json!({"phase": "Running"});
    store.upsert(seeded).unwrap();
    let mut body = store.get(pods(), "default", "a").unwrap();
    body["status"]["phase"] = "Failed".into();
    body["metadata"]["labels"] = json!({"x": "y"});
    let updated = store
        .update(pods(), "default", "a", body.clone(), Scope::Main, false)
        .unwrap();
    assert_eq!(updated["status"]["phase"], "Running");
    assert_eq!(updated["metadata"]["labels"]["x"], "y");
    body["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"].clone();
    body["metadata"]["labels"] = json!({});
    let status = store
        .update(pods(), "default", "a", body, Scope::Status, false)
        .unwrap();
    assert_eq!(status["status"]["phase"], "Failed");
    assert_eq!(status["metadata"]["labels"]["x"], "y");
}

#[test]
fn store_defers_deletion_until_finalizers_are_gone() {
    let mut store = Store::new(100, 1);
    let mut body = pod("a");
    body["metadata"]["finalizers"] = json!(["bulwark.io/hold"]);
    store
        .create(pods(), "default", body, Scope::Main, false)
        .unwrap();
    let (marked, deletion) = store
        .delete(pods(), "default", "a", &Preconditions::default(), false)
        .unwrap();
    assert_eq!(deletion, Deletion::Pending);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let patch = br#"{"metadata": {"finalizers": null}}"#;
    store
        .patch(
            pods(),
            "default",
            "a",
            PatchKind::Merge,
            patch,
            None,
            Scope::Main,
            false,
        )
        .unwrap();
    assert_eq!(store.get(pods(), "default", "a").unwrap_err().code(), 404);
}

#[test]
fn store_delete_preconditions() {
    let mut store = Store::new(100, 1);
    store
        .create(pods(), "default", pod("a"), Scope::Main, false)
        .unwrap();
    let wrong = Preconditions {
        uid: Some("nope".into()),
        resource_version: None,
    };
    assert_eq!(
        store
            .delete(pods(), "default", "a", &wrong, false)
            .unwrap_err()
            .code(),
        409
    );
    let wrong = Preconditions {
        uid: None,
        resource_version: Some("1".into()),
    };
    assert_eq!(
        store
            .delete(pods(), "default", "a", &wrong, false)
            .unwrap_err()
            .code(),
        409
    );
    assert!(
        store
            .delete(pods(), "default", "a", &Preconditions::default(), false)
            .is_ok()
    );
}

#[test]
fn store_history_expires() {
    let mut store = Store::new(2, 1);
    let start = store.revision();
    for name in ["a", "b", "c"] {
        store
            .create(pods(), "default", pod(name), Scope::Main, false)
            .unwrap();
    }
    let err = store.changes_after(start).unwrap_err();
    assert_eq!((err.code(), err.reason()), (410, "Expired"));
    assert_eq!(store.changes_after(start + 1).unwrap().len(), 2);
    store.compact();
    assert!(store.changes_after(start + 2).is_err());
    assert!(store.changes_after(store.revision()).unwrap().is_empty());
}

#[test]
fn store_dry_run_stores_nothing() {
    let mut store = Store::new(100, 1);
    let before = store.revision();
    let created = store
        .create(pods(), "default", pod("a"), Scope::Main, true)
        .unwrap();
    assert!(created["metadata"].get("resourceVersion").is_none());
    assert_eq!(store.revision(), before);
    assert!(store.get(pods(), "default", "a").is_err());
}

#[test]
fn store_validates_creates() {
    let mut store = Store::new(100, 1);
    let err = store
        .create(pods(), "missing", pod("a"), Scope::Main, false)
        .unwrap_err();
    assert_eq!(err.to_string(), "namespaces \"missing\" not found");
    let err = store
        .create(pods(), "default", pod("Bad_Name"), Scope::Main, false)
        .unwrap_err();
    assert_eq!((err.code(), err.reason()), (422, "Invalid"));
    let nameless = json!({"metadata": {}});
    assert_eq!(
        store
            .create(pods(), "default", nameless, Scope::Main, false)
            .unwrap_err()
            .code(),
        422
    );
    let mut elsewhere = pod("a");
    elsewhere["metadata"]["namespace"] = "kube-system".into();
    assert_eq!(
        store
            .create(pods(), "default", elsewhere, Scope::Main, false)
            .unwrap_err()
            .code(),
        400
    );
    let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "a"}});
    assert_eq!(
        store
            .create(pods(), "default", wrong_kind, Scope::Main, false)
            .unwrap_err()
            .code(),
        400
    );
    store
        .create(pods(), "default", pod("a"), Scope::Main, false)
        .unwrap();
    let err = store
        .create(pods(), "default", pod("a"), Scope::Main, false)
        .unwrap_err();
    assert_eq!((err.code(), err.reason()), (409, "AlreadyExists"));
}

#[test]
fn scale_view_of_a_deployment() {
    let deployment = json!({"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}},
        "status": {"replicas": 2}});
    let scale = scale_of(&deployment);
    assert_eq!(
        scale,
        json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
               "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "7"},
               "spec": {"replicas": 3},
               "status": {"replicas": 2, "selector": "app=web,tier in (a,b)"}})
    );
}

#[test]
fn status_objects_have_the_kubernetes_shape() {
    let err = Error::NotFound {
        resource: resources::find("apps", "v1", "deployments")
            .unwrap()
            .group_resource(),
        name: "web".into(),
    };
    assert_eq!(
        err.to_status(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "deployments.apps \"web\" not found", "reason": "NotFound",
               "details": {"name": "web", "group": "apps", "kind": "deployments"}, "code": 404})
    );
    assert_eq!(Error::Injected { code: 503 }.reason(), "ServiceUnavailable");
    assert_eq!(
        Error::Injected { code: 599 }.to_status().get("reason"),
        None
    );
}

#[test]
fn selectors_combine() {
    let selectors = Selectors {
        labels: LabelSelector::parse("app=web").unwrap(),
        fields: FieldSelector::parse("metadata.name=a").unwrap(),
    };
    assert!(selectors.matches(&json!({"metadata": {"name": "a", "labels": {"app": "web"}}})));
    assert!(!selectors.matches(&json!({"metadata": {"name": "b", "labels": {"app": "web"}}})));
}
