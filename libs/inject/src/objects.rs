//! The `core/v1` objects that injection adds to a pod: the keeper containers, the volumes and
//! the mounts, as typed structs that serialise as the Kubernetes API spells them.
//!
//! They hold only the fields injection sets, and borrow what comes from the webhook's
//! [`Defaults`](crate::Defaults) (its lifetime `'a`), so that an admission copies no image, argument or
//! quantity. Field names follow k8s-openapi's; `tests` reads every object back through
//! k8s-openapi and requires the same JSON, so a misspelt or misplaced field cannot pass.

use std::borrow::Cow;

use serde::Serialize;

/// A container (`core/v1.Container`): the init container or the sidecar.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container<'a> {
    pub name: &'static str,
    pub image: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<&'a str>,
    pub args: Vec<&'a str>,
    pub env: Vec<EnvVar<'a>>,
    pub volume_mounts: Vec<VolumeMount<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources<'a>>,
    pub security_context: SecurityContext,
    pub termination_message_policy: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// `Always` makes an init container a native sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<&'static str>,
}

/// An environment variable, set from a value or from the pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar<'a> {
    pub name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvSource<'a>>,
}

/// Where an environment variable's value comes from (`core/v1.EnvVarSource`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EnvSource<'a> {
    /// A field of the pod, through the downward API.
    #[serde(rename_all = "camelCase")]
    FieldRef { field_path: &'static str },
    /// A key of a Secret in the pod's namespace, resolved by the kubelet.
    #[serde(rename_all = "camelCase")]
    SecretKeyRef {
        name: Cow<'a, str>,
        key: &'static str,
    },
}

/// A volume mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount<'a> {
    pub name: &'static str,
    pub mount_path: Cow<'a, str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

/// Requests and limits (`core/v1.ResourceRequirements`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resources<'a> {
    #[serde(skip_serializing_if = "Quantities::is_empty")]
    pub limits: Quantities<'a>,
    #[serde(skip_serializing_if = "Quantities::is_empty")]
    pub requests: Quantities<'a>,
}

/// CPU and memory quantities, such as `100m` and `64Mi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quantities<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Cow<'a, str>>,
}

/// A container's security context: the restricted Pod Security profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    pub allow_privilege_escalation: bool,
    pub capabilities: Capabilities,
    pub read_only_root_filesystem: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    pub run_as_non_root: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    pub seccomp_profile: SeccompProfile,
}

/// Linux capabilities added and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub add: &'static [&'static str],
    pub drop: &'static [&'static str],
}

/// A seccomp profile by type, such as `RuntimeDefault`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A port a container listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: &'static str,
    pub container_port: u16,
    pub protocol: &'static str,
}

/// An HTTP probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    pub http_get: HttpGet,
    pub period_seconds: u32,
}

/// An HTTP GET on the container's own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HttpGet {
    pub path: &'static str,
    pub port: u16,
}

/// A volume of the pod (`core/v1.Volume`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume<'a> {
    pub name: &'static str,
    #[serde(flatten)]
    pub source: VolumeSource<'a>,
}

/// What a [`Volume`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VolumeSource<'a> {
    /// A directory that lives as long as the pod; `Memory` is a tmpfs.
    #[serde(rename_all = "camelCase")]
    EmptyDir {
        medium: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        size_limit: Option<Cow<'a, str>>,
    },
    /// Keys of a Secret as files.
    #[serde(rename_all = "camelCase")]
    Secret {
        secret_name: String,
        items: [KeyToPath; 1],
    },
    /// Keys of a ConfigMap as files.
    ConfigMap { name: String, items: [KeyToPath; 1] },
}

/// One key of a Secret or ConfigMap volume and the file it becomes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyToPath {
    pub key: String,
    pub path: &'static str,
}

impl Quantities<'_> {
    /// Whether neither quantity is set.
    pub fn is_empty(&self) -> bool {
        self.cpu.is_none() && self.memory.is_none()
    }
}

#[cfg(test)]
mod tests;
