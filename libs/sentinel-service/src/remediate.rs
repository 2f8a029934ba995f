//! The remediation engine: joins what ingestion detected to actions on the cluster.
//!
//! Ingestion hands over, after each stored page, the lines whose rule has an action. For each
//! (rule, pod) once per page the engine resolves the owning workload, asks
//! [`Safety::decide`] (enabled, namespace, cooldown on the rule and workload, budgets), checks
//! that the action fits the workload, carries it out through `bulwark_kube::workloads`, posts
//! an Event on the object, and writes the audit log in the store. Only the leader acts: a
//! follower drops what it is handed.
//!
//! Before each batch the leader rebuilds its cooldowns and the hour's budget from the shared
//! audit log (the entries [`audit::Filter::relevant_at_ns`] selects: holds still in force and
//! the last hour's attempts, whoever wrote them), so a new leader, or one that lost the Lease
//! for a while, carries on from what every replica did; operators' switches and cleared
//! cooldowns reach it the same way, whichever replica received them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_kube::workloads::{self, Owner};
use bulwark_kube::{EventType, Events, Leadership};
use bulwark_sentinel::audit::{self, Entry, Outcome};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::remediation::plan::OwnerKind;
use bulwark_sentinel::remediation::{Decision, Held, Limits, Refusal, Request, Safety};
use bulwark_sentinel::rules::{Action, Rule};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::live::Update;
use crate::metrics;
use crate::rules::now_ns;
use crate::store::Store;

mod execute;

/// The field manager and Event reporter sentinel writes as.
pub const MANAGER: &str = "kube-sentinel";

/// How long a pod's owner is remembered (pods do not change owners; this only bounds the map).
const OWNER_MEMORY: Duration = Duration::from_secs(300);

/// The longest Event note Kubernetes accepts, in bytes.
const EVENT_NOTE_MAX: usize = 1024;

/// A line whose rule has an action.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub rule: Arc<Rule>,
    pub fingerprint: Fingerprint,
    pub namespace: String,
    pub pod: String,
}

/// What the engine needs besides its input.
pub struct Engine {
    pub client: bulwark_kube::Client,
    pub events: Events,
    pub store: Arc<dyn Store>,
    /// The config's limits; the store's switches apply over them.
    pub limits: Limits,
    /// This replica's name, written in the audit log.
    pub replica: String,
    /// `None` without leader election: this replica always acts.
    pub leadership: Option<Leadership>,
    /// Where the dashboard's live view hears of new audit entries.
    pub updates: broadcast::Sender<Update>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("limits", &self.limits)
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// The engine's state while it runs.
struct State {
    safety: Safety,
    owners: HashMap<(String, String), (Owner, Instant)>,
}

impl Engine {
    /// The engine for `cluster`, acting within `control`'s limits.
    pub fn new(
        cluster: &crate::Cluster,
        store: &Arc<dyn Store>,
        control: &crate::api::Control,
        live: &crate::live::Live,
    ) -> Self {
        Self {
            client: cluster.client.clone(),
            events: Events::new(
                cluster.client.clone(),
                MANAGER,
                Some(cluster.replica.clone()),
            ),
            store: Arc::clone(store),
            limits: control.limits.clone(),
            replica: cluster.replica.clone(),
            leadership: cluster.leadership.clone(),
            updates: live.sender(),
        }
    }

