//! The `keeper.security/*` pod annotations, parsed into a typed [`InjectionRequest`].
//!
//! The set is the upstream injector's (`pkg/config/annotations.go` of
//! Keeper-Security/keeper-k8s-injector v0.10.0) plus a few of our own (marked *ours*).
//! Every key below is after `keeper.security/`.
//!
//! | annotation | value | effect |
//! |---|---|---|
//! | `inject` | `true`/`false` | opt in |
//! | `ksm-config` (old name `auth-secret`) | Secret name | its key `config` reaches the keeper containers as [`crate::spec::KSM_CONFIG_ENV`] (auth method `secret` only) |
//! | `auth-method` | `secret`, `aws-secrets-manager`, `gcp-secret-manager`, `azure-key-vault` | where the KSM configuration comes from; `oidc` is refused |
//! | `aws-secret-id`, `aws-region`, `gcp-secret-id`, `azure-vault-name`, `azure-secret-name` | | the cloud secret holding the KSM configuration |
//! | `secret` | title or UID | `/keeper/secrets/<title>.json` |
//! | `secrets` | comma list | one file each |
//! | `secret-<name>` | `/path`, `record[:/path]`, `record[field][:/path]`, `Folder/record[:/path]`, `[keeper://]record/<selector>/...[:/path]` | one file |
//! | `file-<name>` | `record:file[:/path]`, `file`, `keeper://record/file/<file>[:/path]` | a file attachment |
//! | `folder` / `folder-uid`, `folder-path` | folder path / UID, output directory | every record of the folder |
//! | `config` | YAML `secrets:` and `folders:` | level 5; `mode` per secret is ours |
//! | `format`, `template` | | rendering of whole records chosen by the annotations above |
//! | `env-prefix` | | key prefix of `env` files (environment variables are never injected) |
//! | `refresh-interval` | duration, at least 10s | sidecar refresh |
//! | `init-only`, `fail-on-error`, `strict-lookup` | `true`/`false` | as upstream |
//! | `signal` (+ `signal-process`, ours) | `SIGHUP`, ... | sent by the sidecar after files change; shares the process namespace |
//! | `ca-cert-secret` / `ca-cert-configmap`, `ca-cert-key` | | extra CA for Keeper |
//! | `native-sidecar`, `init-first` (ours) | `true`/`false` | sidecar as an init container with `restartPolicy: Always`; our init container before the pod's own |
//! | `containers` (ours) | comma list | which containers get the read-only mount (default all) |
//! | `output-mode`, `output-owner` (ours) | `0440`, `1000[:3000]` | file mode; the user the keeper containers run as, and so the files' owner |
//! | `cpu-request`, `cpu-limit`, `memory-request`, `memory-limit`, `volume-size-limit` (ours) | quantities | keeper container resources, tmpfs `sizeLimit` |
//! | `inject-env-vars`, `inject-as-k8s-secret`, `k8s-secret-*` | | refused (see below) |
//! | `injected`, `sidecar-spec` | | set by the webhook: the marker, and the spec the keeper containers read |
//!
//! Parsing is strict where upstream was lenient: a boolean is `true` or `false`, a value that
//! does not parse is an error naming the annotation and the expected form, and an annotation
//! that would do nothing (an unknown key, or one that has no effect with the others) becomes an
//! admission warning instead of being ignored.
//! Modes that upstream implements by calling Keeper or writing Kubernetes objects during
//! admission are refused, because admission must have no side effects and secret values must
//! never be written into a pod spec.

//!
//! The modules follow the reading: [`parser`] holds the annotations and reads single values,
//! `auth` the KSM configuration's source, `secrets` the files and folders that annotations
//! select, `config` the `keeper.security/config` document, `paths` the output paths, and
//! `names` the checks of Kubernetes names and the suggestions for unknown keys.

use std::collections::BTreeMap;

use bulwark_config::Duration;
use bulwark_sidecar_spec::{Auth, FileMode, Folder, Secret, Signal};

