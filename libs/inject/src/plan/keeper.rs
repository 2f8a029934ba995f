//! The keeper containers: the init container that fetches the secrets before the application
//! starts, and the sidecar that refreshes them, both running the `injector-sidecar` image.

use std::borrow::Cow;

use bulwark_sidecar_spec::{
    ARG_MODE_INIT, ARG_MODE_SIDECAR, KSM_CONFIG_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV, SPEC_ENV,
    SPEC_FIELD_PATH,
};

use crate::annotations::{ResourceOverrides, key};
use crate::objects::{
    Capabilities, Container, ContainerPort, EnvSource, EnvVar, HttpGet, Probe, Quantities,
    Resources, SeccompProfile, SecurityContext, VolumeMount,
};
use crate::{
    CA_MOUNT_PATH, CA_VOLUME, Defaults, Error, INIT_CONTAINER, METRICS_PORT_NAME, MOUNT_PATH,
    Result, SIDECAR_CONTAINER, VOLUME, quantity,
};

/// Which keeper container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Init,
    /// The classic sidecar, a regular container.
    Sidecar,
    /// The native sidecar: an init container with `restartPolicy: Always`.
    NativeSidecar,
}

/// What the keeper containers of one pod have in common.
#[derive(Debug, Clone)]
pub(crate) struct Keeper<'a> {
    pub(crate) defaults: &'a Defaults,
    /// The Secret whose key `config` holds the KSM configuration (auth method `secret`).
    pub(crate) ksm_config: Option<Cow<'a, str>>,
    /// Whether the extra CA volume is mounted.
    pub(crate) ca: bool,
    pub(crate) resources: Option<Resources<'a>>,
    pub(crate) security: SecurityContext,
}

impl<'a> Keeper<'a> {
    /// The container for `role`.
    pub(crate) fn container(&self, role: Role) -> Container<'a> {
        let d = self.defaults;
        let (name, mode) = match role {
            Role::Init => (INIT_CONTAINER, ARG_MODE_INIT),
            Role::Sidecar | Role::NativeSidecar => (SIDECAR_CONTAINER, ARG_MODE_SIDECAR),
        };
        let mut args = Vec::with_capacity(1 + d.args.len());
        args.push(mode);
        args.extend(d.args.iter().map(String::as_str));

        let field = |name, field_path| EnvVar {
            name,
            value_from: EnvSource::FieldRef { field_path },
        };
        let mut env = Vec::with_capacity(4);
        // The spec is written once, into a pod annotation, and read from there.
        env.push(field(SPEC_ENV, SPEC_FIELD_PATH));
        if let Some(secret) = &self.ksm_config {
            env.push(EnvVar {
                name: KSM_CONFIG_ENV,
                value_from: EnvSource::SecretKeyRef {
                    name: secret.clone(),
                    key: "config",
                },
            });
        }
        env.push(field(POD_NAME_ENV, "metadata.name"));
        env.push(field(POD_NAMESPACE_ENV, "metadata.namespace"));

        let mut volume_mounts = vec![VolumeMount {
            name: VOLUME,
            mount_path: MOUNT_PATH,
            read_only: false,
        }];
        if self.ca {
            volume_mounts.push(VolumeMount {
                name: CA_VOLUME,
                mount_path: CA_MOUNT_PATH,
                read_only: true,
            });
        }

        let sidecar = role != Role::Init;
        let probe = |path| Probe {
            http_get: HttpGet {
                path,
                port: d.health_port,
            },
            period_seconds: 10,
        };
        let ports = if sidecar {
            vec![ContainerPort {
                name: METRICS_PORT_NAME,
                container_port: d.health_port,
                protocol: "TCP",
            }]
        } else {
            Vec::new()
        };
        Container {
            name,
            image: &d.image,
            image_pull_policy: d.image_pull_policy.as_deref(),
            args,
            env,
            volume_mounts,
            resources: self.resources.clone(),
            security_context: self.security,
            // The init container's last log lines become its termination message, so that
            // `kubectl describe pod` shows why secrets could not be fetched.
            termination_message_policy: "FallbackToLogsOnError",
            ports,
            liveness_probe: sidecar.then(|| probe("/health")),
            readiness_probe: sidecar.then(|| probe("/ready")),
            restart_policy: (role == Role::NativeSidecar).then_some("Always"),
        }
    }
}

/// The restricted-profile security context of the keeper containers running as `run_as`
/// (user and group; `None` inherits the pod's), with `CAP_KILL` when `kill`.
pub(crate) fn security_context(run_as: (Option<i64>, Option<i64>), kill: bool) -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: false,
        capabilities: Capabilities {
            add: if kill { &["KILL"] } else { &[] },
            drop: &["ALL"],
        },
        read_only_root_filesystem: true,
        run_as_group: run_as.1,
        run_as_non_root: true,
        run_as_user: run_as.0,
        seccomp_profile: SeccompProfile {
            kind: "RuntimeDefault",
        },
    }
}

/// The keeper containers' requests and limits: the webhook's, overridden per pod; `None` when
/// neither sets any. A request above its limit is an error when the pod set one of the two
/// (the webhook's own values were checked against each other when its configuration loaded).
pub(crate) fn resources(
    overrides: ResourceOverrides,
    defaults: &Defaults,
) -> Result<Option<Resources<'_>>> {
    let d = &defaults.resources;
    fn pick(pod: Option<String>, webhook: &Option<String>) -> Option<Cow<'_, str>> {
        pod.map(Cow::Owned)
            .or_else(|| webhook.as_deref().map(Cow::Borrowed))
    }
    let cpu_from_pod = (
        overrides.cpu_request.is_some(),
        overrides.cpu_limit.is_some(),
    );
    let memory_from_pod = (
        overrides.memory_request.is_some(),
        overrides.memory_limit.is_some(),
    );
    let requests = Quantities {
        cpu: pick(overrides.cpu_request, &d.cpu_request),
        memory: pick(overrides.memory_request, &d.memory_request),
    };
    let limits = Quantities {
        cpu: pick(overrides.cpu_limit, &d.cpu_limit),
        memory: pick(overrides.memory_limit, &d.memory_limit),
    };
    for (name, request, limit, (request_from_pod, limit_from_pod)) in [
        ("cpu", &requests.cpu, &limits.cpu, cpu_from_pod),
        ("memory", &requests.memory, &limits.memory, memory_from_pod),
    ] {
        let (Some(r), Some(l)) = (request, limit) else {
            continue;
        };
        if !(request_from_pod || limit_from_pod) {
            continue;
        }
        if quantity::parse(r).unwrap_or(0.0) > quantity::parse(l).unwrap_or(f64::INFINITY) {
            let which = if request_from_pod { "request" } else { "limit" };
            return Err(Error::invalid(
                key(&format!("{name}-{which}")),
                format!(
                    "the {name} request {r} exceeds the {name} limit {l}: expected a request no larger than the limit"
                ),
            ));
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return Ok(None);
    }
    Ok(Some(Resources { limits, requests }))
}