    /// Handles batches from `rx` until `stop` or until ingestion stops.
    pub async fn run(self, mut rx: mpsc::Receiver<Vec<Candidate>>, stop: CancellationToken) {
        let mut state = State {
            safety: Safety::default(),
            owners: HashMap::new(),
        };
        let limits = self.limits().await.unwrap_or_else(|_| self.limits.clone());
        self.publish_budget(&mut state, &limits);
        let mut leadership = self.leadership.clone();
        loop {
            let batch = tokio::select! {
                () = stop.cancelled() => return,
                Some(_) = async {
                    match leadership.as_mut() {
                        Some(l) => l.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let limits = self.limits().await.unwrap_or_else(|_| self.limits.clone());
                    self.publish_budget(&mut state, &limits);
                    continue;
                }
                batch = rx.recv() => match batch {
                    Some(b) => b,
                    None => return,
                },
            };
            if !self.leading() {
                continue;
            }
            if let Err(error) = self.sync(&mut state).await {
                tracing::warn!(error = %error, "Cannot read the audit log; not acting on this page.");
                continue;
            }
            let limits = match self.limits().await {
                Ok(limits) => limits,
                Err(error) => {
                    tracing::warn!(error = %error, "Cannot read the switches; not acting on this page.");
                    continue;
                }
            };
            let mut done = HashSet::new();
            for c in batch {
                if !done.insert((c.rule.name.clone(), c.namespace.clone(), c.pod.clone())) {
                    continue;
                }
                if !self.leading() {
                    break;
                }
                self.handle(&mut state, &limits, &c).await;
            }
            state.safety.expire(now_ns());
            let now = Instant::now();
            state
                .owners
                .retain(|_, (_, at)| now.duration_since(*at) < OWNER_MEMORY);
            self.publish_budget(&mut state, &limits);
        }
    }

    fn leading(&self) -> bool {
        self.leadership.as_ref().is_none_or(Leadership::is_leader)
    }

    /// Rebuilds the cooldowns and the hour's attempts from the shared audit log.
    async fn sync(&self, state: &mut State) -> Result<(), crate::store::StoreError> {
        let now = now_ns();
        let entries = relevant(self.store.as_ref(), now).await?;
        state.safety.rebuild(&entries, now);
        Ok(())
    }

    async fn handle(&self, state: &mut State, limits: &Limits, c: &Candidate) {
        let action = c.rule.action;
        if action == Action::None {
            return;
        }
        if !limits.enabled {
            // Nothing to look up or record while remediation is off.
            metrics::refusal(action.name(), Refusal::Disabled.reason());
            return;
        }
        let owner = match self.owner(state, c).await {
            Ok(o) => o,
            Err(reason) => {
                metrics::refusal(action.name(), reason);
                return;
            }
        };
        let owner_text = owner.to_string();
        let req = Request {
            rule: &c.rule,
            namespace: &c.namespace,
            owner: &owner_text,
        };
        let now = now_ns();
        let decision = state.safety.decide(limits, &req, now);
        let hold = state.safety.held_until(&Held::of(&req), now);
        let mut entry = Entry {
            id: 0,
            at_ns: now,
            fingerprint: Some(c.fingerprint),
            rule: c.rule.name.clone(),
            namespace: c.namespace.clone(),
            pod: c.pod.clone(),
            owner: owner_text.clone(),
            action: action.name().to_owned(),
            outcome: Outcome::Refused,
            reason: None,
            detail: String::new(),
            replica: self.replica.clone(),
            hold_until_ns: hold,
        };
        let fit = OwnerKind::parse(&owner.kind)
            .ok_or_else(|| format!("unknown owner kind {}", owner.kind))
            .and_then(|kind| bulwark_sentinel::remediation::plan::fits(action, kind));
        match decision {
            Decision::Nothing => return,
            Decision::Refused(r) => {
                metrics::refusal(action.name(), r.reason());
                if !(r.audited() && state.safety.first_refusal(&req, r, now)) {
                    return;
                }
                entry.reason = Some(r.reason().to_owned());
                entry.detail = refusal_detail(r, limits, &c.namespace);
            }
            Decision::DryRun(_) | Decision::Act(_) if fit.is_err() => {
                if matches!(decision, Decision::Act(_)) {
                    state.safety.refund(&c.namespace, now);
                }
                metrics::refusal(action.name(), "not_applicable");
                entry.reason = Some("not_applicable".into());
                entry.detail = fit.err().unwrap_or_default();
            }
            Decision::DryRun(_) => {
                metrics::remediation(action.name(), Outcome::DryRun.as_str());
                entry.outcome = Outcome::DryRun;
                entry.detail = format!(
                    "dry run: would {}",
                    execute::describe(action, &owner, &c.pod)
                );
            }
            Decision::Act(_) => {
                let started = Instant::now();
                let done = execute::run(&self.client, action, &c.namespace, &owner, &c.pod).await;
                metrics::remediation_duration(action.name(), started.elapsed());
                let (outcome, detail) = match done {
                    Ok(execute::Done::Refused(detail)) => {
                        state.safety.refund(&c.namespace, now);
                        entry.reason = Some("not_applicable".into());
                        (Outcome::Refused, detail)
                    }
                    Ok(execute::Done::Changed(detail)) => (Outcome::Success, detail),
                    Ok(execute::Done::Nothing(detail)) => {
                        state.safety.refund(&c.namespace, now);
                        (Outcome::Skipped, detail)
                    }
                    Err(detail) => (Outcome::Failed, detail),
                };
                if outcome == Outcome::Refused {
                    metrics::refusal(action.name(), "not_applicable");
                } else {
                    metrics::remediation(action.name(), outcome.as_str());
                }
                entry.outcome = outcome;
                entry.detail = detail;
                self.event(&owner, &c.namespace, &c.pod, &entry).await;
            }
        }
        let level_failed = entry.outcome == Outcome::Failed;
        if level_failed {
            tracing::warn!(rule = %entry.rule, namespace = %entry.namespace, owner = %entry.owner, action = %entry.action, detail = %entry.detail, "Remediation failed.");
        } else {
            tracing::info!(rule = %entry.rule, namespace = %entry.namespace, owner = %entry.owner, action = %entry.action, outcome = entry.outcome.as_str(), detail = %entry.detail, "Remediation.");
        }
        match self.store.audit(&entry).await {
            Ok(id) => {
                entry.id = id;
                let _ = self.updates.send(Update::Audit(Box::new(entry)));
            }
            Err(error) => {
                tracing::error!(error = %error, "Cannot write the audit log.");
            }
        }
    }

    /// The pod's owner, remembered for a while; the error is a refusal reason.
    async fn owner(&self, state: &mut State, c: &Candidate) -> Result<Owner, &'static str> {
        let key = (c.namespace.clone(), c.pod.clone());
        if let Some((owner, _)) = state.owners.get(&key) {
            return Ok(owner.clone());
        }
        match workloads::owner_of(&self.client, &c.namespace, &c.pod).await {
            Ok(owner) => {
                state.owners.insert(key, (owner.clone(), Instant::now()));
                Ok(owner)
            }
            Err(e) if e.is_not_found() => {
                tracing::debug!(namespace = %c.namespace, pod = %c.pod, "The pod is gone; nothing to remediate.");
                Err("pod_gone")
            }
            Err(error) => {
                let error = bulwark_http::error_chain(&error);
                tracing::warn!(namespace = %c.namespace, pod = %c.pod, error = %error, "Cannot resolve the pod's owner.");
                Err("owner_unknown")
            }
        }
    }

