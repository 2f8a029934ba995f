//! The pod mutation: a [`Plan`] of what injection adds, written as a minimal RFC 6902 JSON
//! patch against the pod as it is.
//!
//! The patch adds the marker and spec annotations, the tmpfs volume, the init container
//! (first, so that the pod's own init containers can read secrets), the sidecar (classic, or
//! native: an init container with `restartPolicy: Always`) and read-only mounts on the
//! selected containers, and nothing else. Arrays the pod has get elements appended; arrays it
//! lacks are added whole.
//! A pod that carries the marker or one of our containers gets an empty patch, so that
//! reinvocation and re-submitted pods are safe (upstream defect 1).

use std::borrow::Cow;

use bulwark_sidecar_spec::SidecarSpec;

use crate::annotations::InjectionRequest;
use crate::memo::Json;
use crate::objects::VolumeMount;
use crate::patch::{Annotations, Patch, Value};
use crate::plan::{Plan, Target};
use crate::pod::Pod;
use crate::{
    Error, INIT_CONTAINER, INJECTED, Injector, MOUNT_PATH, Result, SIDECAR_CONTAINER, VOLUME,
};

/// The result of admitting one pod; it borrows from the [`Injector`].
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation<'a> {
    pub outcome: Outcome,
    /// The JSON patch; empty unless [`Outcome::Injected`].
    pub patch: Patch<'a>,
    /// Admission warnings for the user.
    pub warnings: Vec<String>,
    /// The spec given to the keeper containers, when injected.
    pub spec: Option<SidecarSpec>,
}

/// What admission did with a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The pod does not ask for injection.
    NotRequested,
    /// The pod was injected before; the patch is empty.
    AlreadyInjected,
    /// The patch injects the pod.
    Injected,
}

/// Why a pod counts as injected already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// It has one of the keeper containers.
    Containers,
    /// It carries the marker, but none of the keeper containers.
    MarkerOnly,
}

/// The read-only mount of the shared volume in the application's containers.
const MOUNT: VolumeMount<'static> = VolumeMount {
    name: VOLUME,
    mount_path: Cow::Borrowed(MOUNT_PATH),
    read_only: true,
};

impl Mutation<'_> {
    pub(crate) fn empty(outcome: Outcome, warnings: Vec<String>) -> Self {
        Self {
            outcome,
            patch: Patch::new(),
            warnings,
            spec: None,
        }
    }

    /// Whether there is nothing to patch.
    pub fn is_empty(&self) -> bool {
        self.patch.is_empty()
    }
}

impl Outcome {
    /// A snake_case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotRequested => "not_requested",
            Outcome::AlreadyInjected => "already_injected",
            Outcome::Injected => "injected",
        }
    }
}

/// Why `pod` counts as injected already, if it does.
pub(crate) fn injected(pod: &Pod<'_>) -> Option<Injected> {
    let ours = pod.spec.as_ref().is_some_and(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.name == INIT_CONTAINER || c.name == SIDECAR_CONTAINER)
    });
    let marker = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INJECTED))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if ours {
        Some(Injected::Containers)
    } else if marker {
        Some(Injected::MarkerOnly)
    } else {
        None
    }
}

/// Computes the patch that injects `pod` as `request` asks, with the injector's defaults for
/// what it leaves open; the patch is empty when the pod is injected already.
pub fn mutate<'a>(
    pod: &Pod<'_>,
    mut request: InjectionRequest,
    injector: &'a Injector,
) -> Result<Mutation<'a>> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Error::Pod("the pod has no spec".to_owned()))?;
    match injected(pod) {
        Some(Injected::MarkerOnly) => {
            let mut warnings = std::mem::take(&mut request.warnings);
            warnings.push(format!(
                "{INJECTED} is \"true\" but the pod has no {INIT_CONTAINER} container, so nothing was injected: remove the annotation to inject"
            ));
            return Ok(Mutation::empty(Outcome::AlreadyInjected, warnings));
        }
        Some(Injected::Containers) => {
            return Ok(Mutation::empty(Outcome::AlreadyInjected, request.warnings));
        }
        None => {}
    }
    let plan = Plan::new(spec, request, injector)?;
    Ok(injection(pod, plan))
}

/// The mutation that adds what `plan` says to `pod`. The operations go in an order that keeps
/// every index valid: the annotations first (the marker is what makes every later admission of
/// this pod a no-op), the mounts before our init containers go in, so that init container
/// indexes are the pod's.
fn injection<'a>(pod: &Pod<'_>, plan: Plan<'a>) -> Mutation<'a> {
    let Plan {
        annotations,
        share_process_namespace,
        volumes,
        mounts,
        init_containers: keeper_init_containers,
        init_first,
        sidecar,
        warnings,
        spec: sidecar_spec,
    } = plan;
    let mut patch = Patch::new();
    let spec = pod.spec.as_ref();
    let init_containers = spec.and_then(|s| s.init_containers.as_deref());
    match &pod.metadata.annotations {
        None => patch.add(
            &["metadata", "annotations"],
            Value::Annotations(Annotations(annotations)),
        ),
        Some(_) => {
            for (key, value) in annotations {
                patch.add(&["metadata", "annotations", key], Value::Json(value));
            }
        }
    }
    if share_process_namespace {
        patch.add(&["spec", "shareProcessNamespace"], Value::Bool(true));
    }
    if !volumes.is_empty() {
        if spec.is_some_and(|s| s.volumes.is_some()) {
            for volume in volumes {
                patch.append(&["spec", "volumes"], Value::Volume(volume));
            }
        } else {
            patch.add(&["spec", "volumes"], Value::Volumes(volumes));
        }
    }
    for target in mounts {
        let (list, i, container) = match target {
            Target::App(i) => ("containers", i, spec.map(|s| &s.containers[i])),
            Target::Init(i) => ("initContainers", i, init_containers.map(|c| &c[i])),
        };
        let index = i.to_string();
        let tokens = ["spec", list, &index, "volumeMounts"];
        if container.is_some_and(|c| c.volume_mounts.is_some()) {
            patch.append(&tokens, Value::Mount(MOUNT));
        } else {
            patch.add(&tokens, Value::Mounts([MOUNT]));
        }
    }
    add_init_containers(
        &mut patch,
        init_containers.is_some(),
        init_first,
        keeper_init_containers,
    );
    if let Some(sidecar) = sidecar {
        patch.append(&["spec", "containers"], Value::Json(sidecar));
    }
    Mutation {
        outcome: Outcome::Injected,
        patch,
        warnings,
        spec: Some(sidecar_spec),
    }
}

/// Adds the keeper init containers before the pod's own (`first`) or after them.
fn add_init_containers(patch: &mut Patch<'_>, exists: bool, first: bool, containers: Vec<Json>) {
    if !exists {
        patch.add(&["spec", "initContainers"], Value::Jsons(containers));
        return;
    }
    for (i, container) in containers.into_iter().enumerate() {
        if first {
            let index = i.to_string();
            patch.add(&["spec", "initContainers", &index], Value::Json(container));
        } else {
            patch.append(&["spec", "initContainers"], Value::Json(container));
        }
    }
}

#[cfg(test)]
mod tests;
