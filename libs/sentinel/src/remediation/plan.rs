//! What an action does to a workload, decided from the objects alone (the engine in part 2
//! fetches them and applies the result): whether the action fits the owner, the replica
//! count a scale sets, and kubectl's rollback (research/sentinel.md §1.10).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::rules::Action;
use crate::rules::action::Replicas;

/// The kinds a pod's controller chain ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    /// A ReplicaSet no Deployment owns.
    ReplicaSet,
    /// A pod without a controller.
    Pod,
}

impl OwnerKind {
    /// Reads a Kubernetes kind written by [`Self::as_str`].
    pub fn parse(kind: &str) -> Option<Self> {
        [
            Self::Deployment,
            Self::StatefulSet,
            Self::DaemonSet,
            Self::Job,
            Self::ReplicaSet,
            Self::Pod,
        ]
        .into_iter()
        .find(|k| k.as_str() == kind)
    }

    /// The Kubernetes kind.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::Job => "Job",
            Self::ReplicaSet => "ReplicaSet",
            Self::Pod => "Pod",
        }
    }
}

/// Whether `action` can be carried out on a workload of `kind`; the error is the reason,
/// for the audit log.
pub fn fits(action: Action, kind: OwnerKind) -> Result<(), String> {
    use OwnerKind as K;
    if action == Action::DeleteStuckPods && kind == K::StatefulSet {
        // Kubernetes' own warning: a force-deleted StatefulSet pod whose node is unreachable
        // may still run while its replacement, with the same identity, starts.
        return Err(
            "delete-stuck-pods does not force-delete a StatefulSet's pods: two pods \
                    with one identity could run"
                .into(),
        );
    }
    let ok = match action {
        Action::None | Action::RestartPod { .. } | Action::DeleteStuckPods => true,
        Action::ScaleUp { .. } | Action::ScaleDown { .. } => {
            matches!(kind, K::Deployment | K::StatefulSet | K::ReplicaSet)
        }
        Action::Rollback { .. } => kind == K::Deployment,
        Action::RolloutRestart => matches!(kind, K::Deployment | K::StatefulSet | K::DaemonSet),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{} does not apply to a {}",
            action.name(),
            kind.as_str()
        ))
    }
}

/// The replicas a scale action sets from `current`, within its bounds (`scale-up` at least 1
/// and at most `max_replicas`; `scale-down` at least `min_replicas`); `None` when it would not
/// move in its direction: a scale-up never lowers, a scale-down never raises, whatever the
/// bounds say.
pub fn scale(action: Action, current: i32) -> Option<i32> {
    let (change, low, high, up) = match action {
        Action::ScaleUp {
            replicas,
            max_replicas,
        } => (replicas, 1, max_replicas.map_or(i32::MAX, to_i32), true),
        Action::ScaleDown {
            replicas,
            min_replicas,
        } => (replicas, to_i32(min_replicas), i32::MAX, false),
        _ => return None,
    };
    let wanted = match change {
        Replicas::By(n) => current.saturating_add(n),
        Replicas::To(n) => to_i32(n),
    };
    let target = wanted.clamp(low.min(high), high);
    let moves = if up {
        target > current
    } else {
        target < current
    };
    moves.then_some(target)
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";
/// ReplicaSet annotations a rollback does not copy to the Deployment (kubectl's list).
const SKIPPED: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
];

/// What a rollback does.
#[derive(Debug, Clone, PartialEq)]
pub enum Rollback {
    /// Replace the Deployment's `spec.template` and `metadata.annotations` with these.
    Apply {
        revision: i64,
        template: Box<PodTemplateSpec>,
        annotations: BTreeMap<String, String>,
    },
    /// The Deployment already runs that revision's template.
    AlreadyThere { revision: i64 },
}

/// kubectl's `rollout undo` for `deployment`, given its ReplicaSets: the previous revision
/// (the highest below the newest), or `to_revision`; refused for a paused Deployment or when
/// no such revision exists.
pub fn rollback(
    deployment: &Deployment,
    replica_sets: &[ReplicaSet],
    to_revision: Option<u64>,
) -> Result<Rollback, String> {
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    if deployment.spec.as_ref().and_then(|s| s.paused) == Some(true) {
        return Err(format!(
            "deployment {name} is paused; resume it before rolling back"
        ));
    }
    let revision = |rs: &ReplicaSet| {
        rs.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .and_then(|v| v.parse::<i64>().ok())
    };
    let chosen = match to_revision {
        Some(want) => {
            let want = i64::try_from(want).unwrap_or(i64::MAX);
            replica_sets
                .iter()
                .find(|rs| revision(rs) == Some(want))
                .ok_or_else(|| format!("deployment {name} has no revision {want}"))?
        }
        None => {
            let mut latest: Option<(i64, &ReplicaSet)> = None;
            let mut previous: Option<(i64, &ReplicaSet)> = None;
            for rs in replica_sets {
                let Some(v) = revision(rs) else { continue };
                match latest {
                    Some((l, _)) if v <= l => {
                        if previous.is_none_or(|(p, _)| p < v) && v < l {
                            previous = Some((v, rs));
                        }
                    }
                    _ => {
                        previous = latest;
                        latest = Some((v, rs));
                    }
                }
            }
            previous
                .map(|(_, rs)| rs)
                .ok_or_else(|| format!("deployment {name} has no previous revision"))?
        }
    };
    let rev = revision(chosen).unwrap_or_default();
    let mut template = chosen
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or_else(|| format!("revision {rev} of {name} has no pod template"))?;
    let current = deployment.spec.as_ref().map(|s| s.template.clone());
    strip_hash(&mut template);
    if let Some(mut current) = current {
        strip_hash(&mut current);
        if current == template {
            return Ok(Rollback::AlreadyThere { revision: rev });
        }
    }
    let annotations = chosen
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !SKIPPED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Rollback::Apply {
        revision: rev,
        template: Box::new(template),
        annotations,
    })
}

fn strip_hash(t: &mut PodTemplateSpec) {
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH);
    }
}

#[cfg(test)]
mod tests;