use crate::{Error, Result};

mod auth;
mod config;
mod names;
mod parser;
mod paths;
mod secrets;

pub(crate) use names::is_dns_subdomain;
use parser::Parser;
use paths::Outputs;

/// The prefix of every annotation of this crate.
pub const PREFIX: &str = "keeper.security/";

/// `"true"` asks for injection.
pub const INJECT: &str = "keeper.security/inject";

/// Set to `"true"` by the webhook on every pod it injected; a pod carrying it is never
/// injected again.
pub const INJECTED: &str = "keeper.security/injected";

/// The shortest refresh interval: the Keeper backend throttles a client above 100 requests per
/// 10 seconds (`keeper_globals.py`, KSM-876), and a pod's refresh is at least one request.
const MIN_REFRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// How many unknown keys get a warning of their own: warnings are for people, and a pod with
/// thousands of unknown keys must not cost thousands of suggestions.
const MAX_UNKNOWN_WARNINGS: usize = 20;

/// Every annotation name (after [`PREFIX`]) that is read here, for unknown-key warnings and
/// their suggestions. `secret-<name>`, `file-<name>` and `k8s-secret-*` are matched by prefix.
pub const KNOWN: &[&str] = &[
    "inject",
    "injected",
    "sidecar-spec",
    "ksm-config",
    "auth-secret",
    "auth-method",
    "secret",
    "secrets",
    "folder",
    "folder-uid",
    "folder-path",
    "config",
    "format",
    "template",
    "refresh-interval",
    "init-only",
    "fail-on-error",
    "strict-lookup",
    "signal",
    "signal-process",
    "inject-env-vars",
    "env-prefix",
    "inject-as-k8s-secret",
    "ca-cert-secret",
    "ca-cert-configmap",
    "ca-cert-key",
    "aws-secret-id",
    "aws-region",
    "gcp-secret-id",
    "azure-vault-name",
    "azure-secret-name",
    "native-sidecar",
    "init-first",
    "containers",
    "output-mode",
    "output-owner",
    "cpu-request",
    "cpu-limit",
    "memory-request",
    "memory-limit",
    "volume-size-limit",
];

/// Why environment-variable mode is refused.
const ENV_VARS_REASON: &str = "it would fetch secrets during admission and write their values into the pod spec, where anyone who can read the pod sees them and etcd stores them; read the files under /keeper/secrets instead (format env gives a file that a shell can source)";

/// Why Kubernetes-Secret mode is refused.
const K8S_SECRET_REASON: &str = "creating Secrets during admission is a side effect (it breaks dry-run and sideEffects: None) and copies secret values into etcd; read the files under /keeper/secrets, or use the External Secrets Operator's Keeper provider for Kubernetes Secrets";

/// Why OIDC is refused.
const OIDC_REASON: &str = "Keeper Secrets Manager has no OIDC login for applications yet; use auth-method secret, aws-secrets-manager, gcp-secret-manager or azure-key-vault";

/// What a pod's annotations ask for, validated but not yet applied to the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionRequest {
    /// Where the KSM configuration comes from.
    pub auth: Auth,
    /// The Secret holding the KSM configuration, for [`Auth::Secret`]; when `None`, the
    /// webhook's default applies.
    pub ksm_config: Option<String>,
    /// One output file each.
    pub secrets: Vec<Secret>,
    /// Whole folders.
    pub folders: Vec<Folder>,
    /// `None` means the webhook's default.
    pub refresh_interval: Option<Duration>,
    /// Only the init container, no sidecar.
    pub init_only: bool,
    /// `None` means the webhook's default.
    pub fail_on_error: Option<bool>,
    pub strict_lookup: bool,
    pub signal: Option<Signal>,
    pub ca_cert: Option<CaCert>,
    /// `None` means the webhook's default.
    pub native_sidecar: Option<bool>,
    /// Whether the init container runs before the pod's own init containers.
    pub init_first: bool,
    /// The containers (and init containers) that get the read-only mount; `None` means all.
    pub containers: Option<Vec<String>>,
    /// `None` means the mode is chosen from the pod's users (see `mutate`).
    pub output_mode: Option<FileMode>,
    /// The user (and group) the keeper containers run as, and so the files' owner.
    pub output_owner: Option<Owner>,
    pub resources: ResourceOverrides,
    /// The tmpfs volume's `sizeLimit`; `None` means the webhook's default.
    pub volume_size_limit: Option<String>,
    /// Admission warnings: unknown keys and annotations without effect.
    pub warnings: Vec<String>,
}

