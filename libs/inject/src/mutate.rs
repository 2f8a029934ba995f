//! The pod mutation: what injection adds to a pod, as a minimal RFC 6902 JSON patch.
//!
//! It adds the tmpfs volume, the init container (first, so that the pod's own init containers
//! can read secrets), the sidecar (classic, or native: an init container with
//! `restartPolicy: Always`), read-only mounts on the selected containers and the
//! `keeper.security/injected` marker, and nothing else.
//! A pod that carries the marker or one of our containers gets an empty patch, so that
//! reinvocation and re-submitted pods are safe (upstream defect 1).
//! The choices follow Vault's injector (`hashicorp/vault-k8s` `agent-inject/agent/agent.go`)
//! where upstream had none: init container first, per-container mounts, restricted
//! security context, and a shared process namespace for signals.

use std::borrow::Cow;

use k8s_openapi::api::core::v1::{ConfigMapVolumeSource, KeyToPath, SecretVolumeSource, Volume};
use serde_json::Value;

use crate::annotations::{CaCert, InjectionRequest, ResourceOverrides, key};
use crate::json::{push_number, push_string};
use crate::patch::{Json, Patch};
use crate::pod::{Container as PodContainer, Pod, PodSpec};
use crate::spec::{self, Auth, FileMode, SidecarSpec};
use crate::{
    CA_MOUNT_PATH, CA_VOLUME, Defaults, Error, INIT_CONTAINER, INJECTED, METRICS_PORT_NAME,
    MOUNT_PATH, Result, SIDECAR_CONTAINER, VOLUME, quantity,
};

/// The result of admitting one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub outcome: Outcome,
    /// The JSON patch; empty unless [`Outcome::Injected`].
    pub patch: Patch,
    /// Admission warnings for the user.
    pub warnings: Vec<String>,
    /// The spec given to the keeper containers, when injected.
    pub spec: Option<SidecarSpec>,
}

/// What admission did with a pod; also a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The pod does not ask for injection.
    NotRequested,
    /// The pod was injected before; the patch is empty.
    AlreadyInjected,
    /// The patch injects the pod.
    Injected,
}

impl Mutation {
    pub(crate) fn empty(outcome: Outcome, warnings: Vec<String>) -> Self {
        Self {
            outcome,
            patch: Patch::new(),
            warnings,
            spec: None,
        }
    }

    /// Whether there is nothing to patch.
    pub fn is_empty(&self) -> bool {
        self.patch.is_empty()
    }

    /// The patch as a JSON value.
    pub fn patch_json(&self) -> Value {
        serde_json::from_str(self.patch.as_json()).unwrap_or(Value::Null)
    }
}

impl Outcome {
    /// A snake_case label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotRequested => "not_requested",
            Outcome::AlreadyInjected => "already_injected",
            Outcome::Injected => "injected",
        }
    }
}

/// Why a pod counts as injected already, if it does.
pub(crate) fn injected(pod: &Pod<'_>) -> Option<&'static str> {
    let marker = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(INJECTED))
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let ours = pod.spec.as_ref().is_some_and(|spec| {
        spec.containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| c.name == INIT_CONTAINER || c.name == SIDECAR_CONTAINER)
    });
    match (marker, ours) {
        (_, true) => Some("containers"),
        (true, false) => Some("marker"),
        (false, false) => None,
    }
}

/// Computes the patch that injects `pod` as `request` asks, with `defaults` for what it leaves
/// open; the patch is empty when the pod is injected already.
pub fn mutate(pod: &Pod<'_>, request: InjectionRequest, defaults: &Defaults) -> Result<Mutation> {
    mutate_with(pod, request, defaults, &Fragments::of(defaults))
}

