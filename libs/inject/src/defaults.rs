//! The webhook-wide defaults that a pod's annotations may override: the sidecar image, its
//! resources, native sidecars, the refresh interval and the user the keeper containers run as.
//!
//! The webhook's config file holds a [`Defaults`] (YAML, snake_case keys, every key optional).

use bulwark_config::{Duration, Validate, Violation};
use serde::{Deserialize, Serialize};

use crate::quantity;

/// Defaults for every injected pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defaults {
    /// The image of the init and sidecar containers (the `injector-sidecar` binary).
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`; `None` leaves Kubernetes' default.
    pub image_pull_policy: Option<String>,
    /// Requests and limits of each keeper container.
    pub resources: Resources,
    /// Run the sidecar as a native sidecar (an init container with `restartPolicy: Always`,
    /// Kubernetes 1.29 and later), so that Jobs complete and the sidecar starts before the
    /// application and stops after it.
    pub native_sidecar: bool,
    /// How often the sidecar fetches again (`keeper.security/refresh-interval`).
    pub refresh_interval: Duration,
    /// Whether a failed first fetch keeps the pod from starting
    /// (`keeper.security/fail-on-error`).
    pub fail_on_error: bool,
    /// The Secret holding the KSM configuration when a pod names none
    /// (`keeper.security/ksm-config`).
    pub ksm_config: Option<String>,
    /// The user the keeper containers run as when neither the pod nor
    /// `keeper.security/output-owner` chooses one (65532 is the image's `nonroot`).
    pub run_as_user: i64,
    /// The group that goes with [`Defaults::run_as_user`].
    pub run_as_group: i64,
    /// The tmpfs volume's `sizeLimit` (`keeper.security/volume-size-limit`).
    pub volume_size_limit: Option<String>,
    /// The sidecar's port for `/health`, `/ready` and `/metrics` (applications often use 8080).
    pub health_port: u16,
    /// Extra arguments for the keeper containers, such as `--log-format=json`.
    pub args: Vec<String>,
}

/// Requests and limits as Kubernetes quantities; `None` sets none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Resources {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            image: concat!(
                "ghcr.io/bulwark-k8s/injector-sidecar:",
                env!("CARGO_PKG_VERSION")
            )
            .to_owned(),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            resources: Resources::default(),
            native_sidecar: true,
            refresh_interval: Duration::from_secs(300),
            fail_on_error: true,
            ksm_config: None,
            run_as_user: 65532,
            run_as_group: 65532,
            volume_size_limit: None,
            health_port: 9102,
            args: Vec::new(),
        }
    }
}

impl Default for Resources {
    /// The seed's `sidecarResources` (production guidance of the upstream chart).
    fn default() -> Self {
        Self {
            cpu_request: Some("20m".to_owned()),
            cpu_limit: Some("100m".to_owned()),
            memory_request: Some("64Mi".to_owned()),
            memory_limit: Some("128Mi".to_owned()),
        }
    }
}

impl Validate for Defaults {
    fn validate(&self) -> Result<(), Violation> {
        if self.image.trim().is_empty() {
            return Err(Violation::new(
                "image",
                "expected a container image reference",
            ));
        }
        if let Some(policy) = &self.image_pull_policy
            && !matches!(policy.as_str(), "Always" | "IfNotPresent" | "Never")
        {
            return Err(Violation::new(
                "image_pull_policy",
                format!("invalid policy {policy:?}: expected Always, IfNotPresent or Never"),
            ));
        }
        self.resources.validate_in("resources")?;
        if self.refresh_interval.get() < std::time::Duration::from_secs(10) {
            return Err(Violation::new("refresh_interval", "expected at least 10s"));
        }
        if let Some(name) = &self.ksm_config
            && !crate::annotations::is_dns_subdomain(name)
        {
            return Err(Violation::new("ksm_config", "expected a Secret name"));
        }
        for (field, id) in [
            ("run_as_user", self.run_as_user),
            ("run_as_group", self.run_as_group),
        ] {
            if !(1..=i64::from(i32::MAX)).contains(&id) {
                return Err(Violation::new(
                    field,
                    "expected a non-root numeric id from 1 to 2147483647",
                ));
            }
        }
        if let Some(limit) = &self.volume_size_limit
            && quantity::parse(limit).is_none()
        {
            return Err(Violation::new(
                "volume_size_limit",
                "expected a quantity such as 16Mi",
            ));
        }
        if self.health_port == 0 {
            return Err(Violation::new(
                "health_port",
                "expected a port from 1 to 65535",
            ));
        }
        Ok(())
    }
}

impl Resources {
    /// Checks quantities and that no request exceeds its limit; `prefix` names the field.
    pub(crate) fn validate_in(&self, prefix: &str) -> Result<(), Violation> {
        for (name, request, limit) in [
            ("cpu", &self.cpu_request, &self.cpu_limit),
            ("memory", &self.memory_request, &self.memory_limit),
        ] {
            let mut values = [None, None];
            for (slot, (kind, value)) in values
                .iter_mut()
                .zip([("request", request), ("limit", limit)])
            {
                if let Some(value) = value {
                    *slot = Some(quantity::parse(value).ok_or_else(|| {
                        Violation::new(
                            format!("{prefix}.{name}_{kind}"),
                            format!("invalid quantity {value:?}: expected a Kubernetes quantity such as 100m or 64Mi"),
                        )
                    })?);
                }
            }
            if let [Some(request_value), Some(limit_value)] = values
                && request_value > limit_value
            {
                return Err(Violation::new(
                    format!("{prefix}.{name}_request"),
                    format!(
                        "request {} exceeds limit {}: expected a request no larger than the limit",
                        request.as_deref().unwrap_or_default(),
                        limit.as_deref().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
