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
//! | `injected` | | the marker the webhook sets |
//!
//! Parsing is strict where upstream was lenient: a boolean is `true` or `false`, a value that
//! does not parse is an error naming the annotation and the expected form, and an annotation
//! that would do nothing (an unknown key, or one that has no effect with the others) becomes an
//! admission warning instead of being ignored.
//! Modes that upstream implements by calling Keeper or writing Kubernetes objects during
//! admission are refused, because admission must have no side effects and secret values must
//! never be written into a pod spec.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Bound;

use bulwark_config::Duration;
use serde::Deserialize;

use crate::notation::{self, Reference};
use crate::spec::{
    Auth, FileMode, Folder, FolderRef, Format, RecordRef, Secret, Signal, SignalName, Source,
};
use crate::{Error, MOUNT_PATH, Result, quantity};

/// The prefix of every annotation of this crate.
pub const PREFIX: &str = "keeper.security/";

/// The full key of annotation `$name` as a literal, for lookups on the admission path
/// ([`key`] allocates; `tests::the_key_macro_is_key` keeps the two equal).
macro_rules! key {
    ($name:literal) => {
        concat!("keeper.security/", $name)
    };
}

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
const KNOWN: &[&str] = &[
    "inject",
    "injected",
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
    let mut ours: Vec<(&str, &str)> = annotations
        .into_iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(PREFIX)?, v)))
        .collect();
    ours.sort_unstable_by_key(|(k, _)| *k);
    let mut p = Parser {
        ours,
        warnings: Vec::new(),
    };
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
        warnings: p.warnings,
    };
    Ok(Some(request))
}

/// The full key of annotation `name`.
pub fn key(name: &str) -> String {
    format!("{PREFIX}{name}")
}

/// Reads one pod's annotations, collecting warnings.
struct Parser<'a> {
    /// Our annotations by name without the prefix, so that lookups build no keys, sorted by
    /// name. A pod has a few of them: comparing lengths first finds one faster than a map.
    ours: Vec<(&'a str, &'a str)>,
    warnings: Vec<String>,
}

/// The output files and folders found so far, and beside them the annotation each came from
/// (for errors only; the request takes the outputs as they are).
#[derive(Default)]
struct Outputs {
    secrets: Vec<Secret>,
    secret_origins: Vec<Cow<'static, str>>,
    folders: Vec<Folder>,
    folder_origins: Vec<Cow<'static, str>>,
}

/// The `keeper.security/config` document (level 5 of the upstream docs).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDoc {
    #[serde(default)]
    secrets: Vec<ConfigSecret>,
    #[serde(default)]
    folders: Vec<ConfigFolder>,
}

/// One entry of `secrets:` in `keeper.security/config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigSecret {
    record: Option<String>,
    notation: Option<String>,
    path: Option<String>,
    #[serde(default)]
    fields: Vec<String>,
    format: Option<String>,
    template: Option<String>,
    file: Option<String>,
    file_name: Option<String>,
    /// Ours: this file's mode.
    mode: Option<String>,
    env_prefix: Option<String>,
    inject_as_env_vars: Option<bool>,
    inject_as_k8s_secret: Option<bool>,
    k8s_secret_name: Option<String>,
    k8s_secret_keys: Option<BTreeMap<String, String>>,
    k8s_secret_type: Option<String>,
}

/// One entry of `folders:` in `keeper.security/config`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ConfigFolder {
    uid: Option<String>,
    path: Option<String>,
    folder_path: Option<String>,
    output_path: Option<String>,
    inject_as_k8s_secret: Option<bool>,
    k8s_secret_name_prefix: Option<String>,
}

