//! Sending a Service's traffic to the leader alone, through a label on the leader's own pod,
//! while every replica stays ready.
//!
//! Readiness is the wrong tool for "only the leader serves": a follower that is never ready
//! stalls a rolling update with `maxUnavailable: 0` (the new pod never becomes available) and
//! counts as disrupted in a PodDisruptionBudget, so draining a node blocks. Instead the leader
//! labels its own pod (`keeper.security/webhook-leader: "true"` for the webhook) and the
//! Service selects that label. A new leader first removes the label from every other pod (a
//! leader that was killed, or cut off from the API server, cannot remove its own), then labels
//! itself; a replica that stops leading, or shuts down, removes its label.
//!
//! Between the old leader's label going and the new one's arriving the Service has no
//! endpoint: that is the Lease hand-over (one retry period when the leader stops cleanly and
//! releases the Lease, a lease duration when it dies).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use tokio_util::sync::CancellationToken;

use crate::{Error, Leadership, Result};

/// The label's value on the leader's pod.
pub const LEADER: &str = "true";

/// Keeps the leader label on this replica's pod exactly while it leads.
pub struct LeaderLabel {
    api: Api<Pod>,
    pod: String,
    key: String,
    retry: Duration,
}

impl std::fmt::Debug for LeaderLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLabel")
            .field("pod", &self.pod)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl LeaderLabel {
    /// Labels `pod` in `namespace` with `key` while it leads; a failed patch is retried every
    /// `retry`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        pod: impl Into<String>,
        key: impl Into<String>,
        retry: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            pod: pod.into(),
            key: key.into(),
            retry,
        }
    }

    /// Follows `leadership` until `shutdown` (or until the elector stops), then removes the
    /// label from this pod if it carries it.
    pub async fn run(self, mut leadership: Leadership, shutdown: CancellationToken) {
        let mut labelled = false;
        loop {
            let leading = leadership.is_leader();
            if leading != labelled {
                let done = if leading {
                    self.claim().await.map(|stale| {
                        tracing::info!(pod = %self.pod, label = %self.key, stale, "Labelled this pod as the leader; the Service now sends requests here.");
                    })
                } else {
                    self.set(&self.pod, None).await.map(|()| {
                        tracing::info!(pod = %self.pod, label = %self.key, "No longer leading: removed the leader label from this pod.");
                    })
                };
                match done {
                    Ok(()) => labelled = leading,
                    Err(error) => tracing::warn!(
                        pod = %self.pod,
                        label = %self.key,
                        error = &error as &dyn std::error::Error,
                        "Cannot update the leader label; retrying."
                    ),
                }
            }
            let pending = leadership.is_leader() != labelled;
            tokio::select! {
                changed = leadership.changed() => if changed.is_none() { break },
                () = tokio::time::sleep(self.retry), if pending => {}
                () = shutdown.cancelled() => break,
            }
        }
        if labelled {
            match tokio::time::timeout(self.retry, self.set(&self.pod, None)).await {
                Ok(Ok(())) => {
                    tracing::info!(pod = %self.pod, label = %self.key, "Removed the leader label from this pod.")
                }
                Ok(Err(error)) => {
                    tracing::warn!(pod = %self.pod, error = &error as &dyn std::error::Error, "Cannot remove the leader label; the next leader will.")
                }
                Err(_) => {
                    tracing::warn!(pod = %self.pod, "Removing the leader label timed out; the next leader will.")
                }
            }
        }
    }

    /// Removes the label from every other pod, then puts it on ours; returns how many stale
    /// labels it removed.
    async fn claim(&self) -> Result<usize> {
        let labelled = self
            .api
            .list(&ListParams::default().labels(&self.key))
            .await
            .map_err(Error::Api)?;
        let mut stale = 0;
        for pod in &labelled.items {
            let Some(name) = pod.metadata.name.as_deref().filter(|n| *n != self.pod) else {
                continue;
            };
            tracing::info!(pod = %name, label = %self.key, "Removing the leader label from a pod that no longer leads.");
            match self.set(name, None).await {
                // Deleted meanwhile: nothing left to route to.
                Err(Error::Api(kube::Error::Api(status))) if status.code == 404 => {}
                other => other?,
            }
            stale += 1;
        }
        self.set(&self.pod, Some(LEADER)).await?;
        Ok(stale)
    }

    /// Sets (or with `None` removes) the label on `pod`, by a JSON merge patch that touches no
    /// other label.
    async fn set(&self, pod: &str, value: Option<&str>) -> Result<()> {
        let patch = serde_json::json!({ "metadata": { "labels": { &self.key: value } } });
        self.api
            .patch(pod, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(Error::Api)
    }
}
