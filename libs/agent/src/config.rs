//! The sidecar's own config file (the webhook's spec says what to deliver): its health server,
//! and how long the init container waits for Keeper when it is unreachable or throttling.

use bulwark_config::{Duration, Health, Validate, Violation};
use serde::Deserialize;

/// The config of `injector-sidecar`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub health: Health,
    /// How long the init container keeps trying while Keeper is unreachable or throttling,
    /// before it fails with the reason (the pod's start waits that long).
    pub init_retry_for: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            health: Health::default(),
            init_retry_for: Duration::new(crate::run::INIT_RETRY_BUDGET),
        }
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Violation> {
        if self.init_retry_for.get() > std::time::Duration::from_secs(600) {
            return Err(Violation::new(
                "init_retry_for",
                "expected at most 10m: the pod does not start while init waits",
            ));
        }
        Ok(())
    }
}