impl<'a> Parser<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.ours.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn warn(&mut self, name: &str, message: &str) {
        self.warnings.push(format!("{PREFIX}{name}: {message}"));
    }

    /// A boolean annotation: `true` or `false` in any case, as upstream compares lowercased.
    fn bool(&self, name: &str) -> Result<Option<bool>> {
        let Some(value) = self.get(name) else {
            return Ok(None);
        };
        match value.trim() {
            v if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            v if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            _ => Err(Error::invalid(
                key(name),
                format!("invalid value {value:?}: expected \"true\" or \"false\""),
            )),
        }
    }

    /// A non-empty, trimmed string annotation.
    fn string(&self, name: &str, expected: &str) -> Result<Option<String>> {
        Ok(self.trimmed(name, || expected)?.map(str::to_owned))
    }

    /// The trimmed value of annotation `name`, refused when empty; `expected` describes the
    /// form for the error and is only built for one.
    fn trimmed<E: std::fmt::Display>(
        &self,
        name: &str,
        expected: impl FnOnce() -> E,
    ) -> Result<Option<&'a str>> {
        match self.get(name).map(str::trim) {
            None => Ok(None),
            Some("") => Err(Error::invalid(
                key(name),
                format!("empty value: expected {}", expected()),
            )),
            Some(value) => Ok(Some(value)),
        }
    }

    /// The name of a Secret or ConfigMap: a DNS subdomain.
    fn object_name(&self, name: &str, what: &str) -> Result<Option<String>> {
        let expected = || {
            format!(
                "the name of a {what} in the pod's namespace (lowercase letters, digits, '-' and '.')"
            )
        };
        let Some(value) = self.trimmed(name, expected)? else {
            return Ok(None);
        };
        if !is_dns_subdomain(value) {
            return Err(Error::invalid(
                key(name),
                format!("invalid name {value:?}: expected {}", expected()),
            ));
        }
        Ok(Some(value.to_owned()))
    }

    /// Refuses the annotations whose upstream behaviour has side effects in admission.
    fn refuse_side_effects(&self) -> Result<()> {
        for name in ["inject-env-vars", "inject-as-k8s-secret"] {
            if self.bool(name)? == Some(true) {
                let reason = if name == "inject-env-vars" {
                    ENV_VARS_REASON
                } else {
                    K8S_SECRET_REASON
                };
                return Err(Error::Unsupported {
                    annotation: key(name),
                    reason,
                });
            }
        }
        if let Some((k, _)) = self.ours.iter().find(|(k, _)| k.starts_with("k8s-secret-")) {
            return Err(Error::Unsupported {
                annotation: key(k),
                reason: K8S_SECRET_REASON,
            });
        }
        Ok(())
    }

    /// Warns about every `keeper.security/*` key that nothing reads.
    fn warn_unknown(&mut self) {
        let unknown: Vec<&str> = self
            .ours
            .iter()
            .map(|(k, _)| *k)
            .filter(|name| {
                let dynamic = ["secret-", "file-"]
                    .iter()
                    .any(|p| name.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
                !dynamic && !KNOWN.contains(name)
            })
            .collect();
        for name in unknown.iter().take(MAX_UNKNOWN_WARNINGS) {
            let message = match suggest(name) {
                Some(known) => {
                    format!("unknown annotation, ignored (did you mean {PREFIX}{known}?)")
                }
                None => "unknown annotation, ignored".to_owned(),
            };
            self.warn(name, &message);
        }
        if let Some(more) = unknown
            .len()
            .checked_sub(MAX_UNKNOWN_WARNINGS)
            .filter(|n| *n > 0)
        {
            self.warnings.push(format!(
                "{more} more unknown {PREFIX}* annotations, ignored"
            ));
        }
    }

    /// `auth-method`, `ksm-config` (and its old name `auth-secret`) and the cloud fields.
    fn auth(&mut self) -> Result<(Auth, Option<String>)> {
        let method = self.get("auth-method").map(str::trim).unwrap_or("secret");
        let cloud = |method: &str| -> &'static [&'static str] {
            match method {
                "aws-secrets-manager" => &["aws-secret-id", "aws-region"],
                "gcp-secret-manager" => &["gcp-secret-id"],
                "azure-key-vault" => &["azure-vault-name", "azure-secret-name"],
                _ => &[],
            }
        };
        match method {
            "secret" | "aws-secrets-manager" | "gcp-secret-manager" | "azure-key-vault" => {}
            "oidc" => {
                return Err(Error::Unsupported {
                    annotation: key("auth-method"),
                    reason: OIDC_REASON,
                });
            }
            other => {
                return Err(Error::invalid(
                    key("auth-method"),
                    format!(
                        "invalid value {other:?}: expected secret, aws-secrets-manager, gcp-secret-manager or azure-key-vault"
                    ),
                ));
            }
        }
        for other in [
            "aws-secrets-manager",
            "gcp-secret-manager",
            "azure-key-vault",
        ] {
            if other == method {
                continue;
            }
            if let Some(name) = cloud(other).iter().find(|n| self.get(n).is_some()) {
                return Err(Error::invalid(
                    key(name),
                    format!(
                        "only used with keeper.security/auth-method: {other}, but the auth method is {method}"
                    ),
                ));
            }
        }
        let ksm_config = self.object_name("ksm-config", "Secret")?;
        let legacy = self.object_name("auth-secret", "Secret")?;
        let ksm_config = match (ksm_config, legacy) {
            (Some(new), Some(old)) if new != old => {
                return Err(Error::invalid(
                    key("auth-secret"),
                    format!(
                        "names Secret {old:?} but keeper.security/ksm-config names {new:?}: remove the old auth-secret annotation"
                    ),
                ));
            }
            (Some(new), _) => Some(new),
            (None, Some(old)) => {
                self.warn(
                    "auth-secret",
                    "deprecated since upstream 0.10.0: use keeper.security/ksm-config",
                );
                Some(old)
            }
            (None, None) => None,
        };
        if method != "secret" && ksm_config.is_some() {
            return Err(Error::invalid(
                key("ksm-config"),
                format!(
                    "only used with keeper.security/auth-method: secret, but the auth method is {method}, which reads the KSM configuration from the cloud provider"
                ),
            ));
        }
        let required = |p: &Self, name: &str, expected: &str| -> Result<String> {
            p.string(name, expected)?.ok_or_else(|| {
                Error::invalid(
                    key(name),
                    format!(
                        "required with keeper.security/auth-method: {method}: expected {expected}"
                    ),
                )
            })
        };
        let auth = match method {
            "aws-secrets-manager" => Auth::AwsSecretsManager {
                secret_id: required(
                    self,
                    "aws-secret-id",
                    "the name or ARN of the AWS secret holding the KSM configuration",
                )?,
                region: self.string("aws-region", "an AWS region such as us-west-2")?,
            },
            "gcp-secret-manager" => {
                let id = required(
                    self,
                    "gcp-secret-id",
                    "projects/<project>/secrets/<secret>/versions/<version>",
                )?;
                if !is_gcp_secret_id(&id) {
                    return Err(Error::invalid(
                        key("gcp-secret-id"),
                        format!(
                            "invalid secret {id:?}: expected projects/<project>/secrets/<secret>/versions/<version>"
                        ),
                    ));
                }
                Auth::GcpSecretManager { secret_id: id }
            }
            "azure-key-vault" => {
                let vault = required(
                    self,
                    "azure-vault-name",
                    "a Key Vault name (3 to 24 letters, digits and '-')",
                )?;
                if !(3..=24).contains(&vault.len())
                    || !vault
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(Error::invalid(
                        key("azure-vault-name"),
                        format!(
                            "invalid vault name {vault:?}: expected 3 to 24 letters, digits and '-'"
                        ),
                    ));
                }
                let secret = required(
                    self,
                    "azure-secret-name",
                    "a Key Vault secret name (letters, digits and '-')",
                )?;
                if secret.len() > 127
                    || !secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(Error::invalid(
                        key("azure-secret-name"),
                        format!(
                            "invalid secret name {secret:?}: expected up to 127 letters, digits and '-'"
                        ),
                    ));
                }
                Auth::AzureKeyVault {
                    vault_name: vault,
                    secret_name: secret,
                }
            }
            _ => Auth::Secret,
        };
        Ok((auth, ksm_config))
    }

    /// The annotation-level rendering of whole records: `format` or `template`.
    fn default_render(&self) -> Result<(Format, Option<String>)> {
        let format = match self.get("format").map(str::trim) {
            None => None,
            Some(f) => Some(f.parse::<Format>().map_err(|()| {
                Error::invalid(
                    key("format"),
                    format!(
                        "invalid format {f:?}: expected json, env, properties, yaml, ini or raw"
                    ),
                )
            })?),
        };
        let template = self.string("template", "a template")?;
        match (format, template) {
            (Some(_), Some(_)) => Err(Error::invalid(
                key("template"),
                "set keeper.security/format or keeper.security/template, not both",
            )),
            (_, Some(t)) => Ok((Format::Template, Some(t))),
            (f, None) => Ok((f.unwrap_or(Format::Json), None)),
        }
    }

    /// `secret`, `secrets`, `secret-<name>` and `file-<name>` (levels 1 to 4 upstream).
    fn simple_secrets(&mut self, out: &mut Outputs) -> Result<()> {
        let (format, template) = self.default_render()?;
        let env_prefix = self.string(
            "env-prefix",
            "a prefix for the keys of env-format files, such as DB_",
        )?;
        let mut whole_records = 0;
        let whole = |origin: Cow<'static, str>, record: RecordRef, path: String| {
            let secret = Secret {
                path,
                source: Source::Record {
                    record,
                    fields: Vec::new(),
                },
                format,
                template: template.clone(),
                env_prefix: env_prefix.clone().filter(|_| format == Format::Env),
                mode: None,
            };
            (origin, secret)
        };

        let mut titles = Vec::new();
        if let Some(title) = self.string("secret", "a record title or UID")? {
            titles.push((key!("secret"), title));
        }
        if let Some(list) = self.get("secrets") {
            let before = titles.len();
            titles.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| (key!("secrets"), t.to_owned())),
            );
            if titles.len() == before {
                return Err(Error::invalid(
                    key("secrets"),
                    "no record named: expected a comma-separated list of record titles or UIDs",
                ));
            }
        }
        for (origin, title) in titles {
            let path = default_output_path(&title, true, format.extension());
            let record = RecordRef {
                folder: Vec::new(),
                name: title,
            };
            out.push_secret(whole(Cow::Borrowed(origin), record, path));
            whole_records += 1;
        }

        for &(k, value) in &self.ours {
            let Some(name) = k.strip_prefix("secret-") else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let k = key(k);
            let (reference, path) = secret_value(&k, name, value)?;
            let default_path = |ext: &str| default_output_path(name, true, ext);
            let secret = match reference {
                Reference::Record(record) => {
                    whole_records += 1;
                    let path = path.unwrap_or_else(|| default_path(format.extension()));
                    whole(Cow::Owned(k.clone()), record, path)
                }
                reference => (
                    Cow::Owned(k.clone()),
                    single_value(reference, path.unwrap_or_else(|| default_path(""))),
                ),
            };
            out.push_secret(secret);
        }

        for &(k, value) in &self.ours {
            let Some(name) = k.strip_prefix("file-") else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let k = key(k);
            let (record, file, path) = file_value(&k, name, value)?;
            let path = path.unwrap_or_else(|| default_output_path(&file, false, ""));
            out.push_secret((
                Cow::Owned(k),
                Secret {
                    path,
                    source: Source::File { record, file },
                    format: Format::Raw,
                    template: None,
                    env_prefix: None,
                    mode: None,
                },
            ));
        }

        if whole_records == 0 {
            for name in ["format", "template"] {
                if self.get(name).is_some() {
                    self.warn(name, "has no effect: it applies to whole records selected by keeper.security/secret, secrets or secret-<name>");
                }
            }
        }
        if env_prefix.is_some() && format != Format::Env {
            self.warn("env-prefix", "has no effect unless keeper.security/format is env (it prefixes the keys of env files; environment variables are not injected)");
        }
        Ok(())
    }

    /// `keeper.security/config`, the YAML document of level 5 upstream.
    fn config(&mut self, out: &mut Outputs) -> Result<()> {
        let Some(text) = self.get("config") else {
            return Ok(());
        };
        let config = key("config");
        let doc: ConfigDoc = serde_saphyr::from_str(text).map_err(|e| {
            Error::invalid(
                &config,
                format!("invalid YAML: {}; expected secrets: [{{record, path, fields, format, template, file}}] and folders: [{{uid or path, outputPath}}]", first_line(&e.to_string())),
            )
        })?;
        for (i, s) in doc.secrets.into_iter().enumerate() {
            let origin = format!("{config} (secrets[{i}])");
            let secret = config_secret(&origin, &config, i, s, &mut self.warnings)?;
            out.push_secret((Cow::Owned(origin), secret));
        }
        for (i, f) in doc.folders.into_iter().enumerate() {
            let origin = format!("{config} (folders[{i}])");
            let at = |field: &str| format!("{config} (folders[{i}].{field})");
            if f.inject_as_k8s_secret == Some(true) {
                return Err(Error::Unsupported {
                    annotation: at("injectAsK8sSecret"),
                    reason: K8S_SECRET_REASON,
                });
            }
            if f.k8s_secret_name_prefix.is_some() {
                return Err(Error::Unsupported {
                    annotation: at("k8sSecretNamePrefix"),
                    reason: K8S_SECRET_REASON,
                });
            }
            let folder = match (f.uid, f.path.or(f.folder_path)) {
                (Some(uid), None) => FolderRef::Uid(folder_uid(&origin, &uid)?),
                (None, Some(path)) => FolderRef::Path(
                    notation::folder_path(&path)
                        .map_err(|m| Error::invalid(&origin, format!("path {path:?}: {m}")))?,
                ),
                _ => {
                    return Err(Error::invalid(
                        origin,
                        "expected exactly one of uid and path (or its alias folderPath)",
                    ));
                }
            };
            let output_dir = match f.output_path {
                Some(dir) => output_dir(&at("outputPath"), &dir)?,
                None => MOUNT_PATH.to_owned(),
            };
            out.push_folder((Cow::Owned(origin), Folder { folder, output_dir }));
        }
        Ok(())
    }

    /// `folder`, `folder-uid` and `folder-path`.
    fn folders(&mut self, out: &mut Outputs) -> Result<()> {
        let path = self.string("folder", "a folder path such as Production/Databases")?;
        let uid = self.string("folder-uid", "a 22-character folder UID")?;
        let folder = match (path, uid) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    key("folder-uid"),
                    "set keeper.security/folder or keeper.security/folder-uid, not both",
                ));
            }
            (Some(path), None) => FolderRef::Path(notation::folder_path(&path).map_err(|m| {
                Error::invalid(key("folder"), format!("invalid folder path {path:?}: {m}"))
            })?),
            (None, Some(uid)) => FolderRef::Uid(folder_uid(&key("folder-uid"), &uid)?),
            (None, None) => {
                if self.get("folder-path").is_some() {
                    self.warn("folder-path", "has no effect without keeper.security/folder or keeper.security/folder-uid");
                }
                return Ok(());
            }
        };
        let output_dir = match self.get("folder-path") {
            Some(dir) => output_dir(&key("folder-path"), dir.trim())?,
            None => MOUNT_PATH.to_owned(),
        };
        let origin = key(if matches!(folder, FolderRef::Uid(_)) {
            "folder-uid"
        } else {
            "folder"
        });
        out.push_folder((Cow::Owned(origin), Folder { folder, output_dir }));
        Ok(())
    }

    fn refresh_interval(&self) -> Result<Option<Duration>> {
        let Some(value) = self.get("refresh-interval") else {
            return Ok(None);
        };
        let interval = value
            .trim()
            .parse::<Duration>()
            .map_err(|e| Error::invalid(key("refresh-interval"), e.to_string()))?;
        if interval.get() < MIN_REFRESH {
            return Err(Error::invalid(
                key("refresh-interval"),
                format!(
                    "{interval} is too short: expected at least 10s, since Keeper throttles clients that poll faster"
                ),
            ));
        }
        Ok(Some(interval))
    }

    fn signal(&mut self) -> Result<Option<Signal>> {
        let process = match self.string("signal-process", "a process name")? {
            Some(name)
                if name.len() > 15 || name.contains('/') || name.chars().any(char::is_control) =>
            {
                return Err(Error::invalid(
                    key("signal-process"),
                    format!(
                        "invalid process name {name:?}: expected a name of at most 15 bytes without '/', as in /proc/<pid>/comm"
                    ),
                ));
            }
            process => process,
        };
        let Some(value) = self.get("signal") else {
            if process.is_some() {
                self.warn(
                    "signal-process",
                    "has no effect without keeper.security/signal",
                );
            }
            return Ok(None);
        };
        let signal = value.parse::<SignalName>().map_err(|()| {
            Error::invalid(
                key("signal"),
                format!("invalid signal {value:?}: expected SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2 or SIGWINCH"),
            )
        })?;
        Ok(Some(Signal { signal, process }))
    }

    fn ca_cert(&mut self) -> Result<Option<CaCert>> {
        let secret = self.object_name("ca-cert-secret", "Secret")?;
        let config_map = self.object_name("ca-cert-configmap", "ConfigMap")?;
        let key_name = match self.string("ca-cert-key", "a key such as ca.crt")? {
            Some(k)
                if k.len() > 253
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
            {
                return Err(Error::invalid(
                    key("ca-cert-key"),
                    format!("invalid key {k:?}: expected letters, digits, '-', '_' and '.'"),
                ));
            }
            k => k,
        };
        let k = key_name.clone().unwrap_or_else(|| "ca.crt".to_owned());
        match (secret, config_map) {
            (Some(_), Some(_)) => Err(Error::invalid(
                key("ca-cert-configmap"),
                "set keeper.security/ca-cert-secret or keeper.security/ca-cert-configmap, not both",
            )),
            (Some(name), None) => Ok(Some(CaCert::Secret { name, key: k })),
            (None, Some(name)) => Ok(Some(CaCert::ConfigMap { name, key: k })),
            (None, None) => {
                if key_name.is_some() {
                    self.warn("ca-cert-key", "has no effect without keeper.security/ca-cert-secret or keeper.security/ca-cert-configmap");
                }
                Ok(None)
            }
        }
    }

    fn containers(&self) -> Result<Option<Vec<String>>> {
        let Some(list) = self.get("containers") else {
            return Ok(None);
        };
        let mut names: Vec<String> = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !is_dns_label(name) {
                return Err(Error::invalid(
                    key("containers"),
                    format!(
                        "invalid container name {name:?}: expected a comma-separated list of container names"
                    ),
                ));
            }
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        if names.is_empty() {
            return Err(Error::invalid(
                key("containers"),
                "no container named: expected a comma-separated list of container names",
            ));
        }
        Ok(Some(names))
    }

    fn output_mode(&self) -> Result<Option<FileMode>> {
        self.get("output-mode")
            .map(|v| {
                v.parse().map_err(|()| {
                    Error::invalid(
                        key("output-mode"),
                        format!("invalid mode {v:?}: expected octal permissions with owner read, such as 0400, 0440 or 0444"),
                    )
                })
            })
            .transpose()
    }

    fn output_owner(&self) -> Result<Option<Owner>> {
        let Some(value) = self.get("output-owner") else {
            return Ok(None);
        };
        let invalid = |why: &str| {
            Error::invalid(
                key("output-owner"),
                format!(
                    "invalid owner {value:?}: {why}; expected a numeric user, or user:group, such as 1000 or 1000:3000"
                ),
            )
        };
        let id = |s: &str| {
            s.trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= i32::MAX as u32)
        };
        let (uid, gid) = match value.split_once(':') {
            Some((u, g)) => (id(u), Some(id(g).ok_or_else(|| invalid("not a group id"))?)),
            None => (id(value), None),
        };
        let uid = uid.ok_or_else(|| invalid("not a user id"))?;
        if uid == 0 {
            return Err(invalid("the keeper containers never run as root"));
        }
        Ok(Some(Owner {
            uid: i64::from(uid),
            gid: gid.map(i64::from),
        }))
    }

    fn quantity(&self, name: &str) -> Result<Option<String>> {
        let Some(value) = self.get(name).map(str::trim) else {
            return Ok(None);
        };
        if quantity::parse(value).is_none() {
            let example = if name.starts_with("cpu") {
                "100m or 0.5"
            } else {
                "64Mi or 1Gi"
            };
            return Err(Error::invalid(
                key(name),
                format!(
                    "invalid quantity {value:?}: expected a Kubernetes quantity such as {example}"
                ),
            ));
        }
        Ok(Some(value.to_owned()))
    }
}

