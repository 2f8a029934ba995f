//! What sentinel's remediation does on the API server, one request each: resolve a pod's
//! owning workload through its controller `ownerReferences`, delete a pod, read and set
//! replicas on the workload's spec, restart a rollout, force-delete pods stuck
//! terminating, and roll a Deployment back to
//! a template decided elsewhere (`bulwark_sentinel::remediation::plan`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::Error;

/// The workload a pod belongs to: `kind` is `Deployment`, `StatefulSet`, `DaemonSet`, `Job`,
/// `ReplicaSet` (one no Deployment controls) or `Pod` (no controller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

fn controller(refs: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    refs?.iter().find(|r| r.controller == Some(true))
}

/// The owning workload of pod `name` in `namespace`.
pub async fn owner_of(client: &kube::Client, namespace: &str, name: &str) -> Result<Owner, Error> {
    let pod = Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(Error::Api)?;
    let Some(r) = controller(pod.metadata.owner_references.as_ref()) else {
        return Ok(Owner {
            kind: "Pod".into(),
            name: name.into(),
        });
    };
    if r.kind != "ReplicaSet" {
        return Ok(Owner {
            kind: r.kind.clone(),
            name: r.name.clone(),
        });
    }
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .get(&r.name)
        .await
        .map_err(Error::Api)?;
    Ok(match controller(rs.metadata.owner_references.as_ref()) {
        Some(d) if d.kind == "Deployment" => Owner {
            kind: "Deployment".into(),
            name: d.name.clone(),
        },
        _ => Owner {
            kind: "ReplicaSet".into(),
            name: r.name.clone(),
        },
    })
}

/// Deletes pod `name`, with `grace_seconds` when given (else the pod's own grace period).
pub async fn delete_pod(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    grace_seconds: Option<u32>,
) -> Result<(), Error> {
    let params = DeleteParams {
        grace_period_seconds: grace_seconds,
        ..DeleteParams::default()
    };
    Api::<Pod>::namespaced(client.clone(), namespace)
        .delete(name, &params)
        .await
        .map(drop)
        .map_err(Error::Api)
}

/// What [`delete_stuck_pods`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StuckPods {
    /// Force-deleted.
    pub deleted: Vec<String>,
    /// Stuck, but held by finalizers, which a force delete does not remove: left alone.
    pub held_by_finalizers: Vec<String>,
}

/// Force-deletes (grace period 0) the pods stuck terminating past their grace period at
/// `now`, among pod `name` and the pods its controller owns (a bare pod: itself only).
/// Kubernetes keeps such a pod while its node is gone; the sibling scope keeps one rule's
/// error from touching another workload. Pods are listed a page of 500 at a time; a pod held
/// by finalizers is reported, not deleted (the controller that owns the finalizer must act).
pub async fn delete_stuck_pods(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    now: jiff::Timestamp,
) -> Result<StuckPods, Error> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let owner_uid = match api.get(name).await {
        Ok(pod) => controller(pod.metadata.owner_references.as_ref()).map(|r| r.uid.clone()),
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(StuckPods::default()),
        Err(e) => return Err(Error::Api(e)),
    };
    let mut done = StuckPods::default();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api.list(&params).await.map_err(Error::Api)?;
        for pod in &page.items {
            let m = &pod.metadata;
            let sibling = match &owner_uid {
                Some(uid) => controller(m.owner_references.as_ref()).is_some_and(|r| r.uid == *uid),
                None => m.name.as_deref() == Some(name),
            };
            // The API server sets deletionTimestamp to the end of the grace period.
            let overdue = m.deletion_timestamp.as_ref().is_some_and(|t| t.0 < now);
            if !(sibling && overdue) {
                continue;
            }
            let pod_name = m.name.clone().unwrap_or_default();
            if m.finalizers.as_ref().is_some_and(|f| !f.is_empty()) {
                done.held_by_finalizers.push(pod_name);
                continue;
            }
            let force = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            match api.delete(&pod_name, &force).await {
                Ok(_) => done.deleted.push(pod_name),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::Api(e)),
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(done),
        }
    }
}

/// The replicas of `owner` (a Deployment, StatefulSet or ReplicaSet), as its spec says them
/// (1 when unset, as the API server defaults it), and the `resourceVersion` they were read at.
///
/// Read and set on the object itself rather than its `scale` subresource: the seed's
/// ClusterRole grants `deployments` get and patch, not `deployments/scale`.
pub async fn replicas(
    client: &kube::Client,
    namespace: &str,
    owner: &Owner,
) -> Result<(i32, Option<String>), Error> {
    let name = &owner.name;
    let (replicas, version) = match owner.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .map(|d| (d.spec.and_then(|s| s.replicas), d.metadata.resource_version)),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .map(|d| (d.spec.and_then(|s| s.replicas), d.metadata.resource_version)),
        "ReplicaSet" => Api::<ReplicaSet>::namespaced(client.clone(), namespace)
            .get(name)
            .await
            .map(|d| (d.spec.and_then(|s| s.replicas), d.metadata.resource_version)),
        other => {
            return Err(Error::Settings(format!(
                "a {other} has no replicas to scale"
            )));
        }
    }
    .map_err(Error::Api)?;
    Ok((replicas.unwrap_or(1), version))
}

