//! What injection adds to one pod, decided from its annotations (an [`InjectionRequest`]),
//! the pod and the webhook's [`Defaults`], before it is written as a patch: the annotations,
//! the volumes, the mounts and the keeper containers, as typed values.
//!
//! The choices follow Vault's injector (`hashicorp/vault-k8s` `agent-inject/agent/agent.go`)
//! where upstream had none: init container first, per-container mounts, restricted security
//! context, and a shared process namespace for signals.

use std::borrow::Cow;

use bulwark_sidecar_spec::{Auth, SPEC_VERSION, SidecarSpec};

use crate::annotations::{CaCert, InjectionRequest, key};
use crate::memo::Json;
use crate::objects::{KeyToPath, Volume, VolumeSource};
use crate::pod::PodSpec;
use crate::{CA_MOUNT_PATH, CA_VOLUME, Error, INJECTED, Injector, MOUNT_PATH, Result, VOLUME};

mod identity;
mod keeper;
mod users;

#[cfg(test)]
pub(crate) use keeper::resources;
pub use keeper::{KeeperKey, Role, container, security_context};
use users::Users;

/// What injection adds to one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan<'a> {
    /// The annotations to set, in order: the marker, then the spec that the keeper containers
    /// read through the downward API (values as JSON strings).
    pub annotations: Vec<(&'static str, Json)>,
    /// Whether `shareProcessNamespace: true` must be added, so that the sidecar can signal.
    pub share_process_namespace: bool,
    /// The pod's new volumes: the tmpfs (unless the pod declares it) and the extra CA.
    pub volumes: Vec<Volume<'a>>,
    /// The pod's containers that get the read-only mount and do not have it yet.
    pub mounts: Vec<Target>,
    /// The keeper init containers, in order: the init container, and the native sidecar, as
    /// the JSON of the typed containers ([`container`]).
    pub init_containers: Vec<Json>,
    /// Whether they go before the pod's own init containers rather than after them.
    pub init_first: bool,
    /// The classic sidecar, added to the pod's regular containers.
    pub sidecar: Option<Json>,
    /// Admission warnings for the user.
    pub warnings: Vec<String>,
    /// The spec, also written into the annotation.
    pub spec: SidecarSpec,
}

/// A container of the pod by its index in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    App(usize),
    Init(usize),
}