impl Outputs {
    fn push_secret(&mut self, (origin, secret): (Cow<'static, str>, Secret)) {
        self.secret_origins.push(origin);
        self.secrets.push(secret);
    }

    fn push_folder(&mut self, (origin, folder): (Cow<'static, str>, Folder)) {
        self.folder_origins.push(origin);
        self.folders.push(folder);
    }

    /// Every output file has its own path, and no file lies where a directory must be.
    fn check_paths(&self) -> Result<()> {
        if self.folders.is_empty() && self.secrets.len() <= 16 && self.files_are_flat() {
            return Ok(());
        }
        let mut files: BTreeMap<&str, &str> = BTreeMap::new();
        for (origin, secret) in self.secret_origins.iter().zip(&self.secrets) {
            if let Some(other) = files.insert(&secret.path, origin) {
                return Err(Error::invalid(
                    &**origin,
                    format!(
                        "output path {} is also written by {other}: expected a distinct path for every secret",
                        secret.path
                    ),
                ));
            }
        }
        // A directory may be shared by several folders; the first one names the conflict.
        let mut dirs: BTreeMap<&str, &str> = BTreeMap::new();
        for (origin, folder) in self.folder_origins.iter().zip(&self.folders) {
            dirs.entry(&folder.output_dir).or_insert(origin);
        }
        // The first entry at or after `below` starts with it if any does, since every key
        // that starts with `below` sorts right after it.
        fn first_below<'a>(map: &BTreeMap<&str, &'a str>, below: &str) -> Option<&'a str> {
            map.range::<str, _>((Bound::Included(below), Bound::Unbounded))
                .next()
                .filter(|(p, _)| p.starts_with(below))
                .map(|(_, o)| *o)
        }
        let mut below = String::new();
        for (path, origin) in &files {
            below.clear();
            below.push_str(path);
            below.push('/');
            let nested = first_below(&files, &below)
                .or_else(|| dirs.get(path).copied())
                .or_else(|| first_below(&dirs, &below));
            if let Some(other) = nested {
                return Err(Error::invalid(
                    *origin,
                    format!(
                        "output path {path} is a file, but {other} needs a directory there: expected paths that do not nest"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether no two output files share a path or lie one inside the other, compared pair by
    /// pair: the usual few files need no maps. A conflict is left to [`check_paths`]'s maps,
    /// which name it.
    ///
    /// [`check_paths`]: Outputs::check_paths
    fn files_are_flat(&self) -> bool {
        let inside = |dir: &str, path: &str| {
            path.len() > dir.len() && path.as_bytes()[dir.len()] == b'/' && path.starts_with(dir)
        };
        let paths = self.secrets.iter().map(|s| s.path.as_str());
        paths.clone().enumerate().all(|(i, a)| {
            paths
                .clone()
                .skip(i + 1)
                .all(|b| a != b && !inside(a, b) && !inside(b, a))
        })
    }
}

/// Parses a `secret-<name>` value into what it selects and its output path, if given.
///
/// Forms: `/path` (record `<name>`), `record`, `record:/path`, `record[field][:/path]`,
/// `Folder/Record[:/path]`, `[keeper://]record/<selector>/...[:/path]`.
fn secret_value(key: &str, name: &str, value: &str) -> Result<(Reference, Option<String>)> {
    let value = value.trim();
    let expected = "expected /path, record, record:/path, record[field]:/path, Folder/record:/path or keeper://record/field/name[:/path]";
    if value.is_empty() {
        return Err(Error::invalid(key, format!("empty value: {expected}")));
    }
    if value.starts_with('/') {
        let record = RecordRef {
            folder: Vec::new(),
            name: name.to_owned(),
        };
        return Ok((Reference::Record(record), Some(output_file(key, value)?)));
    }
    let (selection, path) = split_path(value);
    let reference = notation::parse(selection).map_err(|m| {
        Error::invalid(
            key,
            format!("invalid reference {selection:?}: {m}; {expected}"),
        )
    })?;
    let path = path.map(|p| output_file(key, p)).transpose()?;
    Ok((reference, path))
}

/// Parses a `file-<name>` value: `record:file[:/path]`, `file` (record `<name>`), or
/// `keeper://record/file/<file>[:/path]`.
fn file_value(key: &str, name: &str, value: &str) -> Result<(RecordRef, String, Option<String>)> {
    let value = value.trim();
    let expected = "expected record:file-name[:/path] or keeper://record/file/file-name[:/path]";
    if value.is_empty() {
        return Err(Error::invalid(key, format!("empty value: {expected}")));
    }
    let (selection, path) = split_path(value);
    let path = path.map(|p| output_file(key, p)).transpose()?;
    let invalid = |m: String| {
        Error::invalid(
            key,
            format!("invalid reference {selection:?}: {m}; {expected}"),
        )
    };
    if selection.starts_with(notation::SCHEME) {
        return match notation::parse(selection).map_err(invalid)? {
            Reference::File(record, file) => Ok((record, file, path)),
            _ => Err(invalid("not a file selector".to_owned())),
        };
    }
    let (record, file) = match notation::rsplit_unescaped(selection, ":") {
        Some((record, file)) => (notation::record_path(record).map_err(invalid)?, file),
        None => (
            RecordRef {
                folder: Vec::new(),
                name: name.to_owned(),
            },
            selection,
        ),
    };
    let file = notation::name(file, "file name").map_err(invalid)?;
    Ok((record, file, path))
}

/// Splits `selection:/path` at the last unescaped `:/` (after any `keeper://`).
fn split_path(value: &str) -> (&str, Option<&str>) {
    let skip = if value.starts_with(notation::SCHEME) {
        notation::SCHEME.len()
    } else {
        0
    };
    match notation::rsplit_unescaped(&value[skip..], ":/") {
        Some((before, _)) if before.is_empty() && skip == 0 => (value, None),
        Some((before, _)) => {
            let end = skip + before.len();
            (&value[..end], Some(&value[end + 1..]))
        }
        None => (value, None),
    }
}

/// A secret that yields one value: a field, a notation or a file, rendered raw.
fn single_value(reference: Reference, path: String) -> Secret {
    let source = match reference {
        Reference::Record(record) => Source::Record {
            record,
            fields: Vec::new(),
        },
        Reference::Field(record, field) => Source::Record {
            record,
            fields: vec![field],
        },
        Reference::Notation {
            canonical,
            record,
            selector,
        } => Source::Notation {
            notation: canonical,
            record,
            selector,
        },
        Reference::File(record, file) => Source::File { record, file },
    };
    Secret {
        path,
        source,
        format: Format::Raw,
        template: None,
        env_prefix: None,
        mode: None,
    }
}

/// One entry of `secrets:` in `keeper.security/config`.
fn config_secret(
    origin: &str,
    config: &str,
    i: usize,
    s: ConfigSecret,
    warnings: &mut Vec<String>,
) -> Result<Secret> {
    let at = |field: &str| format!("{config} (secrets[{i}].{field})");
    if s.inject_as_env_vars == Some(true) {
        return Err(Error::Unsupported {
            annotation: at("injectAsEnvVars"),
            reason: ENV_VARS_REASON,
        });
    }
    for (field, present) in [
        ("injectAsK8sSecret", s.inject_as_k8s_secret == Some(true)),
        ("k8sSecretName", s.k8s_secret_name.is_some()),
        ("k8sSecretKeys", s.k8s_secret_keys.is_some()),
        ("k8sSecretType", s.k8s_secret_type.is_some()),
    ] {
        if present {
            return Err(Error::Unsupported {
                annotation: at(field),
                reason: K8S_SECRET_REASON,
            });
        }
    }
    let file = match (s.file, s.file_name) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                origin,
                "set file or fileName (an alias), not both",
            ));
        }
        (file, file_name) => file.or(file_name),
    };
    if let Some(field) = s.fields.iter().find(|f| f.trim().is_empty()) {
        return Err(Error::invalid(
            at("fields"),
            format!("empty field name {field:?}"),
        ));
    }
    let (source, single, default_name) = match (s.record, s.notation) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(origin, "set record or notation, not both"));
        }
        (None, None) => {
            return Err(Error::invalid(
                origin,
                "expected record (a title or UID) or notation (keeper://...)",
            ));
        }
        (Some(record), None) => {
            let record = record.trim().to_owned();
            if record.is_empty() {
                return Err(Error::invalid(
                    at("record"),
                    "empty record: expected a title or UID",
                ));
            }
            let r = RecordRef {
                folder: Vec::new(),
                name: record.clone(),
            };
            match file {
                Some(file) if s.fields.is_empty() => {
                    (Source::File { record: r, file }, true, record)
                }
                Some(_) => return Err(Error::invalid(origin, "set fields or file, not both")),
                None => {
                    let single = s.fields.len() == 1;
                    (
                        Source::Record {
                            record: r,
                            fields: s.fields,
                        },
                        single,
                        record,
                    )
                }
            }
        }
        (None, Some(text)) => {
            let reference = notation::parse(text.trim()).map_err(|m| {
                Error::invalid(at("notation"), format!("invalid notation {text:?}: {m}"))
            })?;
            if file.is_some() || !s.fields.is_empty() {
                return Err(Error::invalid(
                    origin,
                    "a notation selects by itself: remove fields and file",
                ));
            }
            let name = match &reference {
                Reference::Record(r)
                | Reference::Field(r, _)
                | Reference::Notation { record: r, .. }
                | Reference::File(r, _) => r.name.clone(),
            };
            let single = !matches!(reference, Reference::Record(_));
            (single_value(reference, String::new()).source, single, name)
        }
    };
    let format = match (s.format.as_deref().map(str::trim), &s.template) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(origin, "set format or template, not both"));
        }
        (None, Some(t)) if t.trim().is_empty() => {
            return Err(Error::invalid(at("template"), "empty template"));
        }
        (None, Some(_)) => Format::Template,
        (Some(f), None) => f.parse().map_err(|()| {
            Error::invalid(
                at("format"),
                format!("invalid format {f:?}: expected json, env, properties, yaml, ini or raw"),
            )
        })?,
        (None, None) if single => Format::Raw,
        (None, None) => Format::Json,
    };
    let file_source = matches!(source, Source::File { .. });
    if (file_source || matches!(source, Source::Notation { .. })) && !matches!(format, Format::Raw)
    {
        return Err(Error::invalid(
            origin,
            format!(
                "format {} does not apply: a file or a notation yields one value, written raw",
                format.as_str()
            ),
        ));
    }
    let mode = s
        .mode
        .map(|m| {
            m.parse::<FileMode>().map_err(|()| {
                Error::invalid(at("mode"), format!("invalid mode {m:?}: expected octal permissions with owner read, such as 0440"))
            })
        })
        .transpose()?;
    if s.env_prefix.is_some() && format != Format::Env {
        warnings.push(format!(
            "{} has no effect unless format is env",
            at("envPrefix")
        ));
    }
    let path = match s.path {
        Some(path) => output_file(&at("path"), path.trim())?,
        None if file_source => match &source {
            Source::File { file, .. } => default_output_path(file, false, ""),
            _ => String::new(),
        },
        None => default_output_path(&default_name, true, ".json"),
    };
    Ok(Secret {
        path,
        source,
        format,
        template: s.template,
        env_prefix: s.env_prefix.filter(|_| format == Format::Env),
        mode,
    })
}

