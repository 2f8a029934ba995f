//! Sentinel's workload operations against the fake API server, read back from the server's
//! own store: owners through controller references, scale, rollout restart, pod deletion, and
//! a rollback guarded by the resourceVersion it was read at.

use std::collections::BTreeMap;

use bulwark_kube::workloads::{self, Owner};
use bulwark_test_util::kube_api::FakeKube;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};

use crate::client_for;

fn template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [{"name": "app", "image": image}]}})
}

fn seed(fake: &FakeKube) {
    let d = fake
        .insert(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "api", "namespace": "shop", "annotations": {"team": "x"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "api"}}, "template": template("api:2")}}))
        .unwrap();
    let uid = d["metadata"]["uid"].as_str().unwrap().to_owned();
    let by = |kind: &str, name: &str, uid: &str| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
    for (name, rev, image) in [("api-1", "1", "api:1"), ("api-2", "2", "api:2")] {
        fake.insert(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "api"},
                "annotations": {"deployment.kubernetes.io/revision": rev}, "ownerReferences": by("Deployment", "api", &uid)},
            "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": template(image)}}))
            .unwrap();
    }
    fake.insert(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "orphan", "namespace": "shop", "labels": {"app": "api"}},
        "spec": {"selector": {"matchLabels": {"app": "orphan"}}, "template": template("x")}}))
        .unwrap();
    for (name, owner) in [
        ("api-2-x2k4q", by("ReplicaSet", "api-2", "rs-uid")),
        ("web-0", by("StatefulSet", "web", "sts-uid")),
        ("orphan-bn4kd", by("ReplicaSet", "orphan", "o-uid")),
        ("bare", json!([])),
    ] {
        fake.insert(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "ownerReferences": owner},
            "spec": {"containers": [{"name": "app", "image": "x"}]}}))
            .unwrap();
    }
}

/// The Deployment `api` as the API server holds it now.
fn api_deployment(fake: &FakeKube) -> Value {
    fake.get("apps/v1", "deployments", Some("shop"), "api")
        .unwrap()
}

fn owner(kind: &str, name: &str) -> Owner {
    Owner {
        kind: kind.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn owners_scale_restart_and_delete() {
    let fake = FakeKube::start().await.unwrap();
    seed(&fake);
    let (client, _dir) = client_for(&fake).await;
    for (pod, want) in [
        ("api-2-x2k4q", owner("Deployment", "api")),
        ("web-0", owner("StatefulSet", "web")),
        ("orphan-bn4kd", owner("ReplicaSet", "orphan")),
        ("bare", owner("Pod", "bare")),
    ] {
        assert_eq!(
            workloads::owner_of(&client, "shop", pod).await.unwrap(),
            want,
            "{pod}"
        );
    }
    let api = owner("Deployment", "api");
    let (replicas, read_at) = workloads::replicas(&client, "shop", &api).await.unwrap();
    assert_eq!(replicas, 2);
    workloads::scale(&client, "shop", &api, 4, read_at.as_deref(), "sentinel")
        .await
        .unwrap();
    let d = api_deployment(&fake);
    assert_eq!(d["spec"]["replicas"], 4);
    // Changed since it was read (an autoscaler, say): the stale scale is refused, not applied.
    let e = workloads::scale(&client, "shop", &api, 6, read_at.as_deref(), "sentinel")
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("409"), "{e:?}");
    let d = api_deployment(&fake);
    assert_eq!(d["spec"]["replicas"], 4);
    workloads::rollout_restart(&client, "shop", &api, "2026-12-05T08:00:00Z", "sentinel")
        .await
        .unwrap();
    let d = api_deployment(&fake);
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2026-12-05T08:00:00Z"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"], "api:2",
        "the rest of the template stays"
    );
    let e = workloads::scale(
        &client,
        "shop",
        &owner("DaemonSet", "x"),
        1,
        None,
        "sentinel",
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("DaemonSet"), "{e}");
    workloads::delete_pod(&client, "shop", "bare", Some(0))
        .await
        .unwrap();
    assert!(fake.get("v1", "pods", Some("shop"), "bare").is_none());
}

#[tokio::test]
async fn rollback_replaces_the_template_and_refuses_a_stale_read() {
    let fake = FakeKube::start().await.unwrap();
    seed(&fake);
    let (client, _dir) = client_for(&fake).await;
    let (deployment, sets) = workloads::deployment_history(&client, "shop", "api")
        .await
        .unwrap();
    let names: Vec<&str> = sets
        .iter()
        .filter_map(|rs| rs.metadata.name.as_deref())
        .collect();
    assert_eq!(
        names,
        ["api-1", "api-2"],
        "the orphan ReplicaSet is not the Deployment's"
    );
    let previous: PodTemplateSpec = serde_json::from_value(template("api:1")).unwrap();
    let annotations = BTreeMap::from([("team".to_owned(), "x".to_owned())]);
    workloads::rollback(&client, &deployment, &previous, &annotations, "sentinel")
        .await
        .unwrap();
    let d = api_deployment(&fake);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "api:1"
    );
    assert_eq!(d["metadata"]["annotations"], json!({"team": "x"}));
    // The same, stale read again: the API server refuses it.
    let e = workloads::rollback(&client, &deployment, &previous, &annotations, "sentinel")
        .await
        .unwrap_err();
    assert!(
        format!("{e:?}").contains("409") || format!("{e:?}").contains("Conflict"),
        "{e:?}"
    );
}
