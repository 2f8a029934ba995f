//! The remediation side of the API: the audit log, cooldowns and the switches, and the two
//! writes (the switches, clearing a cooldown). Both writes go through the store, so that every
//! replica, and the leader's engine, sees them.

use bulwark_kube::Leadership;
use bulwark_sentinel::audit::{self, Entry, Outcome};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::remediation::{Held, Limits, Safety, SwitchChange, Switches};
use bulwark_sentinel::store::rfc3339;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use bulwark_sentinel::store::Page;

use super::{Api, read_body, read_query, unavailable};
use crate::live::Update;
use crate::rules::now_ns;

/// What the remediation side of the API reports and controls.
#[derive(Debug)]
pub struct Control {
    /// The config's limits (the store's switches apply over them).
    pub limits: Limits,
    /// `None` without leader election.
    pub leadership: Option<Leadership>,
    /// Why this replica cannot act at all (no Kubernetes client), if so.
    pub unavailable: Option<String>,
    pub replica: String,
}

impl Control {
    /// The control of a replica with `cluster` access or not; refused when the config enables
    /// remediation and the cluster is out of reach.
    pub fn new(
        config: &bulwark_sentinel::config::Config,
        cluster: &Result<crate::Cluster, String>,
    ) -> Result<Self, String> {
        if let (Err(why), true) = (cluster, config.remediation.enabled) {
            return Err(format!(
                "remediation is enabled but the Kubernetes API is out of reach ({why}); \
                 set remediation.enabled: false to run without it"
            ));
        }
        Ok(Self {
            limits: (&config.remediation).into(),
            leadership: cluster.as_ref().ok().and_then(|c| c.leadership.clone()),
            unavailable: cluster.as_ref().err().cloned(),
            replica: cluster
                .as_ref()
                .map_or_else(|_| "sentinel".into(), |c| c.replica.clone()),
        })
    }

    /// Whether this replica is the one that acts.
    pub fn leading(&self) -> bool {
        self.unavailable.is_none() && self.leadership.as_ref().is_none_or(Leadership::is_leader)
    }
}

type Answer = Result<serde_json::Value, (StatusCode, String)>;

impl Api {
    /// The limits in force: the config's, with the store's switches.
    pub(crate) async fn limits(&self) -> Result<Limits, (StatusCode, String)> {
        let switches = self.store.switches().await.map_err(unavailable)?;
        Ok(self.control.limits.with(switches))
    }

    /// The remediation state the audit log implies now (cooldowns, this hour's actions).
    pub(crate) async fn safety(&self) -> Result<Safety, (StatusCode, String)> {
        let now = now_ns();
        let entries = crate::remediate::relevant(self.store.as_ref(), now)
            .await
            .map_err(unavailable)?;
        Ok(Safety::restore(&entries, now))
    }

    pub(crate) async fn remediations(&self, query: &str) -> Answer {
        let (filter, page) = remediation_query(query)?;
        let (entries, total) = self.audit_page(&filter, page).await?;
        let entries: Vec<_> = entries.iter().map(entry_view).collect();
        Ok(
            json!({ "entries": entries, "total": total, "page": page.page, "page_size": page.page_size }),
        )
    }

    /// One page of the audit log, with the number of entries `filter` passes.
    pub(crate) async fn audit_page(
        &self,
        filter: &audit::Filter,
        page: Page,
    ) -> Result<(Vec<Entry>, usize), (StatusCode, String)> {
        self.store
            .audit_log(
                filter,
                (page.page - 1).saturating_mul(page.page_size),
                page.page_size,
            )
            .await
            .map_err(unavailable)
    }

    pub(crate) async fn cooldowns(&self) -> Answer {
        let held: Vec<_> = self
            .safety()
            .await?
            .cooldowns(now_ns())
            .into_iter()
            .map(|(h, until)| {
                json!({ "rule": h.rule, "namespace": h.namespace, "owner": h.owner, "until": rfc3339(until) })
            })
            .collect();
        Ok(json!({ "cooldowns": held }))
    }

    pub(crate) async fn settings(&self) -> Answer {
        let limits = self.limits().await?;
        let used = self.safety().await?.budget(&limits, now_ns()).0;
        Ok(json!({
            "enabled": limits.enabled,
            "dry_run": limits.dry_run,
            "max_actions_per_hour": limits.max_actions_per_hour,
            "max_actions_per_namespace_per_hour": limits.max_actions_per_namespace_per_hour,
            "excluded_namespaces": limits.excluded_namespaces,
            "actions_this_hour": used,
            "replica": self.control.replica,
            "leader": self.control.leading(),
            "leader_election": self.control.leadership.is_some(),
            "remediation_unavailable": self.control.unavailable,
            "writes_enabled": self.auth.writable(),
            "public_reads": self.auth.public_reads(),
        }))
    }

