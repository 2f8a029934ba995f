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
    /// Sent as `X-Scope-OrgID` for multi-tenant Loki.
    pub tenant_id: Option<String>,
    /// Extra request headers, such as `X-Scope-OrgID`.
    pub headers: BTreeMap<String, String>,
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
}

impl Default for Web {
    fn default() -> Self {
        Self {
            listen: ListenAddr::any(8080),
            base_path: String::new(),
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
    pub excluded_namespaces: Vec<String>,
}

impl Default for Remediation {
    fn default() -> Self {
        Self {
            enabled: true,
            dry_run: false,
            max_actions_per_hour: 50,
            excluded_namespaces: vec!["kube-system".into(), "monitoring".into()],
        }
    }
}

/// Where detected errors are kept.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    #[serde(rename = "type")]
    pub kind: StoreKind,
}

/// Store backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    #[default]
    Memory,
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
        if !self.web.base_path.is_empty() && !self.web.base_path.starts_with('/') {
            return Err(Violation::new("web.base_path", "must start with /"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
