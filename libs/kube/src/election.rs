//! Lease-based leader election (`coordination.k8s.io/v1`), with client-go's semantics.
//!
//! Each contender periodically reads the Lease. It takes the Lease when nobody holds it, or
//! when the holder has not changed it for a whole lease duration *as observed on our own
//! clock* (so clock skew between nodes does not matter), and the leader renews it every retry
//! period. Every write is a replace with the read `resourceVersion`, so two contenders can
//! never both win: the loser gets 409 Conflict. A leader that cannot renew within the renew
//! deadline steps down on its own, before any follower may take over, because
//! `lease_duration > renew_deadline + 2 * retry_period` is enforced. On shutdown the leader
//! releases the Lease so a follower takes over at once instead of after a lease duration.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use rand::Rng;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{Error, Result};

/// Which Lease to contend for, as whom, and how fast.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    /// Unique per process: the pod name, made unique with a suffix if needed.
    pub identity: String,
    /// How long a follower waits after the last observed change before taking over.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often contenders try to acquire or renew.
    pub retry_period: Duration,
}

impl LeaseSettings {
    /// Settings with client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn validate(&self) -> Result<()> {
        let err = |m: &str| Err(Error::Settings(m.to_owned()));
        if self.name.is_empty() || self.namespace.is_empty() || self.identity.is_empty() {
            return err("lease name, namespace and identity must not be empty");
        }
        if self.retry_period.is_zero() {
            return err("retry period must be positive");
        }
        if self.lease_duration < Duration::from_secs(1) {
            return err("lease duration must be at least 1s");
        }
        if self.lease_duration <= self.renew_deadline + 2 * self.retry_period {
            return err("lease duration must exceed renew deadline plus two retry periods");
        }
        Ok(())
    }
}

/// A view of whether this process leads; cheap to clone.
#[derive(Debug, Clone)]
pub struct Leadership {
    rx: watch::Receiver<bool>,
}

impl Leadership {
    /// True while this process holds the Lease.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until leadership changes and returns the new state; `None` once the elector
    /// has stopped.
    pub async fn changed(&mut self) -> Option<bool> {
        self.rx.changed().await.ok()?;
        Some(*self.rx.borrow_and_update())
    }
}

/// The last change to the Lease we saw, and when we saw it.
struct Observed {
    resource_version: Option<String>,
    at: Instant,
}

/// Contends for a Lease until shut down.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    tx: watch::Sender<bool>,
    observed: Option<Observed>,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// An elector for `settings`, and the view of its leadership.
    pub fn new(client: kube::Client, settings: LeaseSettings) -> Result<(Self, Leadership)> {
        settings.validate()?;
        let api = Api::namespaced(client, &settings.namespace);
        let (tx, rx) = watch::channel(false);
        Ok((
            Self {
                api,
                settings,
                tx,
                observed: None,
            },
            Leadership { rx },
        ))
    }

    /// Contends until `shutdown` fires, then releases the Lease if held.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let s = self.settings.clone();
        let mut last_renew: Option<Instant> = None;
        loop {
            let attempt = tokio::time::timeout(s.retry_period, self.try_acquire_or_renew());
            let acquired = tokio::select! {
                r = attempt => match r {
                    Ok(Ok(acquired)) => acquired,
                    Ok(Err(error)) => {
                        tracing::warn!(lease = %s.name, error = &error as &dyn std::error::Error, "Failed to acquire or renew the lease.");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(lease = %s.name, "Acquiring or renewing the lease timed out.");
                        false
                    }
                },
                () = shutdown.cancelled() => break,
            };
            let leading = *self.tx.borrow();
            if acquired {
                last_renew = Some(Instant::now());
                if !leading {
                    tracing::info!(lease = %s.name, identity = %s.identity, "Became leader.");
                    self.tx.send_replace(true);
                }
            }
            // Sleep a jittered retry period, but wake at the renew deadline to step down on time.
            let jitter = rand::rng().random_range(0.0..0.2);
            let mut pause =
                s.retry_period
                    .mul_f64(if *self.tx.borrow() { 1.0 } else { 1.0 + jitter });
            if let Some(t) = last_renew.filter(|_| *self.tx.borrow()) {
                let deadline = t + s.renew_deadline;
                pause = pause.min(deadline.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => break,
            }
            if *self.tx.borrow() && last_renew.is_none_or(|t| t.elapsed() >= s.renew_deadline) {
                tracing::warn!(lease = %s.name, identity = %s.identity, "Lost leadership: could not renew the lease within the renew deadline.");
                self.tx.send_replace(false);
            }
        }
        if *self.tx.borrow() {
            self.tx.send_replace(false);
            match tokio::time::timeout(s.retry_period, self.release()).await {
                Ok(Ok(())) => tracing::info!(lease = %s.name, "Released the lease."),
                Ok(Err(error)) => {
                    tracing::warn!(lease = %s.name, error = &error as &dyn std::error::Error, "Failed to release the lease.")
                }
                Err(_) => tracing::warn!(lease = %s.name, "Releasing the lease timed out."),
            }
        }
    }

    async fn try_acquire_or_renew(&mut self) -> Result<bool> {
        let s = &self.settings;
        let now = MicroTime(jiff::Timestamp::now());
        let duration_secs = i32::try_from(s.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let Some(current) = self.api.get_opt(&s.name).await.map_err(Error::Api)? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(s.name.clone()),
                    namespace: Some(s.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(s.identity.clone()),
                    lease_duration_seconds: Some(duration_secs),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return conflict_is_false(self.api.create(&PostParams::default(), &lease).await);
        };

        let rv = current.metadata.resource_version.clone();
        if self
            .observed
            .as_ref()
            .is_none_or(|o| o.resource_version != rv)
        {
            self.observed = Some(Observed {
                resource_version: rv,
                at: Instant::now(),
            });
        }
        let spec = current.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(s.identity.as_str());
        if let Some(holder) = &holder
            && !mine
        {
            let their_duration = spec
                .lease_duration_seconds
                .and_then(|d| u64::try_from(d).ok())
                .map_or(s.lease_duration, Duration::from_secs);
            let seen = self
                .observed
                .as_ref()
                .map_or(Duration::ZERO, |o| o.at.elapsed());
            if seen < their_duration {
                tracing::debug!(lease = %s.name, %holder, "Lease is held by another contender.");
                return Ok(false);
            }
            tracing::info!(lease = %s.name, previous = %holder, "Taking over an expired lease.");
        }
        let mut next = current;
        next.spec = Some(LeaseSpec {
            holder_identity: Some(s.identity.clone()),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: if mine {
                spec.acquire_time
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(
                spec.lease_transitions.unwrap_or(0) + i32::from(!mine && holder.is_some()),
            ),
            ..spec
        });
        let replaced = self
            .api
            .replace(&s.name, &PostParams::default(), &next)
            .await;
        if let Ok(lease) = &replaced {
            self.observed = Some(Observed {
                resource_version: lease.metadata.resource_version.clone(),
                at: Instant::now(),
            });
        }
        conflict_is_false(replaced)
    }

    async fn release(&self) -> Result<()> {
        let s = &self.settings;
        let Some(mut lease) = self.api.get_opt(&s.name).await.map_err(Error::Api)? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        conflict_is_false(
            self.api
                .replace(&s.name, &PostParams::default(), &lease)
                .await,
        )
        .map(|_| ())
    }
}

/// A 409 means another contender wrote first: not an error, just not ours.
fn conflict_is_false(result: kube::Result<Lease>) -> Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
        Err(e) => Err(Error::Api(e)),
    }
}

#[cfg(test)]
mod tests;
