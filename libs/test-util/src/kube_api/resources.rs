//! The table of resources the fake API server knows, and the discovery documents built from it.
//!
//! The table is static because every test sees the same API surface:
//! a resource missing here answers 404 exactly like an API server without that API group.

use serde_json::{Value, json};

/// One served resource: where it lives in the URL space and what its objects are called.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) plural: &'static str,
    pub(crate) singular: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) namespaced: bool,
    /// Whether the resource has a `status` subresource, which also means that writes
    /// to the main resource leave `status` alone.
    pub(crate) status: bool,
    /// Whether the resource has an `autoscaling/v1` `scale` subresource mapped to `spec.replicas`.
    pub(crate) scale: bool,
    pub(crate) short_names: &'static [&'static str],
}

impl Resource {
    /// The `apiVersion` of objects of this resource, `v1` for the core group.
    pub(crate) fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kind of the list returned by a collection GET.
    pub(crate) fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The group-qualified resource name used in error messages, such as `deployments.apps`.
    pub(crate) fn group_resource(&self) -> GroupResource {
        GroupResource {
            group: self.group,
            plural: self.plural,
        }
    }
}

/// A resource name qualified by its API group, as Kubernetes prints it in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupResource {
    /// The API group, empty for the core group.
    pub group: &'static str,
    /// The plural resource name, such as `pods`.
    pub plural: &'static str,
}

impl std::fmt::Display for GroupResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.plural)
        } else {
            write!(f, "{}.{}", self.plural, self.group)
        }
    }
}

/// The namespace resource, which creation of namespaced objects checks against.
pub(crate) const NAMESPACES: &Resource = &RESOURCES[4];

/// Namespaces present in a fresh server, as in a fresh cluster.
pub(crate) const SEED_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Every resource the fake serves.
///
/// `NAMESPACES` indexes into this table, so keep `namespaces` at index 4.
pub(crate) static RESOURCES: [Resource; 21] = [
    core("pods", "pod", "Pod", true, true, &["po"]),
    core("secrets", "secret", "Secret", true, false, &[]),
    core("configmaps", "configmap", "ConfigMap", true, false, &["cm"]),
    core("events", "event", "Event", true, false, &["ev"]),
    core("namespaces", "namespace", "Namespace", false, true, &["ns"]),
    core(
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        false,
        &["sa"],
    ),
    core("services", "service", "Service", true, true, &["svc"]),
    core("endpoints", "endpoints", "Endpoints", true, false, &["ep"]),
    core("nodes", "node", "Node", false, true, &["no"]),
    core(
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        true,
        true,
        &["pvc"],
    ),
    apps("deployments", "deployment", "Deployment", true, &["deploy"]),
    apps("replicasets", "replicaset", "ReplicaSet", true, &["rs"]),
    apps("statefulsets", "statefulset", "StatefulSet", true, &["sts"]),
    apps("daemonsets", "daemonset", "DaemonSet", false, &["ds"]),
    grouped("batch", "jobs", "job", "Job", true, true),
    grouped("batch", "cronjobs", "cronjob", "CronJob", true, true),
    grouped(
        "coordination.k8s.io",
        "leases",
        "lease",
        "Lease",
        true,
        false,
    ),
    grouped("events.k8s.io", "events", "event", "Event", true, false),
    grouped(
        "policy",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        true,
        true,
    ),
    grouped(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        false,
        false,
    ),
    grouped(
        "rbac.authorization.k8s.io",
        "roles",
        "role",
        "Role",
        true,
        false,
    ),
];

/// Looks a resource up by its URL coordinates.
pub(crate) fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by `apiVersion` and plural, as the test hooks name them.
pub(crate) fn find_by_api_version(api_version: &str, plural: &str) -> Option<&'static Resource> {
    let (group, version) = split_api_version(api_version);
    find(group, version, plural)
}

/// Looks a resource up by `apiVersion` and `kind`, as objects name themselves.
pub(crate) fn find_by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// Splits `group/version` into its parts; the core group has no slash.
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// `GET /version`, shaped like the `version.Info` of a Kubernetes 1.33 server.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0-bulwark-fake",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `GET /api`: the versions of the core group.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `GET /apis`: every named group, each with its single served version.
pub(crate) fn group_list() -> Value {
    let mut groups: Vec<Value> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !seen.contains(&r.group) {
            seen.push(r.group);
            groups.push(group(r.group).unwrap_or(Value::Null));
        }
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/{group}`, or `None` for a group the fake does not serve.
pub(crate) fn group(name: &str) -> Option<Value> {
    let r = RESOURCES
        .iter()
        .find(|r| !r.group.is_empty() && r.group == name)?;
    let version = json!({"groupVersion": r.api_version(), "version": r.version});
    Some(json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": [version.clone()],
        "preferredVersion": version,
    }))
}

/// `GET /api/v1` or `GET /apis/{group}/{version}`, or `None` for an unserved group version.
pub(crate) fn resource_list(group: &str, version: &str) -> Option<Value> {
    let verbs = [
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch",
    ];
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
            "shortNames": r.short_names,
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if r.scale {
            resources.push(json!({
                "name": format!("{}/scale", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

const fn core(
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource {
        group: "",
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        status,
        scale: false,
        short_names,
    }
}

const fn apps(
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    scale: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource {
        group: "apps",
        version: "v1",
        plural,
        singular,
        kind,
        namespaced: true,
        status: true,
        scale,
        short_names,
    }
}

const fn grouped(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    status: bool,
) -> Resource {
    Resource {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        status,
        scale: false,
        short_names: &[],
    }
}