    pub(crate) async fn set_settings(&self, req: Request<Incoming>) -> Answer {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Change {
            enabled: Option<bool>,
            dry_run: Option<bool>,
        }
        let body = read_body(req).await?;
        let change: Change = serde_json::from_slice(&body).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"enabled\": bool, \"dry_run\": bool}}: {e}"),
            )
        })?;
        self.apply_switches(change.enabled, change.dry_run).await?;
        self.settings().await
    }

    /// Sets the switches (either or both); shared by the API and the settings page.
    pub(crate) async fn apply_switches(
        &self,
        enabled: Option<bool>,
        dry_run: Option<bool>,
    ) -> Result<Switches, (StatusCode, String)> {
        if enabled.is_none() && dry_run.is_none() {
            return Err((
                StatusCode::BAD_REQUEST,
                "give enabled, dry_run or both".into(),
            ));
        }
        if enabled == Some(true)
            && let Some(why) = &self.control.unavailable
        {
            return Err((
                StatusCode::CONFLICT,
                format!("remediation cannot be enabled on this replica: {why}"),
            ));
        }
        let change = SwitchChange { enabled, dry_run };
        let switches = self
            .store
            .set_switches(change, self.control.limits.switches())
            .await
            .map_err(unavailable)?;
        tracing::info!(
            enabled = switches.enabled,
            dry_run = switches.dry_run,
            "Remediation switches set through the API."
        );
        let _ = self.live.sender().send(Update::Switches(switches));
        Ok(switches)
    }

    pub(crate) async fn clear_cooldown(&self, req: Request<Incoming>) -> Answer {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Clear {
            rule: String,
            namespace: String,
            owner: String,
        }
        let body = read_body(req).await?;
        let c: Clear = serde_json::from_slice(&body).map_err(|e| {
            (
                StatusCode::BAD_REQUEST,
                format!(
                    "expected {{\"rule\": \"...\", \"namespace\": \"...\", \"owner\": \"Kind/name\"}}: {e}"
                ),
            )
        })?;
        let held = Held {
            rule: c.rule,
            namespace: c.namespace,
            owner: c.owner,
        };
        let entry = self.clear(held).await?;
        Ok(json!({ "cleared": entry_view(&entry) }))
    }

    /// Lifts the cooldown on `held` (404 when none holds), through the audit log: the entry
    /// lasts as long as the hold it lifts, so whoever rebuilds the state meets it.
    pub(crate) async fn clear(&self, held: Held) -> Result<Entry, (StatusCode, String)> {
        let now = now_ns();
        let Some(until) = self.safety().await?.held_until(&held, now) else {
            return Err((
                StatusCode::NOT_FOUND,
                format!(
                    "no cooldown holds rule {:?} on {:?} in namespace {:?}",
                    held.rule, held.owner, held.namespace
                ),
            ));
        };
        let mut entry = Entry {
            id: 0,
            at_ns: now,
            fingerprint: None,
            rule: held.rule,
            namespace: held.namespace,
            pod: String::new(),
            owner: held.owner,
            action: String::new(),
            outcome: Outcome::CooldownCleared,
            reason: None,
            detail: "cooldown cleared through the API".into(),
            replica: self.control.replica.clone(),
            hold_until_ns: Some(until),
        };
        entry.id = self.store.audit(&entry).await.map_err(unavailable)?;
        tracing::info!(rule = %entry.rule, owner = %entry.owner, "Cooldown cleared through the API.");
        let _ = self
            .live
            .sender()
            .send(Update::Audit(Box::new(entry.clone())));
        Ok(entry)
    }
}

/// The filters and page of `GET /api/remediations` (and the remediations page).
pub(crate) fn remediation_query(
    query: &str,
) -> Result<(audit::Filter, Page), (StatusCode, String)> {
    let mut filter = audit::Filter::default();
    let page = read_query(query, |key, value, _| {
        match key {
            "namespace" => filter.namespace = Some(value.to_owned()),
            "outcome" => {
                filter.outcome = Some(Outcome::parse(value).ok_or(
                    "expected success, failed, dry_run, skipped, refused or cooldown_cleared",
                )?);
            }
            "error" => {
                filter.fingerprint = Some(Fingerprint::parse(value).ok_or("expected an error id")?);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((filter, page))
}

/// An audit entry with its times in RFC 3339.
pub(crate) fn entry_view(e: &Entry) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("at_ns");
        o.remove("hold_until_ns");
        o.insert("at".into(), json!(rfc3339(e.at_ns)));
        o.insert("hold_until".into(), json!(e.hold_until_ns.map(rfc3339)));
    }
    v
}
