//! The webhook's config file: where it listens, its certificate, leader election, and the
//! injection defaults that pods' annotations may override.

use std::path::PathBuf;

use bulwark_config::{Duration, Health, ListenAddr, Validate, Violation};
use serde::Deserialize;

/// The whole config; every section and key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub webhook: Server,
    pub health: Health,
    pub leader_election: LeaderElection,
    pub kubernetes: Kubernetes,
    /// Injection defaults (sidecar image, resources, native sidecar, ...).
    pub defaults: bulwark_inject::Defaults,
}

/// The HTTPS admission server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: ListenAddr,
    /// PEM certificate chain, as cert-manager writes it (`tls.crt`).
    pub cert_file: PathBuf,
    /// PEM private key (`tls.key`).
    pub key_file: PathBuf,
    /// How often the files are checked for a rotated certificate.
    pub cert_reload_interval: Duration,
    /// How long to keep serving after SIGTERM while `/ready` fails, so that the Service drops
    /// this pod before it stops answering.
    pub shutdown_delay: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            listen: ListenAddr::any(8443),
            cert_file: PathBuf::from("/etc/webhook/certs/tls.crt"),
            key_file: PathBuf::from("/etc/webhook/certs/tls.key"),
            cert_reload_interval: Duration::from_secs(10),
            shutdown_delay: Duration::from_secs(2),
        }
    }
}

/// Leader election: when enabled, the leader labels its own pod with `pod_label` and a Service
/// that selects the label sends every admission request to it, while followers stand by (the
/// seed's high-traffic mode). Every replica stays ready, so rolling updates and node drains
/// proceed as usual.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeaderElection {
    pub enabled: bool,
    pub lease_name: String,
    /// The Lease's namespace; set from the downward API (`metadata.namespace`).
    pub namespace: Option<String>,
    /// This replica's identity; set from the downward API (`metadata.name`).
    pub identity: Option<String>,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
    /// The label the leader puts on its own pod (value `"true"`) and removes from every other.
    pub pod_label: String,
}

impl Default for LeaderElection {
    fn default() -> Self {
        Self {
            enabled: false,
            lease_name: "injector-webhook".into(),
            namespace: None,
            identity: None,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            pod_label: "keeper.security/webhook-leader".into(),
        }
    }
}

/// How to reach the API server (for leader election only; admission never calls it).
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Kubernetes {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Violation> {
        self.defaults
            .validate()
            .map_err(|v| Violation::new(format!("defaults.{}", v.field), v.message))?;
        let le = &self.leader_election;
        if le.enabled {
            if le.namespace.as_deref().is_none_or(str::is_empty) {
                return Err(Violation::new(
                    "leader_election.namespace",
                    "must be set when leader election is enabled (the downward API's metadata.namespace)",
                ));
            }
            if le.identity.as_deref().is_none_or(str::is_empty) {
                return Err(Violation::new(
                    "leader_election.identity",
                    "must be set when leader election is enabled (the downward API's metadata.name)",
                ));
            }
            if let Err(problem) = label_key(&le.pod_label) {
                return Err(Violation::new("leader_election.pod_label", problem));
            }
            if le.lease_duration.get() <= le.renew_deadline.get() + 2 * le.retry_period.get() {
                return Err(Violation::new(
                    "leader_election.lease_duration",
                    "must exceed renew_deadline plus two retry_periods",
                ));
            }
        }
        if self.webhook.cert_reload_interval.get() < std::time::Duration::from_secs(1) {
            return Err(Violation::new(
                "webhook.cert_reload_interval",
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}

/// Whether `key` is a Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a
/// name of at most 63 alphanumerics, `-`, `_` and `.`, starting and ending alphanumeric.
fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    let name_ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        (1..=253).contains(&p.len())
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "{key:?} is not a label key: an optional DNS subdomain and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests;