    /// An Event on the object acted on: the pod for pod actions, else the workload.
    async fn event(&self, owner: &Owner, namespace: &str, pod: &str, e: &Entry) {
        let target = match e.action.as_str() {
            "restart-pod" | "delete-stuck-pods" => Owner {
                kind: "Pod".into(),
                name: pod.into(),
            },
            _ => owner.clone(),
        };
        let (type_, reason) = match e.outcome {
            Outcome::Success => (EventType::Normal, "Remediated"),
            Outcome::Skipped => (EventType::Normal, "RemediationSkipped"),
            _ => (EventType::Warning, "RemediationFailed"),
        };
        let mut note = format!("rule {}: {}", e.rule, e.detail);
        if note.len() > EVENT_NOTE_MAX {
            let mut cut = EVENT_NOTE_MAX - 3;
            while !note.is_char_boundary(cut) {
                cut -= 1;
            }
            note.truncate(cut);
            note.push_str("...");
        }
        let object = execute::reference(&target, namespace);
        if let Err(error) = self
            .events
            .publish(&object, type_, reason, &e.action, Some(note))
            .await
        {
            let error = bulwark_http::error_chain(&error);
            tracing::warn!(error = %error, "Cannot post the remediation Event.");
        }
    }

    /// The limits in force: the config's with the store's switches.
    async fn limits(&self) -> Result<Limits, crate::store::StoreError> {
        Ok(self.limits.with(self.store.switches().await?))
    }

    /// The budget, switches and leadership gauges, under `limits`.
    fn publish_budget(&self, state: &mut State, limits: &Limits) {
        let (used, _) = state.safety.budget(limits, now_ns());
        metrics::budget(limits, used, self.leading());
    }
}

fn refusal_detail(r: Refusal, limits: &Limits, namespace: &str) -> String {
    match r {
        Refusal::ExcludedNamespace => format!("namespace {namespace} is excluded"),
        Refusal::NamespaceBudget => format!(
            "namespace {namespace} has used its {} actions this hour",
            limits.max_actions_per_namespace_per_hour
        ),
        Refusal::GlobalBudget => format!(
            "the {} actions of this hour are used",
            limits.max_actions_per_hour
        ),
        Refusal::Disabled => "remediation is disabled".into(),
        Refusal::Cooldown { .. } => "in cooldown".into(),
    }
}

/// The audit entries that shape the remediation state at `now_ns` (see
/// [`audit::Filter::relevant_at_ns`]).
pub(crate) async fn relevant(
    store: &dyn Store,
    now_ns: i64,
) -> Result<Vec<Entry>, crate::store::StoreError> {
    let filter = audit::Filter {
        relevant_at_ns: Some(now_ns),
        ..audit::Filter::default()
    };
    Ok(store.audit_log(&filter, 0, usize::MAX).await?.0)
}