/// Extra CA certificates for Keeper, from a Secret or a ConfigMap in the pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaCert {
    Secret { name: String, key: String },
    ConfigMap { name: String, key: String },
}

/// A numeric user and optional group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: i64,
    pub gid: Option<i64>,
}

/// Per-pod resource overrides for the keeper containers, as Kubernetes quantities.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceOverrides {
    pub cpu_request: Option<String>,
    pub cpu_limit: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
}

/// Parses a pod's annotations: `Ok(None)` when `keeper.security/inject` is absent or `false`.
pub fn parse(annotations: &BTreeMap<String, String>) -> Result<Option<InjectionRequest>> {
    parse_pairs(annotations.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// [`parse`] on annotations given as key and value pairs (keys are unique in a pod), such as
/// the borrowed ones of a [`Pod`](crate::Pod).
pub fn parse_pairs<'a>(
    annotations: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<InjectionRequest>> {
    let mut p = Parser::new(annotations);
    match p.get("inject") {
        None => return Ok(None),
        Some(_) if !p.bool("inject")?.unwrap_or(false) => return Ok(None),
        Some(_) => {}
    }
    p.refuse_side_effects()?;
    p.warn_unknown();

    let (auth, ksm_config) = p.auth()?;
    let mut outputs = Outputs::default();
    p.simple_secrets(&mut outputs)?;
    p.config(&mut outputs)?;
    p.folders(&mut outputs)?;
    if outputs.secrets.is_empty() && outputs.folders.is_empty() {
        return Err(Error::invalid(
            INJECT,
            "injection is enabled but selects nothing: expected at least one of keeper.security/secret, secrets, secret-<name>, file-<name>, folder, folder-uid or config",
        ));
    }
    outputs.check_paths()?;

    let init_only = p.bool("init-only")?.unwrap_or(false);
    let refresh_interval = p.refresh_interval()?;
    let signal = p.signal()?;
    let native_sidecar = p.bool("native-sidecar")?;
    if init_only {
        for (name, present) in [
            ("refresh-interval", refresh_interval.is_some()),
            ("signal", signal.is_some()),
            ("native-sidecar", native_sidecar.is_some()),
        ] {
            if present {
                p.warn(
                    name,
                    "has no effect with keeper.security/init-only: \"true\" (there is no sidecar)",
                );
            }
        }
    }
    let request = InjectionRequest {
        auth,
        ksm_config,
        secrets: outputs.secrets,
        folders: outputs.folders,
        refresh_interval,
        init_only,
        fail_on_error: p.bool("fail-on-error")?,
        strict_lookup: p.bool("strict-lookup")?.unwrap_or(false),
        signal,
        ca_cert: p.ca_cert()?,
        native_sidecar,
        init_first: p.bool("init-first")?.unwrap_or(true),
        containers: p.containers()?,
        output_mode: p.output_mode()?,
        output_owner: p.output_owner()?,
        resources: ResourceOverrides {
            cpu_request: p.quantity("cpu-request")?,
            cpu_limit: p.quantity("cpu-limit")?,
            memory_request: p.quantity("memory-request")?,
            memory_limit: p.quantity("memory-limit")?,
        },
        volume_size_limit: p.quantity("volume-size-limit")?,
        warnings: p.into_warnings(),
    };
    Ok(Some(request))
}

/// The full key of annotation `name`.
pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

#[cfg(test)]
mod tests;
