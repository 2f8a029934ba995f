//! Carrying out one action on the API server, and saying what it did.

use bulwark_kube::workloads::{self, Owner};
use bulwark_sentinel::remediation::plan::{self, Rollback};
use bulwark_sentinel::rules::Action;
use k8s_openapi::api::core::v1::ObjectReference;

use super::MANAGER;

/// What an attempted action came to.
#[derive(Debug)]
pub(super) enum Done {
    /// The cluster changed; what changed.
    Changed(String),
    /// Nothing needed doing; why.
    Nothing(String),
    /// The workload's state forbids the action (a paused Deployment); why.
    Refused(String),
}

/// What `action` does, for the audit log and dry-run.
pub(super) fn describe(action: Action, owner: &Owner, pod: &str) -> String {
    match action {
        Action::None => "do nothing".into(),
        Action::RestartPod {
            grace_period_seconds,
        } => match grace_period_seconds {
            Some(g) => format!("delete pod {pod} with a grace period of {g}s"),
            None => format!("delete pod {pod}"),
        },
        Action::ScaleUp { .. } | Action::ScaleDown { .. } => {
            format!("{} {owner}", action.name())
        }
        Action::Rollback { to_revision } => match to_revision {
            Some(r) => format!("roll {owner} back to revision {r}"),
            None => format!("roll {owner} back to its previous revision"),
        },
        Action::RolloutRestart => format!("restart the rollout of {owner}"),
        Action::DeleteStuckPods => {
            format!("force-delete the pods of {owner} stuck terminating")
        }
    }
}

/// Carries out `action` on `owner` (or `pod`) in `namespace`; the error says what failed.
pub(super) async fn run(
    client: &bulwark_kube::Client,
    action: Action,
    namespace: &str,
    owner: &Owner,
    pod: &str,
) -> Result<Done, String> {
    let failed = |what: &str, e: bulwark_kube::Error| {
        let cause = std::error::Error::source(&e).map_or_else(String::new, |s| format!(": {s}"));
        format!("{what}: {e}{cause}")
    };
    match action {
        Action::None => Ok(Done::Nothing("nothing to do".into())),
        Action::RestartPod {
            grace_period_seconds,
        } => match workloads::delete_pod(client, namespace, pod, grace_period_seconds).await {
            Ok(()) => Ok(Done::Changed(format!("deleted pod {pod}"))),
            Err(e) if e.is_not_found() => Ok(Done::Nothing(format!("pod {pod} was already gone"))),
            Err(e) => Err(failed(&format!("cannot delete pod {pod}"), e)),
        },
        Action::ScaleUp { .. } | Action::ScaleDown { .. } => {
            let (current, read_at) = workloads::replicas(client, namespace, owner)
                .await
                .map_err(|e| failed(&format!("cannot read the replicas of {owner}"), e))?;
            let Some(target) = plan::scale(action, current) else {
                return Ok(Done::Nothing(format!(
                    "{owner} stays at {current} replicas (at its bound)"
                )));
            };
            workloads::scale(
                client,
                namespace,
                owner,
                target,
                read_at.as_deref(),
                MANAGER,
            )
            .await
            .map_err(|e| failed(&format!("cannot scale {owner}"), e))?;
            Ok(Done::Changed(format!(
                "scaled {owner} from {current} to {target} replicas"
            )))
        }
        Action::Rollback { to_revision } => {
            let (deployment, replica_sets) =
                workloads::deployment_history(client, namespace, &owner.name)
                    .await
                    .map_err(|e| failed(&format!("cannot read the history of {owner}"), e))?;
            let rollback = match plan::rollback(&deployment, &replica_sets, to_revision) {
                Ok(r) => r,
                Err(why) => return Ok(Done::Refused(why)),
            };
            match rollback {
                Rollback::AlreadyThere { revision } => Ok(Done::Nothing(format!(
                    "{owner} already runs the template of revision {revision}"
                ))),
                Rollback::Apply {
                    revision,
                    template,
                    annotations,
                } => {
                    workloads::rollback(client, &deployment, &template, &annotations, MANAGER)
                        .await
                        .map_err(|e| failed(&format!("cannot roll {owner} back"), e))?;
                    Ok(Done::Changed(format!(
                        "rolled {owner} back to revision {revision}"
                    )))
                }
            }
        }
        Action::RolloutRestart => {
            let at = jiff::Timestamp::now().to_string();
            workloads::rollout_restart(client, namespace, owner, &at, MANAGER)
                .await
                .map_err(|e| failed(&format!("cannot restart the rollout of {owner}"), e))?;
            Ok(Done::Changed(format!(
                "restarted the rollout of {owner} (restartedAt {at})"
            )))
        }
        Action::DeleteStuckPods => {
            let stuck =
                workloads::delete_stuck_pods(client, namespace, pod, jiff::Timestamp::now())
                    .await
                    .map_err(|e| failed("cannot delete stuck pods", e))?;
            let held = if stuck.held_by_finalizers.is_empty() {
                String::new()
            } else {
                format!(
                    "; {} held by finalizers, left alone: {}",
                    stuck.held_by_finalizers.len(),
                    names(&stuck.held_by_finalizers)
                )
            };
            if stuck.deleted.is_empty() {
                Ok(Done::Nothing(format!(
                    "no pod of {owner} to force-delete{held}"
                )))
            } else {
                Ok(Done::Changed(format!(
                    "force-deleted {} stuck pod(s): {}{held}",
                    stuck.deleted.len(),
                    names(&stuck.deleted)
                )))
            }
        }
    }
}

/// Pod names for a message: the first five and how many more.
fn names(pods: &[String]) -> String {
    let mut text = pods.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if pods.len() > 5 {
        text.push_str(&format!(" and {} more", pods.len() - 5));
    }
    text
}

/// A reference to `owner` in `namespace`, for an Event.
pub(super) fn reference(owner: &Owner, namespace: &str) -> ObjectReference {
    let api_version = match owner.kind.as_str() {
        "Pod" => "v1",
        "Job" => "batch/v1",
        _ => "apps/v1",
    };
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(owner.kind.clone()),
        name: Some(owner.name.clone()),
        namespace: Some(namespace.into()),
        ..ObjectReference::default()
    }
}
