//! Sentinel's `config.yaml`, with upstream's fields and defaults (see `research/sentinel.md`
//! §1.2), so that the seed's ConfigMap and its partial overlays load unchanged.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bulwark_config::{Duration, ListenAddr, Validate, Violation};
use serde::Deserialize;

/// The whole config file; every section is optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub loki: Loki,
    pub kubernetes: Kubernetes,
    pub web: Web,
    pub remediation: Remediation,
    pub rules_file: Option<PathBuf>,
    pub store: Store,
}

/// Where error lines come from.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Loki {
    pub url: String,
    /// A LogQL log query.
    pub query: String,
    pub poll_interval: Duration,
    pub lookback: Duration,
    /// Sent as `X-Scope-OrgID` for multi-tenant Loki; `a|b` reads several tenants.
    pub tenant_id: Option<String>,
    /// Extra request headers, such as `X-Scope-OrgID`.
    pub headers: BTreeMap<String, String>,
    /// Basic authentication for a gateway in front of Loki: the user name, with the password
    /// in the environment variable `password_env` names.
    pub username: Option<String>,
    pub password_env: Option<String>,
    /// Upstream's plain-text password: refused, so that no password sits in a ConfigMap.
    pub password: Option<String>,
    /// Bearer authentication: the environment variable holding the token.
    pub bearer_token_env: Option<String>,
    /// How far back each poll re-reads, so that lines Loki ingests late are still counted
    /// (once).
    pub overlap: Duration,
    /// Lines per request (Loki refuses more than its `max_entries_limit_per_query`, 5000 by
    /// default).
    pub limit: u32,
    /// Time allowed for one request.
    pub timeout: Duration,
}

impl Default for Loki {
    fn default() -> Self {
        Self {
            url: "http://loki.monitoring:3100".into(),
            query: r#"{namespace=~".+"} |~ "(?i)(error|fatal|panic|exception|fail)""#.into(),
            poll_interval: Duration::from_secs(30),
            lookback: Duration::from_secs(300),
            tenant_id: None,
            headers: BTreeMap::new(),
            username: None,
            password_env: None,
            password: None,
            bearer_token_env: None,
            overlap: Duration::from_secs(60),
            limit: 1000,
            timeout: Duration::from_secs(30),
        }
    }
}

/// How to reach the Kubernetes API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kubernetes {
    pub in_cluster: bool,
    /// Used when `in_cluster` is false; the default kubeconfig otherwise.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl Default for Kubernetes {
    fn default() -> Self {
        Self {
            in_cluster: true,
            kubeconfig: None,
            context: None,
        }
    }
}

/// The dashboard, API, health and metrics server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    pub listen: ListenAddr,
    /// The path prefix under which a gateway exposes the dashboard.
    pub base_path: String,
    pub auth: WebAuth,
}

/// Who may read and change what the server shows (ours: upstream has no authentication).
///
/// Writes (settings, cooldowns) need `Authorization: Bearer <token>`; without a token
/// configured they are disabled. Reads (the API and the dashboard) need the token too, as
/// the header or the dashboard's sign-in cookie, unless `public_reads` opens them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WebAuth {
    /// A file holding the token (a mounted Secret); read at start.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    pub token_env: Option<String>,
    /// Serve reads to anyone who can reach the server.
    pub public_reads: bool,
}

/// Leader election through a Lease (`remediation.leader_election`, the seed's "future"
/// option with its field names): with several replicas only the leader remediates; every
/// replica ingests and serves. Disabled, this replica acts alone.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderElection {
    pub enabled: bool,
    pub lease_name: String,
    /// The Lease's namespace; set from the downward API (`metadata.namespace`).
    pub lease_namespace: Option<String>,
    /// This replica's identity; set from the downward API (`metadata.name`).
    pub identity: Option<String>,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_name: "kube-sentinel-leader".into(),
            lease_namespace: None,
            identity: None,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: ListenAddr::any(8080),
            base_path: String::new(),
            auth: WebAuth::default(),
        }
    }
}

/// Safety limits for remediation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Remediation {
    pub enabled: bool,
    pub dry_run: bool,
    pub max_actions_per_hour: u32,
    /// Actions in any hour in one namespace (ours; upstream has only the global budget).
    pub max_actions_per_namespace_per_hour: u32,
    pub excluded_namespaces: Vec<String>,
    pub leader_election: LeaderElection,
}

impl Default for Remediation {
    fn default() -> Self {
        Self {
            enabled: true,
            dry_run: false,
            max_actions_per_hour: 50,
            max_actions_per_namespace_per_hour: 10,
            excluded_namespaces: vec!["kube-system".into(), "monitoring".into()],
            leader_election: LeaderElection::default(),
        }
    }
}

