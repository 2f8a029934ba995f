//! The parts of a pod that injection reads, borrowed from the JSON they came in.
//!
//! Admission deserialises these few fields instead of a whole k8s-openapi `Pod`: every other
//! field is skipped without being built, and names are borrowed from the request body unless
//! they hold JSON escapes. The API server has decoded the object into a Pod before it calls a
//! webhook and validates the patched pod again afterwards, so reading the whole Pod here would
//! validate nothing it does not; a field we read that has the wrong shape is still an error.
//! `explain`, which reads manifests nobody has validated, checks them as whole Pods first.
//!
//! Field names and optionality are the Pod's (`core/v1`); `tests` checks them against
//! k8s-openapi on real pod shapes.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Deserialize;

/// A pod: its metadata and its spec.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Pod<'a> {
    #[serde(default, borrow)]
    pub metadata: Metadata<'a>,
    #[serde(borrow)]
    pub spec: Option<PodSpec<'a>>,
}

/// `metadata`: names and annotations.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'a> {
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub generate_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub annotations: Option<BTreeMap<Str<'a>, Str<'a>>>,
}

/// `spec`: the containers, volumes and pod-level settings that injection depends on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec<'a> {
    #[serde(default, borrow)]
    pub containers: Vec<Container<'a>>,
    #[serde(borrow)]
    pub init_containers: Option<Vec<Container<'a>>>,
    #[serde(borrow)]
    pub volumes: Option<Vec<Volume<'a>>>,
    pub security_context: Option<PodSecurityContext>,
    pub share_process_namespace: Option<bool>,
    #[serde(borrow)]
    pub os: Option<PodOs<'a>>,
    #[serde(borrow)]
    pub node_selector: Option<BTreeMap<Str<'a>, Str<'a>>>,
    #[serde(borrow)]
    pub affinity: Option<Affinity<'a>>,
}

/// A container or init container.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub env: Option<Vec<EnvVar<'a>>>,
    #[serde(borrow)]
    pub volume_mounts: Option<Vec<VolumeMount<'a>>>,
    pub ports: Option<Vec<ContainerPort>>,
    pub security_context: Option<SecurityContext>,
}

/// One of a container's `env`; only plain values are read (the identity webhooks' are).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow, default)]
    pub value: Option<Cow<'a, str>>,
}

/// One of a container's `volumeMounts`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub mount_path: Cow<'a, str>,
}

/// One of a container's `ports`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub container_port: i32,
}

/// A container's `securityContext`: who it runs as.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    pub run_as_user: Option<i64>,
}

/// The pod's `securityContext`: who its containers run as and which group owns its volumes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    pub run_as_user: Option<i64>,
    pub fs_group: Option<i64>,
}

/// One of the pod's `volumes`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    #[serde(borrow)]
    pub empty_dir: Option<EmptyDir<'a>>,
}

/// An `emptyDir` volume source.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EmptyDir<'a> {
    #[serde(borrow)]
    pub medium: Option<Cow<'a, str>>,
}

/// `spec.os`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PodOs<'a> {
    #[serde(borrow)]
    pub name: Cow<'a, str>,
}

/// `spec.affinity`: only the node affinity the scheduler must honour.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Affinity<'a> {
    #[serde(borrow)]
    pub node_affinity: Option<NodeAffinity<'a>>,
}

/// `nodeAffinity`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAffinity<'a> {
    #[serde(borrow)]
    pub required_during_scheduling_ignored_during_execution: Option<NodeSelector<'a>>,
}

/// A node selector: a node matches when it matches any of the terms.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelector<'a> {
    #[serde(default, borrow)]
    pub node_selector_terms: Vec<NodeSelectorTerm<'a>>,
}

/// A term: a node matches when it matches all of its expressions.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorTerm<'a> {
    #[serde(borrow)]
    pub match_expressions: Option<Vec<NodeSelectorRequirement<'a>>>,
}

/// `key operator values`, on a node's labels.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NodeSelectorRequirement<'a> {
    #[serde(borrow)]
    pub key: Cow<'a, str>,
    #[serde(borrow)]
    pub operator: Cow<'a, str>,
    #[serde(borrow)]
    pub values: Option<Vec<Str<'a>>>,
}

/// The node labels the kubelet sets to its operating system (the second one deprecated).
const OS_LABELS: [&str; 2] = ["kubernetes.io/os", "beta.kubernetes.io/os"];

impl PodSpec<'_> {
    /// Where the pod asks for an operating system other than Linux, naming the field and the
    /// value: `spec.os.name`, a `nodeSelector` on the OS label, or a required node affinity
    /// none of whose terms can match a Linux node.
    pub fn other_os(&self) -> Option<String> {
        if let Some(os) = self.os.as_ref().filter(|os| os.name != "linux") {
            return Some(format!("spec.os.name is {:?}", os.name));
        }
        for label in OS_LABELS {
            if let Some(value) = self
                .node_selector
                .as_ref()
                .and_then(|s| s.get(label))
                .filter(|v| &***v != "linux")
            {
                return Some(format!("nodeSelector {label} is {:?}", &**value));
            }
        }
        let terms = &self
            .affinity
            .as_ref()?
            .node_affinity
            .as_ref()?
            .required_during_scheduling_ignored_during_execution
            .as_ref()?
            .node_selector_terms;
        let excluding: Vec<&NodeSelectorRequirement<'_>> = terms
            .iter()
            .map(|term| {
                term.match_expressions
                    .iter()
                    .flatten()
                    .find(|e| e.excludes_linux())
            })
            .collect::<Option<_>>()?;
        let first = excluding.first()?;
        let values: Vec<&str> = first.values.iter().flatten().map(|v| &**v).collect();
        Some(format!(
            "required node affinity matches no Linux node ({} {} {values:?})",
            first.key, first.operator
        ))
    }
}

impl NodeSelectorRequirement<'_> {
    /// Whether no node labelled as running Linux can match this requirement.
    fn excludes_linux(&self) -> bool {
        if !OS_LABELS.contains(&&*self.key) {
            return false;
        }
        let linux = self.values.iter().flatten().any(|v| &**v == "linux");
        match &*self.operator {
            "In" => !linux,
            "NotIn" => linux,
            // Every node has the label.
            "DoesNotExist" => true,
            _ => false,
        }
    }
}

/// A string, borrowed from the JSON it came in unless it holds escapes: an annotation key or
/// value. (serde borrows a `Cow` only where it is a field's own type, not inside a map.)
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub struct Str<'a>(#[serde(borrow)] pub Cow<'a, str>);

impl std::borrow::Borrow<str> for Str<'_> {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Str<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> Pod<'a> {
    /// The pod in `json`, borrowing from it where it can.
    pub fn from_json(json: &'a str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }
}

#[cfg(test)]
mod tests;