/// [`mutate`] with the `fragments` of `defaults` written already.
pub(crate) fn mutate_with(
    pod: &Pod<'_>,
    mut request: InjectionRequest,
    defaults: &Defaults,
    fragments: &Fragments,
) -> Result<Mutation> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| Error::Pod("the pod has no spec".to_owned()))?;
    // The spec and the mutation take these; nothing else reads them.
    let secrets = std::mem::take(&mut request.secrets);
    let folders = std::mem::take(&mut request.folders);
    let mut warnings = std::mem::take(&mut request.warnings);
    let request = &request;
    match injected(pod) {
        Some("marker") => {
            warnings.push(format!(
                "{INJECTED} is \"true\" but the pod has no {INIT_CONTAINER} container, so nothing was injected: remove the annotation to inject"
            ));
            return Ok(Mutation::empty(Outcome::AlreadyInjected, warnings));
        }
        Some(_) => return Ok(Mutation::empty(Outcome::AlreadyInjected, warnings)),
        None => {}
    }
    if spec.containers.is_empty() {
        return Err(Error::Pod("the pod has no containers".to_owned()));
    }
    if spec
        .os
        .as_ref()
        .is_some_and(|os| !os.name.eq_ignore_ascii_case("linux"))
    {
        return Err(Error::Conflict(
            "the keeper containers run on Linux only, but the pod sets spec.os.name to another system".to_owned(),
        ));
    }
    let sidecar = !request.init_only;
    let native = sidecar && request.native_sidecar.unwrap_or(defaults.native_sidecar);
    let init_containers = spec.init_containers.as_deref().unwrap_or_default();

    let targets = select(spec, request)?;
    let adopt_volume = check_volumes(spec, request, &mut warnings)?;
    if sidecar {
        check_port(spec, defaults.health_port)?;
    }

    let users = Users::of(spec, request, defaults, &targets);
    let file_mode = request.output_mode.unwrap_or_else(|| users.default_mode());
    let kill = sidecar && request.signal.is_some() && !users.can_signal();
    if kill {
        warnings.push(format!(
            "{}: the sidecar gets capability KILL to signal processes of other users, which restricted pod security rejects; set runAsUser on the pod or keeper.security/output-owner to the application's user to avoid it",
            key("signal")
        ));
    }

    let sidecar_spec = SidecarSpec {
        version: spec::SPEC_VERSION,
        mount_path: MOUNT_PATH.to_owned(),
        auth: request.auth.clone(),
        secrets,
        folders,
        refresh_interval: request
            .refresh_interval
            .unwrap_or(defaults.refresh_interval),
        fail_on_error: request.fail_on_error.unwrap_or(defaults.fail_on_error),
        strict_lookup: request.strict_lookup,
        file_mode,
        signal: request.signal.clone().filter(|_| sidecar),
        ca_cert_file: request
            .ca_cert
            .as_ref()
            .map(|_| format!("{CA_MOUNT_PATH}/ca.crt")),
        health_port: defaults.health_port,
    };
    let ksm_config = match request.auth {
        Auth::Secret => Some(
            request
                .ksm_config
                .clone()
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
    let resources = if request.resources == ResourceOverrides::default() {
        fragments.resources.as_deref().map(Cow::Borrowed)
    } else {
        resources(request, defaults)?.map(Cow::Owned)
    };
    let default_user = (Some(defaults.run_as_user), Some(defaults.run_as_group));
    let security = if users.run_as == default_user && !kill {
        Cow::Borrowed(fragments.security.as_str())
    } else {
        Cow::Owned(security_json(users.run_as, kill))
    };
    let build = Build {
        request,
        fragments,
        spec_literal: sidecar_spec.to_json_literal(),
        ksm_config,
        resources,
        security,
    };

    // Each keeper container is about 1.5 KiB besides the spec.
    let mut patch = Patch::with_capacity(4096 + 2 * build.spec_literal.len());
    // The marker first: it is what makes every later admission of this pod a no-op.
    match &pod.metadata.annotations {
        None => patch.add(&["metadata", "annotations"], |out| {
            out.push('{');
            push_string(out, INJECTED);
            out.push_str(":\"true\"}");
        }),
        Some(_) => patch.add(&["metadata", "annotations", INJECTED], |out| {
            out.push_str("\"true\"");
        }),
    }
    if sidecar && request.signal.is_some() {
        match spec.share_process_namespace {
            Some(true) => {}
            Some(false) => {
                return Err(Error::invalid(
                    key("signal"),
                    "needs shareProcessNamespace: true so that the sidecar sees the application's processes, but the pod sets it to false",
                ));
            }
            None => patch.add(&["spec", "shareProcessNamespace"], |out| {
                out.push_str("true");
            }),
        }
    }

    let tmpfs = (!adopt_volume).then(|| tmpfs_volume(request, defaults));
    let ca = request
        .ca_cert
        .as_ref()
        .map(|ca| Json::of(&ca_volume(ca)).into_string());
    let volumes = [tmpfs.as_deref(), ca.as_deref()];
    push_all(
        &mut patch,
        &["spec", "volumes"],
        spec.volumes.is_some(),
        volumes.iter().flatten().copied(),
    );

    // Mounts before our init containers go in, so that init container indexes are the pod's.
    let mut index = itoa::Buffer::new();
    for target in &targets {
        let (list, i, container) = match *target {
            Target::App(i) => ("containers", i, &spec.containers[i]),
            Target::Init(i) => ("initContainers", i, &init_containers[i]),
        };
        let mounts = container.volume_mounts.as_deref().unwrap_or_default();
        if mounts.iter().any(|m| m.name == VOLUME) {
            continue;
        }
        push_all(
            &mut patch,
            &["spec", list, index.format(i), "volumeMounts"],
            container.volume_mounts.is_some(),
            std::iter::once(MOUNT),
        );
    }

    let init = |out: &mut String| build.container(out, Keeper::Init);
    let native_sidecar = |out: &mut String| build.container(out, Keeper::NativeSidecar);
    match (&spec.init_containers, request.init_first) {
        (Some(_), true) => {
            patch.add(&["spec", "initContainers", "0"], init);
            if native {
                patch.add(&["spec", "initContainers", "1"], native_sidecar);
            }
        }
        (Some(_), false) => {
            patch.append(&["spec", "initContainers"], init);
            if native {
                patch.append(&["spec", "initContainers"], native_sidecar);
            }
        }
        (None, _) => patch.add(&["spec", "initContainers"], |out| {
            out.push('[');
            init(out);
            if native {
                out.push(',');
                native_sidecar(out);
            }
            out.push(']');
        }),
    }
    if sidecar && !native {
        patch.append(&["spec", "containers"], |out| {
            build.container(out, Keeper::Sidecar);
        });
    }

    Ok(Mutation {
        outcome: Outcome::Injected,
        patch,
        warnings,
        spec: Some(sidecar_spec),
    })
}

/// A container that gets the read-only mount, by its index in its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    App(usize),
    Init(usize),
}