/// Where detected errors are kept.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    #[serde(rename = "type")]
    pub kind: StoreKind,
    /// Errors not seen for this long are forgotten (the seed's 30 days).
    pub retention: Duration,
    /// The most errors kept; past it the tenth seen least recently is evicted (memory: on
    /// the insert that crosses it; PostgreSQL: with each purge, every 10 minutes).
    pub max_errors: usize,
    /// `postgres://user@host:5432/database?sslmode=verify-full` (type `postgres`), without a
    /// password: that comes from the variable `password_env` names.
    pub url: Option<String>,
    pub password_env: Option<String>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            kind: StoreKind::Memory,
            retention: Duration::from_secs(30 * 24 * 3600),
            max_errors: 100_000,
            url: None,
            password_env: None,
        }
    }
}

/// Store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process; each replica counts on its own.
    #[default]
    Memory,
    /// PostgreSQL, shared by every replica, with exact counts across them.
    Postgres,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Violation> {
        let url = self.loki.url.as_str();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Violation::new(
                "loki.url",
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        }
        if self.loki.query.trim().is_empty() {
            return Err(Violation::new("loki.query", "must not be empty"));
        }
        if self.loki.poll_interval.get() < std::time::Duration::from_secs(1) {
            return Err(Violation::new("loki.poll_interval", "must be at least 1s"));
        }
        if self.loki.lookback < self.loki.poll_interval {
            return Err(Violation::new(
                "loki.lookback",
                "must be at least loki.poll_interval, or lines are missed between polls",
            ));
        }
        if !self.web.base_path.is_empty()
            && (!self.web.base_path.starts_with('/') || self.web.base_path.ends_with('/'))
        {
            return Err(Violation::new(
                "web.base_path",
                "must start with / and not end with one, like /kube-sentinel",
            ));
        }
        self.loki.validate_access()?;
        if self.web.auth.token_file.is_some() && self.web.auth.token_env.is_some() {
            return Err(Violation::new(
                "web.auth.token_env",
                "cannot be combined with web.auth.token_file; set one of them",
            ));
        }
        let le = &self.remediation.leader_election;
        if le.enabled {
            for (field, value) in [
                ("lease_namespace", &le.lease_namespace),
                ("identity", &le.identity),
            ] {
                if value.as_deref().is_none_or(str::is_empty) {
                    return Err(Violation::new(
                        format!("remediation.leader_election.{field}"),
                        "is needed when leader election is enabled (the downward API sets it)",
                    ));
                }
            }
            let (lease, renew, retry) = (
                le.lease_duration.get(),
                le.renew_deadline.get(),
                le.retry_period.get(),
            );
            if retry >= renew || renew + retry * 2 >= lease {
                return Err(Violation::new(
                    "remediation.leader_election.renew_deadline",
                    "must exceed retry_period, and lease_duration must exceed renew_deadline \
                     plus two retry periods",
                ));
            }
        }
        if self.store.max_errors == 0 {
            return Err(Violation::new("store.max_errors", "must be at least 1"));
        }
        match (&self.store.kind, &self.store.url) {
            (StoreKind::Postgres, None) => Err(Violation::new(
                "store.url",
                "is needed with type postgres, like postgres://sentinel@db:5432/sentinel",
            )),
            (StoreKind::Postgres, Some(url)) => {
                let userinfo = url
                    .split_once("://")
                    .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default())
                    .and_then(|authority| authority.rsplit_once('@'))
                    .map(|(userinfo, _)| userinfo);
                if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
                    Err(Violation::new("store.url", "must start with postgres://"))
                } else if userinfo.is_some_and(|u| u.contains(':')) {
                    Err(Violation::new(
                        "store.url",
                        "must not hold a password: name its variable in store.password_env",
                    ))
                } else {
                    Ok(())
                }
            }
            (StoreKind::Memory, _) => Ok(()),
        }
    }
}

impl Loki {
    fn validate_access(&self) -> Result<(), Violation> {
        if self.password.is_some() {
            return Err(Violation::new(
                "loki.password",
                "a password does not belong in a config file: put it in an environment \
                 variable and name it in loki.password_env",
            ));
        }
        if !(1..=5000).contains(&self.limit) {
            return Err(Violation::new(
                "loki.limit",
                "must be from 1 to 5000 (Loki's max_entries_limit_per_query)",
            ));
        }
        if self.overlap > self.lookback {
            return Err(Violation::new(
                "loki.overlap",
                "must not exceed loki.lookback",
            ));
        }
        let tenant_header = self
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("x-scope-orgid"));
        if tenant_header && self.tenant_id.is_some() {
            return Err(Violation::new(
                "loki.tenant_id",
                "is also given as the X-Scope-OrgID header; set one of them",
            ));
        }
        for name in self.headers.keys() {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !ok {
                return Err(Violation::new(
                    format!("loki.headers.{name}"),
                    "is not an HTTP header name",
                ));
            }
        }
        match (&self.username, &self.password_env, &self.bearer_token_env) {
            (Some(_), None, _) => Err(Violation::new(
                "loki.password_env",
                "is needed with loki.username: the variable holding the password",
            )),
            (None, Some(_), _) => Err(Violation::new(
                "loki.username",
                "is needed with loki.password_env",
            )),
            (Some(_), Some(_), Some(_)) => Err(Violation::new(
                "loki.bearer_token_env",
                "cannot be combined with basic authentication (loki.username)",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