/// A folder UID: 22 characters of URL-safe base64.
fn folder_uid(origin: &str, uid: &str) -> Result<String> {
    let uid = uid.trim();
    if uid.len() != 22
        || !uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid(
            origin,
            format!(
                "invalid folder UID {uid:?}: expected 22 characters of letters, digits, '-' and '_'"
            ),
        ));
    }
    Ok(uid.to_owned())
}

/// An output file path: absolute under the mount, or relative to it.
fn output_file(origin: &str, path: &str) -> Result<String> {
    let path = output_path(origin, path)?;
    if path == MOUNT_PATH {
        return Err(Error::invalid(
            origin,
            format!("output path {path} is the shared directory itself: expected a file under it"),
        ));
    }
    Ok(path)
}

/// An output directory: absolute under the mount (or the mount itself), or relative to it.
fn output_dir(origin: &str, path: &str) -> Result<String> {
    output_path(
        origin,
        path.strip_suffix('/')
            .filter(|p| !p.is_empty())
            .unwrap_or(path),
    )
}

/// Resolves and checks a path under the shared volume: only that directory is shared with the
/// application containers, and the keeper containers' root filesystem is read-only, so a path
/// elsewhere could never be written (upstream defect 4).
fn output_path(origin: &str, path: &str) -> Result<String> {
    let full = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{MOUNT_PATH}/{path}")
    };
    let outside = || {
        Error::invalid(
            origin,
            format!(
                "output path {path:?} is outside the shared volume: expected a path under {MOUNT_PATH}, the only directory the keeper containers share with the application"
            ),
        )
    };
    if full != MOUNT_PATH && !full.starts_with(&format!("{MOUNT_PATH}/")) {
        return Err(outside());
    }
    let rest = &full[MOUNT_PATH.len()..];
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    if !rest.is_empty() {
        for component in rest.split('/') {
            if component.is_empty() || component == "." || component == ".." {
                return Err(Error::invalid(
                    origin,
                    format!(
                        "output path {path:?} has an empty, '.' or '..' component: expected a plain path under {MOUNT_PATH}"
                    ),
                ));
            }
            if component.len() > 255 || component.contains('\0') {
                return Err(Error::invalid(
                    origin,
                    format!(
                        "output path {path:?} has a component longer than 255 bytes or with a NUL: expected a valid file name"
                    ),
                ));
            }
        }
    }
    if full.len() > 4096 {
        return Err(Error::invalid(
            origin,
            "output path is longer than 4096 bytes",
        ));
    }
    Ok(full)
}

