//! The keeper containers: the init container that fetches the secrets before the application
//! starts, and the sidecar that refreshes them, both running the `injector-sidecar` image.

use std::borrow::Cow;

use bulwark_sidecar_spec::{
    ARG_MODE_INIT, ARG_MODE_SIDECAR, KSM_CONFIG_ENV, POD_NAME_ENV, POD_NAMESPACE_ENV, SPEC_ENV,
    SPEC_FIELD_PATH,
};

use super::identity::Identity;
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
pub enum Role {
    Init,
    /// The classic sidecar, a regular container.
    Sidecar,
    /// The native sidecar: an init container with `restartPolicy: Always`.
    NativeSidecar,
}

/// Everything a keeper container depends on besides the webhook's [`Defaults`]. [`container`]
/// reads nothing else, so the JSON of a container made from an equal key is the same and the
/// injector keeps it ([`crate::memo`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeeperKey {
    pub role: Role,
    /// The Secret whose key `config` holds the KSM configuration (auth method `secret`).
    pub ksm_config: Option<String>,
    /// Whether the extra CA volume is mounted.
    pub ca: bool,
    /// The pod's own requests and limits, over the webhook's.
    pub resources: ResourceOverrides,
    /// `runAsUser` and `runAsGroup` (`None` inherits the pod's).
    pub run_as: (Option<i64>, Option<i64>),
    /// Whether the sidecar needs `CAP_KILL` to signal processes of other users.
    pub kill: bool,
    /// The workload identity copied from the application's containers (cloud methods).
    pub identity: Identity,
}

/// The keeper container that `key` describes.
pub fn container<'a>(defaults: &'a Defaults, key: &'a KeeperKey) -> Container<'a> {
    let d = defaults;
    let (name, mode) = match key.role {
        Role::Init => (INIT_CONTAINER, ARG_MODE_INIT),
        Role::Sidecar | Role::NativeSidecar => (SIDECAR_CONTAINER, ARG_MODE_SIDECAR),
    };
    let mut args = Vec::with_capacity(1 + d.args.len());
    args.push(mode);
    args.extend(d.args.iter().map(String::as_str));

    let field = |name, field_path| EnvVar {
        name,
        value: None,
        value_from: Some(EnvSource::FieldRef { field_path }),
    };
    let mut env = Vec::with_capacity(4);
    // The spec is written once, into a pod annotation, and read from there.
    env.push(field(SPEC_ENV, SPEC_FIELD_PATH));
    if let Some(secret) = &key.ksm_config {
        env.push(EnvVar {
            name: KSM_CONFIG_ENV,
            value: None,
            value_from: Some(EnvSource::SecretKeyRef {
                name: Cow::Borrowed(secret),
                key: "config",
            }),
        });
    }
    env.push(field(POD_NAME_ENV, "metadata.name"));
    env.push(field(POD_NAMESPACE_ENV, "metadata.namespace"));

    // The workload identity an identity webhook gave the application, for the cloud methods.
    env.extend(key.identity.env.iter().map(|(name, value)| EnvVar {
        name,
        value: Some(Cow::Borrowed(value.as_str())),
        value_from: None,
    }));

    let mut volume_mounts = vec![VolumeMount {
        name: VOLUME,
        mount_path: Cow::Borrowed(MOUNT_PATH),
        read_only: false,
    }];
    if key.ca {
        volume_mounts.push(VolumeMount {
            name: CA_VOLUME,
            mount_path: Cow::Borrowed(CA_MOUNT_PATH),
            read_only: true,
        });
    }
    volume_mounts.extend(key.identity.mounts.iter().map(|(name, path)| VolumeMount {
        name,
        mount_path: Cow::Borrowed(path.as_str()),
        read_only: true,
    }));

    let sidecar = key.role != Role::Init;
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
        resources: resources(&key.resources, defaults),
        security_context: security_context(key.run_as, key.kill),
        // The init container's last log lines become its termination message, so that
        // `kubectl describe pod` shows why secrets could not be fetched.
        termination_message_policy: "FallbackToLogsOnError",
        ports,
        liveness_probe: sidecar.then(|| probe("/health")),
        readiness_probe: sidecar.then(|| probe("/ready")),
        restart_policy: (key.role == Role::NativeSidecar).then_some("Always"),
    }
}

/// The restricted-profile security context of the keeper containers running as `run_as`
/// (user and group; `None` inherits the pod's), with `CAP_KILL` when `kill`.
pub fn security_context(run_as: (Option<i64>, Option<i64>), kill: bool) -> SecurityContext {
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
/// neither sets any.
pub(crate) fn resources<'a>(
    overrides: &'a ResourceOverrides,
    defaults: &'a Defaults,
) -> Option<Resources<'a>> {
    let d = &defaults.resources;
    let pick = |pod: &'a Option<String>, webhook: &'a Option<String>| {
        pod.as_deref().or(webhook.as_deref()).map(Cow::Borrowed)
    };
    let resources = Resources {
        limits: Quantities {
            cpu: pick(&overrides.cpu_limit, &d.cpu_limit),
            memory: pick(&overrides.memory_limit, &d.memory_limit),
        },
        requests: Quantities {
            cpu: pick(&overrides.cpu_request, &d.cpu_request),
            memory: pick(&overrides.memory_request, &d.memory_request),
        },
    };
    (!resources.limits.is_empty() || !resources.requests.is_empty()).then_some(resources)
}

/// Refuses a request above its limit when the pod set one of the two (the webhook's own values
/// were checked against each other when its configuration loaded).
pub(crate) fn check_resources(overrides: &ResourceOverrides, defaults: &Defaults) -> Result<()> {
    let Some(merged) = resources(overrides, defaults) else {
        return Ok(());
    };
    let o = overrides;
    for (name, request, limit, request_from_pod, limit_from_pod) in [
        (
            "cpu",
            &merged.requests.cpu,
            &merged.limits.cpu,
            o.cpu_request.is_some(),
            o.cpu_limit.is_some(),
        ),
        (
            "memory",
            &merged.requests.memory,
            &merged.limits.memory,
            o.memory_request.is_some(),
            o.memory_limit.is_some(),
        ),
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
    Ok(())
}
