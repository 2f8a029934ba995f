//! Everything Bulwark binaries need from the Kubernetes API besides their own resources:
//! building a [`kube::Client`] from in-cluster config or a kubeconfig, Lease-based leader
//! election with the leader's pod label for routing, an Events recorder, and the workload
//! operations sentinel's remediation performs (`workloads`).
//!
//! This crate and the binaries are the only ones that talk to the API server; domain crates
//! take and return plain types.

mod client;
mod election;
mod events;
mod leader_label;
pub mod workloads;

pub use client::{ClientOptions, api_probe, client};
pub use election::{LeaderElector, Leadership, LeaseSettings};
pub use events::{EventType, Events};
/// The client the functions here take, for crates that may not depend on kube themselves.
pub use kube::Client;
pub use leader_label::{LEADER, LeaderLabel};

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read kubeconfig {path}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot load Kubernetes client configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("Kubernetes API request failed")]
    Api(#[source] kube::Error),
    #[error("invalid leader election settings: {0}")]
    Settings(String),
}

impl Error {
    /// Whether the API server answered 404: the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api(kube::Error::Api(e)) if e.code == 404)
    }

    /// A bounded label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kubeconfig { .. } => "kubeconfig",
            Error::Config(_) => "config",
            Error::Client(_) => "client",
            Error::Api(_) => "api",
            Error::Settings(_) => "settings",
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
