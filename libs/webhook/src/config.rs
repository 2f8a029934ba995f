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

/// Leader election: when enabled, only the leader reports ready, so the Service sends every
/// admission request to it and followers stand by (the seed's high-traffic mode).
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

#[cfg(test)]
mod tests;