/// Sets the replicas of `owner` with a merge patch of `spec.replicas`; with `read_at`, only if
/// the object is still at that `resourceVersion` (else 409): a change made since it was read
/// (an autoscaler's, an operator's) is not overwritten.
pub async fn scale(
    client: &kube::Client,
    namespace: &str,
    owner: &Owner,
    replicas: i32,
    read_at: Option<&str>,
    manager: &str,
) -> Result<(), Error> {
    let mut body = json!({"spec": {"replicas": replicas}});
    if let Some(version) = read_at {
        body["metadata"] = json!({"resourceVersion": version});
    }
    merge_patch(
        client,
        namespace,
        owner,
        &["Deployment", "StatefulSet", "ReplicaSet"],
        body,
        manager,
        "cannot be scaled",
    )
    .await
}

/// `kubectl rollout restart`: sets `kubectl.kubernetes.io/restartedAt` to `at` (RFC 3339) on
/// the pod template of `owner` (a Deployment, StatefulSet or DaemonSet).
pub async fn rollout_restart(
    client: &kube::Client,
    namespace: &str,
    owner: &Owner,
    at: &str,
    manager: &str,
) -> Result<(), Error> {
    let body = json!({"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": at
    }}}}});
    merge_patch(
        client,
        namespace,
        owner,
        &["Deployment", "StatefulSet", "DaemonSet"],
        body,
        manager,
        "has no rollout to restart",
    )
    .await
}

/// A Deployment and the ReplicaSets it controls (by its selector and their controller
/// reference to it, as kubectl finds them).
pub async fn deployment_history(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(Deployment, Vec<ReplicaSet>), Error> {
    let deployment = Api::<Deployment>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(Error::Api)?;
    let selector = deployment
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.as_ref())
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let uid = deployment.metadata.uid.clone();
    let sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(Error::Api)?
        .items
        .into_iter()
        .filter(|rs| {
            controller(rs.metadata.owner_references.as_ref())
                .is_some_and(|r| r.kind == "Deployment" && Some(&r.uid) == uid.as_ref())
        })
        .collect();
    Ok((deployment, sets))
}

/// Rolls `deployment` (as read by [`deployment_history`]) back to `template` with
/// `annotations`, replacing both as kubectl's patch does, in one update carrying the
/// `resourceVersion` it was read at: if the Deployment changed since, the API server refuses
/// (409) rather than let the rollback undo someone else's change.
pub async fn rollback(
    client: &kube::Client,
    deployment: &Deployment,
    template: &PodTemplateSpec,
    annotations: &BTreeMap<String, String>,
    manager: &str,
) -> Result<(), Error> {
    let namespace = deployment
        .metadata
        .namespace
        .as_deref()
        .unwrap_or("default");
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    let mut updated = deployment.clone();
    updated.metadata.annotations = Some(annotations.clone());
    if let Some(spec) = updated.spec.as_mut() {
        spec.template = template.clone();
    }
    let params = PostParams {
        field_manager: Some(manager.to_owned()),
        ..PostParams::default()
    };
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .replace(name, &params, &updated)
        .await
        .map(drop)
        .map_err(Error::Api)
}

/// Merge-patches `owner` with `body` as `manager`, when its kind is one of `kinds`; otherwise
/// refuses with "a <kind> <refusal>".
async fn merge_patch(
    client: &kube::Client,
    namespace: &str,
    owner: &Owner,
    kinds: &[&str],
    body: serde_json::Value,
    manager: &str,
    refusal: &str,
) -> Result<(), Error> {
    let refused = || Error::Settings(format!("a {} {refusal}", owner.kind));
    if !kinds.contains(&owner.kind.as_str()) {
        return Err(refused());
    }
    let patch = Patch::Merge(body);
    let params = PatchParams {
        field_manager: Some(manager.to_owned()),
        ..PatchParams::default()
    };
    let name = &owner.name;
    let done = match owner.kind.as_str() {
        "Deployment" => patch_as::<Deployment>(client, namespace, name, &params, &patch).await,
        "StatefulSet" => patch_as::<StatefulSet>(client, namespace, name, &params, &patch).await,
        "DaemonSet" => patch_as::<DaemonSet>(client, namespace, name, &params, &patch).await,
        "ReplicaSet" => patch_as::<ReplicaSet>(client, namespace, name, &params, &patch).await,
        _ => return Err(refused()),
    };
    done.map_err(Error::Api)
}

async fn patch_as<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    params: &PatchParams,
    patch: &Patch<serde_json::Value>,
) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(name, params, patch)
        .await
        .map(drop)
}