/// A file name made from a record title or attachment name, as upstream's `sanitizeName`
/// does (lowercase, spaces and `/` to `-`), also replacing control characters and `\`, and
/// bounded to 200 bytes so that a suffix still fits a file name.
pub fn file_name(name: &str, lowercase: bool) -> String {
    let mut out = String::with_capacity(name.len());
    push_file_name(&mut out, name, lowercase);
    out
}

/// `{MOUNT_PATH}/{file_name(name)}{extension}`, built in one string.
fn default_output_path(name: &str, lowercase: bool, extension: &str) -> String {
    let mut out = String::with_capacity(MOUNT_PATH.len() + 1 + name.len() + extension.len());
    out.push_str(MOUNT_PATH);
    out.push('/');
    push_file_name(&mut out, name, lowercase);
    out.push_str(extension);
    out
}

/// Appends [`file_name`]`(name, lowercase)` to `out`.
fn push_file_name(out: &mut String, name: &str, lowercase: bool) {
    let start = out.len();
    let name = name.trim();
    // Most names are short printable ASCII without separators: copied whole.
    let plain = |b: u8| b.is_ascii_graphic() && b != b'/' && b != b'\\';
    if name.len() <= 200 && name.bytes().all(plain) {
        out.push_str(name);
        if lowercase {
            out[start..].make_ascii_lowercase();
        }
    } else {
        push_file_name_slowly(out, name, lowercase);
    }
    let added = &out[start..];
    if added.is_empty() || added == "." || added == ".." {
        out.truncate(start);
        out.push('-');
    }
}