/// The containers named by `keeper.security/containers`, or all of them.
fn select(spec: &PodSpec<'_>, request: &InjectionRequest) -> Result<Vec<Target>> {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let Some(names) = &request.containers else {
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
    request: &InjectionRequest,
    warnings: &mut Vec<String>,
) -> Result<bool> {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    if request.ca_cert.is_some() && volumes.iter().any(|v| v.name == CA_VOLUME) {
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
    if request.volume_size_limit.is_some() {
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

/// Who runs what: the user of the keeper containers and of the containers that read the files.
struct Users {
    /// What the keeper containers set as `runAsUser` and `runAsGroup` (`None` inherits).
    run_as: (Option<i64>, Option<i64>),
    /// The user the keeper containers run as.
    uid: i64,
    /// The effective users of the mounted application containers (`None`: the image decides).
    readers: Vec<Option<i64>>,
    /// The effective users of the pod's regular containers, which a signal may reach.
    signalled: Vec<Option<i64>>,
    fs_group: bool,
}

impl Users {
    fn of(
        spec: &PodSpec<'_>,
        request: &InjectionRequest,
        defaults: &Defaults,
        targets: &[Target],
    ) -> Self {
        let pod = spec.security_context.as_ref();
        let pod_uid = pod.and_then(|s| s.run_as_user);
        // The keeper containers run as the output owner if one is named; else as the pod's
        // user, so that the files belong to the application; else as the image's nonroot user.
        let (run_as, uid) = match (request.output_owner, pod_uid) {
            (Some(owner), _) => ((Some(owner.uid), owner.gid), owner.uid),
            (None, Some(uid)) if uid > 0 => ((None, None), uid),
            _ => (
                (Some(defaults.run_as_user), Some(defaults.run_as_group)),
                defaults.run_as_user,
            ),
        };
        let user = |c: &PodContainer<'_>| {
            c.security_context
                .as_ref()
                .and_then(|s| s.run_as_user)
                .or(pod_uid)
        };
        let init = spec.init_containers.as_deref().unwrap_or_default();
        let mut readers = Vec::new();
        for target in targets {
            match *target {
                Target::App(i) => readers.push(user(&spec.containers[i])),
                Target::Init(i) => readers.push(user(&init[i])),
            }
        }
        // Without a process name the sidecar signals the main process of every other
        // container, mounted or not.
        let signalled = spec.containers.iter().map(user).collect();
        Self {
            run_as,
            uid,
            readers,
            signalled,
            fs_group: pod.and_then(|s| s.fs_group).is_some(),
        }
    }

    /// `0400` when every reader is the owner, `0440` when the pod's `fsGroup` owns the volume
    /// (the kubelet sets it on the tmpfs and every container has it), `0444` otherwise: the
    /// volume is only mounted into this pod's selected containers, and upstream's fixed 0400
    /// left applications of other users unable to read (upstream defect 5).
    fn default_mode(&self) -> FileMode {
        if self.readers.iter().all(|u| *u == Some(self.uid)) {
            FileMode::OWNER_READ
        } else if self.fs_group {
            FileMode::GROUP_READ
        } else {
            FileMode::ALL_READ
        }
    }

    /// Whether the sidecar may signal every mounted container without `CAP_KILL`: kill(2)
    /// needs the same user unless the sender has that capability.
    fn can_signal(&self) -> bool {
        self.signalled.iter().all(|u| *u == Some(self.uid))
    }
}

/// The restricted-profile security context of the keeper containers running as `run_as`
/// (user and group; `None` inherits the pod's), with `CAP_KILL` when `kill`, as JSON (the
/// tests read every keeper container back through k8s-openapi).
fn security_json(run_as: (Option<i64>, Option<i64>), kill: bool) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("{\"allowPrivilegeEscalation\":false,\"capabilities\":{");
    if kill {
        out.push_str("\"add\":[\"KILL\"],");
    }
    out.push_str("\"drop\":[\"ALL\"]},\"readOnlyRootFilesystem\":true");
    if let Some(gid) = run_as.1 {
        out.push_str(",\"runAsGroup\":");
        push_number(&mut out, gid);
    }
    out.push_str(",\"runAsNonRoot\":true");
    if let Some(uid) = run_as.0 {
        out.push_str(",\"runAsUser\":");
        push_number(&mut out, uid);
    }
    out.push_str(",\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}");
    out
}

/// The pod's value if it sets one, else the webhook's.
fn pick<'a>(pod: &'a Option<String>, webhook: &'a Option<String>) -> Option<&'a str> {
    pod.as_deref().or(webhook.as_deref())
}

/// The keeper containers' requests and limits, the webhook's overridden per pod, as the JSON
/// of a `resources` object; `None` when neither sets any.
fn resources(request: &InjectionRequest, defaults: &Defaults) -> Result<Option<String>> {
    let o = &request.resources;
    let d = &defaults.resources;
    let cpu = (
        pick(&o.cpu_request, &d.cpu_request),
        pick(&o.cpu_limit, &d.cpu_limit),
    );
    let memory = (
        pick(&o.memory_request, &d.memory_request),
        pick(&o.memory_limit, &d.memory_limit),
    );
    // The webhook's own values were checked against each other when its configuration was
    // loaded; only a pair with a value from the pod is checked here.
    for (name, (request_value, limit_value), overridden, from_pod) in [
        (
            "cpu",
            cpu,
            o.cpu_request.is_some(),
            o.cpu_request.is_some() || o.cpu_limit.is_some(),
        ),
        (
            "memory",
            memory,
            o.memory_request.is_some(),
            o.memory_request.is_some() || o.memory_limit.is_some(),
        ),
    ] {
        let (Some(r), Some(l), true) = (request_value, limit_value, from_pod) else {
            continue;
        };
        if quantity::parse(r).unwrap_or(0.0) > quantity::parse(l).unwrap_or(f64::INFINITY) {
            let annotation = key(&format!(
                "{name}-{}",
                if overridden { "request" } else { "limit" }
            ));
            return Err(Error::invalid(
                annotation,
                format!(
                    "the {name} request {r} exceeds the {name} limit {l}: expected a request no larger than the limit"
                ),
            ));
        }
    }
    Ok(resources_json(cpu, memory))
}

/// `resources` with `cpu` and `memory` (each request and limit) as JSON; `None` when no value is
/// set.
fn resources_json(
    cpu: (Option<&str>, Option<&str>),
    memory: (Option<&str>, Option<&str>),
) -> Option<String> {
    // k8s-openapi's order: limits before requests, cpu before memory.
    let mut out = String::new();
    for (list, cpu, memory) in [("limits", cpu.1, memory.1), ("requests", cpu.0, memory.0)] {
        if cpu.is_none() && memory.is_none() {
            continue;
        }
        out.push_str(if out.is_empty() { "{\"" } else { ",\"" });
        out.push_str(list);
        out.push_str("\":{");
        if let Some(cpu) = cpu {
            out.push_str("\"cpu\":");
            push_string(&mut out, cpu);
        }
        if let Some(memory) = memory {
            out.push_str(if cpu.is_some() {
                ",\"memory\":"
            } else {
                "\"memory\":"
            });
            push_string(&mut out, memory);
        }
        out.push('}');
    }
    if out.is_empty() {
        return None;
    }
    out.push('}');
    Some(out)
}

/// The read-only mount of [`VOLUME`] at [`MOUNT_PATH`] in the application's containers, as
/// JSON (`tests::the_mount_is_volume_at_mount_path` holds it to those constants).
const MOUNT: &str = r#"{"name":"keeper-secrets","mountPath":"/keeper/secrets","readOnly":true}"#;

/// The shared tmpfs volume, as JSON.
fn tmpfs_volume(request: &InjectionRequest, defaults: &Defaults) -> String {
    let mut out = String::with_capacity(96);
    out.push_str("{\"name\":");
    push_string(&mut out, VOLUME);
    out.push_str(",\"emptyDir\":{\"medium\":\"Memory\"");
    let size = request.volume_size_limit.as_deref();
    if let Some(size) = size.or(defaults.volume_size_limit.as_deref()) {
        out.push_str(",\"sizeLimit\":");
        push_string(&mut out, size);
    }
    out.push_str("}}");
    out
}

fn ca_volume(ca: &CaCert) -> Volume {
    let items = |key: &str| {
        Some(vec![KeyToPath {
            key: key.to_owned(),
            path: "ca.crt".to_owned(),
            mode: None,
        }])
    };
    match ca {
        CaCert::Secret { name, key } => Volume {
            name: CA_VOLUME.to_owned(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(name.clone()),
                items: items(key),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
        CaCert::ConfigMap { name, key } => Volume {
            name: CA_VOLUME.to_owned(),
            config_map: Some(ConfigMapVolumeSource {
                name: name.clone(),
                items: items(key),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
    }
}

/// What the keeper containers take from the webhook's defaults alone, as JSON text written
/// once per [`Defaults`] (the webhook keeps them for its lifetime in an
/// [`Injector`](crate::Injector)): an admission copies these pieces instead of writing them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fragments {
    /// `,"image":…,"imagePullPolicy":…,"args":["`; the mode argument follows.
    image: String,
    /// The end of the mode argument, the extra arguments and the start of the spec's env
    /// entry; the spec literal follows.
    args: String,
    /// The pod name and namespace env entries, the end of `env` and the start of
    /// `volumeMounts` with the secrets mount.
    env: String,
    /// The sidecar's `ports`, `livenessProbe` and `readinessProbe`.
    sidecar: String,
    /// `resources` from the defaults alone, for the pods that override none of them.
    resources: Option<String>,
    /// `securityContext` for the defaults' user and group, without `CAP_KILL`.
    security: String,
}

impl Fragments {
    pub(crate) fn of(defaults: &Defaults) -> Self {
        let mut image = String::from(",\"image\":");
        push_string(&mut image, &defaults.image);
        if let Some(policy) = &defaults.image_pull_policy {
            image.push_str(",\"imagePullPolicy\":");
            push_string(&mut image, policy);
        }
        image.push_str(",\"args\":[\"");
        let mut args = String::from("\"");
        for arg in &defaults.args {
            args.push(',');
            push_string(&mut args, arg);
        }
        args.push_str("],\"env\":[{\"name\":\"");
        args.push_str(spec::SPEC_ENV);
        args.push_str("\",\"value\":");
        let mut env = String::new();
        for (env_name, field) in [
            (spec::POD_NAME_ENV, "metadata.name"),
            (spec::POD_NAMESPACE_ENV, "metadata.namespace"),
        ] {
            env.push_str(",{\"name\":\"");
            env.push_str(env_name);
            env.push_str("\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"");
            env.push_str(field);
            env.push_str("\"}}}");
        }
        env.push_str("],\"volumeMounts\":[{\"name\":\"");
        env.push_str(VOLUME);
        env.push_str("\",\"mountPath\":\"");
        env.push_str(MOUNT_PATH);
        env.push_str("\"}");
        let mut port = itoa::Buffer::new();
        let port = port.format(defaults.health_port);
        let mut sidecar = String::from(",\"ports\":[{\"name\":\"");
        sidecar.push_str(METRICS_PORT_NAME);
        sidecar.push_str("\",\"containerPort\":");
        sidecar.push_str(port);
        sidecar.push_str(",\"protocol\":\"TCP\"}]");
        for (probe, path) in [("livenessProbe", "/health"), ("readinessProbe", "/ready")] {
            sidecar.push_str(",\"");
            sidecar.push_str(probe);
            sidecar.push_str("\":{\"httpGet\":{\"path\":\"");
            sidecar.push_str(path);
            sidecar.push_str("\",\"port\":");
            sidecar.push_str(port);
            sidecar.push_str("},\"periodSeconds\":10}");
        }
        let d = &defaults.resources;
        Self {
            image,
            args,
            env,
            sidecar,
            resources: resources_json(
                (d.cpu_request.as_deref(), d.cpu_limit.as_deref()),
                (d.memory_request.as_deref(), d.memory_limit.as_deref()),
            ),
            security: security_json(
                (Some(defaults.run_as_user), Some(defaults.run_as_group)),
                false,
            ),
        }
    }
}

/// What the two keeper containers of one pod share, written once: the containers are written
/// as JSON directly, so that the spec (the largest string) is escaped once per admission
/// rather than once per container, and no k8s-openapi tree is built, serialised and dropped
/// per request. `tests::containers_match_k8s_openapi` checks the result against
/// k8s-openapi's own serialisation of the same containers.
struct Build<'a> {
    request: &'a InjectionRequest,
    fragments: &'a Fragments,
    /// The spec JSON, as a JSON string literal (quoted and escaped).
    spec_literal: String,
    ksm_config: Option<String>,
    /// `resources` and `securityContext`, as JSON objects.
    resources: Option<Cow<'a, str>>,
    security: Cow<'a, str>,
}

/// Which keeper container to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keeper {
    Init,
    /// The classic sidecar, a regular container.
    Sidecar,
    /// The native sidecar: an init container with `restartPolicy: Always`.
    NativeSidecar,
}

impl Build<'_> {
    /// Appends the container as JSON text.
    fn container(&self, out: &mut String, keeper: Keeper) {
        let (name, mode) = match keeper {
            Keeper::Init => (INIT_CONTAINER, spec::ARG_MODE_INIT),
            Keeper::Sidecar | Keeper::NativeSidecar => (SIDECAR_CONTAINER, spec::ARG_MODE_SIDECAR),
        };
        let f = self.fragments;
        out.push_str("{\"name\":\"");
        out.push_str(name);
        out.push('"');
        out.push_str(&f.image);
        out.push_str(mode);
        out.push_str(&f.args);
        out.push_str(&self.spec_literal);
        out.push('}');
        if let Some(secret) = &self.ksm_config {
            out.push_str(",{\"name\":\"");
            out.push_str(spec::KSM_CONFIG_ENV);
            out.push_str("\",\"valueFrom\":{\"secretKeyRef\":{\"name\":");
            push_string(out, secret);
            out.push_str(",\"key\":\"config\"}}}");
        }
        out.push_str(&f.env);
        if self.request.ca_cert.is_some() {
            out.push_str(",{\"name\":\"");
            out.push_str(CA_VOLUME);
            out.push_str("\",\"mountPath\":\"");
            out.push_str(CA_MOUNT_PATH);
            out.push_str("\",\"readOnly\":true}");
        }
        out.push(']');
        if let Some(resources) = &self.resources {
            out.push_str(",\"resources\":");
            out.push_str(resources);
        }
        out.push_str(",\"securityContext\":");
        out.push_str(&self.security);
        // The init container's last log lines become its termination message, so that
        // `kubectl describe pod` shows why secrets could not be fetched.
        out.push_str(",\"terminationMessagePolicy\":\"FallbackToLogsOnError\"");
        if keeper != Keeper::Init {
            out.push_str(&f.sidecar);
        }
        if keeper == Keeper::NativeSidecar {
            out.push_str(",\"restartPolicy\":\"Always\"");
        }
        out.push('}');
    }
}

/// Adds `items` (JSON texts) to the array at `tokens`: the whole array when it is absent, else
/// one element at a time at its end, so that nothing already there is replaced.
fn push_all<'i>(
    patch: &mut Patch,
    tokens: &[&str],
    exists: bool,
    items: impl Iterator<Item = &'i str> + Clone,
) {
    if items.clone().next().is_none() {
        return;
    }
    if exists {
        for item in items {
            patch.append(tokens, |out| out.push_str(item));
        }
    } else {
        patch.add(tokens, |out| {
            out.push('[');
            for (i, item) in items.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(item);
            }
            out.push(']');
        });
    }
}

#[cfg(test)]
mod tests;