impl<'a> Plan<'a> {
    /// Plans the injection of a pod with `spec`, which is not injected yet, as `request` asks,
    /// with the injector's defaults for what it leaves open.
    pub fn new(
        spec: &PodSpec<'_>,
        request: InjectionRequest,
        injector: &'a Injector,
    ) -> Result<Self> {
        let defaults = injector.defaults();
        let InjectionRequest {
            auth,
            ksm_config,
            secrets,
            folders,
            refresh_interval,
            init_only,
            fail_on_error,
            strict_lookup,
            signal,
            ca_cert,
            native_sidecar,
            init_first,
            containers,
            output_mode,
            output_owner,
            resources,
            volume_size_limit,
            mut warnings,
        } = request;
        if spec.containers.is_empty() {
            return Err(Error::Pod("the pod has no containers".to_owned()));
        }
        if let Some(os) = spec.other_os() {
            return Err(Error::Conflict(format!(
                "the keeper containers run on Linux only, but the pod's {os}"
            )));
        }
        let sidecar = !init_only;
        let native = sidecar && native_sidecar.unwrap_or(defaults.native_sidecar);

        let targets = select(spec, containers.as_deref())?;
        let adopt_volume = check_volumes(
            spec,
            ca_cert.is_some(),
            volume_size_limit.is_some(),
            &mut warnings,
        )?;
        if sidecar {
            check_port(spec, defaults.health_port)?;
        }

        let users = Users::of(spec, output_owner, defaults, &targets);
        let file_mode = output_mode.unwrap_or_else(|| users.default_mode());
        let signal = signal.filter(|_| sidecar);
        let kill = signal.is_some() && !users.can_signal();
        if kill {
            warnings.push(format!(
                "{}: the sidecar gets capability KILL to signal processes of other users, which restricted pod security rejects; set runAsUser on the pod or keeper.security/output-owner to the application's user to avoid it",
                key("signal")
            ));
        }
        let ksm_config = match auth {
            Auth::Secret => Some(
                ksm_config
                    .or_else(|| defaults.ksm_config.clone())
                    .ok_or_else(|| {
                        Error::invalid(
                            key("ksm-config"),
                            "required with keeper.security/auth-method: secret (the default): expected the name of a Secret in the pod's namespace whose key config holds the KSM configuration",
                        )
                    })?,
            ),
            _ => None,
        };
        keeper::check_resources(&resources, defaults)?;
        let share_process_namespace = match (&signal, spec.share_process_namespace) {
            (None, _) | (Some(_), Some(true)) => false,
            (Some(_), None) => true,
            (Some(_), Some(false)) => {
                return Err(Error::invalid(
                    key("signal"),
                    "needs shareProcessNamespace: true so that the sidecar sees the application's processes, but the pod sets it to false",
                ));
            }
        };

        let spec_of_sidecar = SidecarSpec {
            version: SPEC_VERSION,
            mount_path: MOUNT_PATH.to_owned(),
            auth,
            secrets,
            folders,
            refresh_interval: refresh_interval.unwrap_or(defaults.refresh_interval),
            fail_on_error: fail_on_error.unwrap_or(defaults.fail_on_error),
            strict_lookup,
            file_mode,
            signal,
            ca_cert_file: ca_cert.as_ref().map(|_| format!("{CA_MOUNT_PATH}/ca.crt")),
            health_port: defaults.health_port,
        };

        let mut volumes = Vec::with_capacity(2);
        if !adopt_volume {
            let size_limit = volume_size_limit
                .map(Cow::Owned)
                .or_else(|| defaults.volume_size_limit.as_deref().map(Cow::Borrowed));
            volumes.push(Volume {
                name: VOLUME,
                source: VolumeSource::EmptyDir {
                    medium: "Memory",
                    size_limit,
                },
            });
        }
        let mut keeper = KeeperKey {
            role: Role::Init,
            ksm_config,
            ca: ca_cert.is_some(),
            resources,
            run_as: users.run_as,
            kill,
            identity: identity::identity(spec, &spec_of_sidecar.auth),
        };
        if let Some(warning) = identity::missing(&spec_of_sidecar.auth, &keeper.identity) {
            warnings.push(warning.to_owned());
        }
        if let Some(ca) = ca_cert {
            volumes.push(ca_volume(ca));
        }
        let mut keeper_json = |role| {
            keeper.role = role;
            injector
                .containers
                .get(&keeper, |key| Json::of(&container(defaults, key)))
        };
        let mut init_containers = vec![keeper_json(Role::Init)];
        if native {
            init_containers.push(keeper_json(Role::NativeSidecar));
        }
        let sidecar = (sidecar && !native).then(|| keeper_json(Role::Sidecar));
        let mounts = targets
            .into_iter()
            .filter(|target| !mounted(spec, *target))
            .collect();
        // The spec's JSON, as the JSON string that is the annotation's value.
        let spec_json = injector
            .specs
            .get(&spec_of_sidecar, |spec| Json::of(&spec.to_json()));
        Ok(Plan {
            annotations: vec![
                (INJECTED, Json::of(&"true")),
                (bulwark_sidecar_spec::SPEC_ANNOTATION, spec_json),
            ],
            share_process_namespace,
            volumes,
            mounts,
            init_containers,
            init_first,
            sidecar,
            warnings,
            spec: spec_of_sidecar,
        })
    }
}

/// Whether `target` mounts our volume already.
fn mounted(spec: &PodSpec<'_>, target: Target) -> bool {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let container = match target {
        Target::App(i) => &spec.containers[i],
        Target::Init(i) => &init[i],
    };
    container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.name == VOLUME)
}