/// [`push_file_name`] a character at a time.
fn push_file_name_slowly(out: &mut String, name: &str, lowercase: bool) {
    let start = out.len();
    for c in name.chars() {
        let c = if c == ' ' || c == '/' || c == '\\' || c.is_control() {
            '-'
        } else {
            c
        };
        if out.len() - start + c.len_utf8() > 200 {
            break;
        }
        if lowercase && c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if lowercase {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
}

/// The first line of a multi-line parser message, without a leading `error: `.
fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or_default().trim();
    line.strip_prefix("error: ").unwrap_or(line)
}

/// The known annotation closest to an unknown one, when the typo is small.
fn suggest(name: &str) -> Option<&'static str> {
    KNOWN
        .iter()
        .map(|known| (edit_distance(name, known), *known))
        .filter(|(d, known)| *d <= 2.max(known.len() / 6))
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance, bounded in cost by the short annotation names it is used on.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(64).enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// `projects/<p>/secrets/<s>` with an optional `/versions/<v>`.
fn is_gcp_secret_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    let shape = match parts.as_slice() {
        ["projects", p, "secrets", s] => vec![*p, *s],
        ["projects", p, "secrets", s, "versions", v] => vec![*p, *s, *v],
        _ => return false,
    };
    shape.iter().all(|part| !part.is_empty())
}

/// A DNS-1123 subdomain, as Kubernetes object names are.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A DNS-1123 label, as container names are.
pub(crate) fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

#[cfg(test)]
mod tests;