/// The volume of extra CA certificates, with the chosen key as `ca.crt`.
fn ca_volume(ca: CaCert) -> Volume<'static> {
    let items = |key| {
        [KeyToPath {
            key,
            path: "ca.crt",
        }]
    };
    let source = match ca {
        CaCert::Secret { name, key } => VolumeSource::Secret {
            secret_name: name,
            items: items(key),
        },
        CaCert::ConfigMap { name, key } => VolumeSource::ConfigMap {
            name,
            items: items(key),
        },
    };
    Volume {
        name: CA_VOLUME,
        source,
    }
}

/// The containers named by `keeper.security/containers`, or all of them.
fn select(spec: &PodSpec<'_>, names: Option<&[String]>) -> Result<Vec<Target>> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let Some(names) = names else {
        let apps = (0..spec.containers.len()).map(Target::App);
        return Ok(apps.chain((0..init.len()).map(Target::Init)).collect());
    };
    names
        .iter()
        .map(|name| {
            if let Some(i) = spec.containers.iter().position(|c| c.name == name.as_str()) {
                Ok(Target::App(i))
            } else if let Some(i) = init.iter().position(|c| c.name == name.as_str()) {
                Ok(Target::Init(i))
            } else {
                let known: Vec<&str> = spec
                    .containers
                    .iter()
                    .chain(init)
                    .map(|c| &*c.name)
                    .collect();
                Err(Error::invalid(
                    key("containers"),
                    format!(
                        "the pod has no container named {name:?}: expected some of {}",
                        known.join(", ")
                    ),
                ))
            }
        })
        .collect()
}

/// Checks the pod's volumes and mounts against ours; returns whether the pod already declares
/// our tmpfs volume, which is then used as it is (as the upstream example 13 pod does).
fn check_volumes(
    spec: &PodSpec<'_>,
    ca_cert: bool,
    volume_size_limit: bool,
    warnings: &mut Vec<String>,
) -> Result<bool> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    if ca_cert && volumes.iter().any(|v| v.name == CA_VOLUME) {
        return Err(Error::Conflict(format!(
            "the pod declares volume {CA_VOLUME}, which keeper.security/ca-cert-* needs: rename it"
        )));
    }
    let init = spec.init_containers.as_deref().unwrap_or_default();
    for container in spec.containers.iter().chain(init) {
        let mounts = container.volume_mounts.as_deref().unwrap_or_default();
        if let Some(m) = mounts
            .iter()
            .find(|m| m.name != VOLUME && m.mount_path.trim_end_matches('/') == MOUNT_PATH)
        {
            return Err(Error::Conflict(format!(
                "container {:?} mounts volume {:?} at {MOUNT_PATH}, where the keeper secrets go: move it",
                container.name, m.name
            )));
        }
    }
    let Some(volume) = volumes.iter().find(|v| v.name == VOLUME) else {
        return Ok(false);
    };
    let tmpfs = volume
        .empty_dir
        .as_ref()
        .is_some_and(|e| e.medium.as_deref() == Some("Memory"));
    if !tmpfs {
        return Err(Error::Conflict(format!(
            "the pod declares volume {VOLUME}, but not as an emptyDir with medium Memory: remove it, the webhook adds it (secrets must stay in memory)"
        )));
    }
    if volume_size_limit {
        warnings.push(format!(
            "{}: has no effect, because the pod declares volume {VOLUME} itself",
            key("volume-size-limit")
        ));
    }
    Ok(true)
}

/// The sidecar's health port must be free in the pod's network namespace.
fn check_port(spec: &PodSpec<'_>, port: u16) -> Result<()> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    for container in spec.containers.iter().chain(init) {
        let ports = container.ports.as_deref().unwrap_or_default();
        if ports.iter().any(|p| p.container_port == i32::from(port)) {
            return Err(Error::Conflict(format!(
                "container {:?} uses port {port}, which the keeper sidecar serves health and metrics on: use another port, or change the webhook's health_port",
                container.name
            )));
        }
    }
    Ok(())
}
