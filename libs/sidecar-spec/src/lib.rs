//! The sidecar spec: the contract between the injector webhook and the Keeper sidecar.
//!
//! The webhook turns a pod's annotations into one [`SidecarSpec`] and writes its JSON once per
//! pod, into the pod annotation [`SPEC_ANNOTATION`]; both keeper containers receive it in the
//! environment variable [`SPEC_ENV`] through the downward API
//! (`fieldRef: metadata.annotations['keeper.security/sidecar-spec']`), and the sidecar reads
//! it back with [`SidecarSpec::from_json`].
//! It carries every decision the annotations made, so that no annotation silently does nothing,
//! and never a secret value: the KSM configuration reaches the containers through
//! [`KSM_CONFIG_ENV`], a `secretKeyRef` that the kubelet resolves.
//! Every struct rejects unknown fields, so that a sidecar older than its webhook fails loudly
//! instead of dropping a feature; incompatible changes raise [`SPEC_VERSION`].
//!
//! This crate is all that the sidecar and the webhook share: the sidecar does not compile the
//! annotation parser or the Kubernetes types.

use std::fmt;
use std::str::FromStr;

use bulwark_config::Duration;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The version this crate writes and reads.
pub const SPEC_VERSION: u32 = 1;

/// The environment variable that holds the spec as JSON.
pub const SPEC_ENV: &str = "BULWARK_INJECT_SPEC";

/// The pod annotation that holds the spec as JSON, set by the webhook; the keeper containers
/// receive it in [`SPEC_ENV`] through the downward API. It is read when each container starts.
pub const SPEC_ANNOTATION: &str = "keeper.security/sidecar-spec";

/// The downward API field path of [`SPEC_ANNOTATION`].
pub const SPEC_FIELD_PATH: &str = "metadata.annotations['keeper.security/sidecar-spec']";

/// The environment variable that holds the KSM configuration (JSON or base64 JSON), set from
/// the `config` key of the Secret named by `keeper.security/ksm-config`; only with auth method
/// `secret`.
pub const KSM_CONFIG_ENV: &str = "BULWARK_INJECT_KSM_CONFIG";

/// The environment variable that holds the pod's name (downward API), for logs.
pub const POD_NAME_ENV: &str = "BULWARK_INJECT_POD_NAME";

/// The environment variable that holds the pod's namespace (downward API), for logs.
pub const POD_NAMESPACE_ENV: &str = "BULWARK_INJECT_POD_NAMESPACE";

/// The argument that starts the sidecar binary in init mode: fetch once, write, exit.
pub const ARG_MODE_INIT: &str = "--mode=init";

/// The argument that starts the sidecar binary in sidecar mode: fetch, write, refresh.
pub const ARG_MODE_SIDECAR: &str = "--mode=sidecar";

/// Why a spec cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Another version than [`SPEC_VERSION`].
    #[error(
        "invalid sidecar spec: version {0} is not supported: this build reads version {SPEC_VERSION}; run a sidecar image as new as the webhook"
    )]
    Version(u32),
    /// Not JSON, or not the shape of a spec.
    #[error("invalid sidecar spec: {0}")]
    Json(String),
}

/// Everything the init and sidecar containers need to deliver a pod's secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SidecarSpec {
    /// Always [`SPEC_VERSION`].
    pub version: u32,
    /// Where the shared tmpfs volume is mounted; every output path lies under it.
    pub mount_path: String,
    /// Where the KSM configuration comes from.
    pub auth: Auth,
    /// Records, fields, notations and file attachments, one output file each.
    pub secrets: Vec<Secret>,
    /// Whole folders, one file per record.
    pub folders: Vec<Folder>,
    /// How often the sidecar fetches again.
    pub refresh_interval: Duration,
    /// Whether the init container fails (and so the pod does not start) when it cannot
    /// deliver every secret.
    pub fail_on_error: bool,
    /// Whether a title that matches several records is an error rather than the first match.
    pub strict_lookup: bool,
    /// The mode of every written file unless a secret sets its own.
    pub file_mode: FileMode,
    /// The signal to send to the application when a file changed.
    pub signal: Option<Signal>,
    /// A PEM file of extra CA certificates to trust for Keeper and cloud endpoints.
    pub ca_cert_file: Option<String>,
    /// The port of the sidecar's `/health`, `/ready` and `/metrics`.
    pub health_port: u16,
}

/// Where the KSM configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Auth {
    /// From the environment variable [`KSM_CONFIG_ENV`].
    Secret,
    /// From AWS Secrets Manager, with the pod's workload identity.
    #[serde(rename_all = "camelCase")]
    AwsSecretsManager {
        secret_id: String,
        #[serde(default)]
        region: Option<String>,
    },
    /// From GCP Secret Manager, with the pod's workload identity.
    #[serde(rename_all = "camelCase")]
    GcpSecretManager { secret_id: String },
    /// From Azure Key Vault, with the pod's workload identity.
    #[serde(rename_all = "camelCase")]
    AzureKeyVault {
        vault_name: String,
        secret_name: String,
    },
}

/// One output file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Secret {
    /// Absolute path under [`SidecarSpec::mount_path`].
    pub path: String,
    /// What to fetch.
    pub source: Source,
    /// How to render it; [`Format::Template`] exactly when `template` is set.
    pub format: Format,
    /// The template text, for [`Format::Template`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// A prefix for the keys of an [`Format::Env`] file, e.g. `DB_`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_prefix: Option<String>,
    /// This file's mode, instead of [`SidecarSpec::file_mode`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FileMode>,
}

/// What a secret fetches from Keeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Source {
    /// A whole record, or only the named fields of it (by label, else by type).
    Record {
        record: RecordRef,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
    /// One value selected by Keeper notation.
    Notation {
        /// The canonical `keeper://` form, for logs.
        notation: String,
        record: RecordRef,
        selector: Selector,
    },
    /// A file attachment, matched by name or title.
    File { record: RecordRef, file: String },
}

/// A record by title or UID, optionally inside a folder path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordRef {
    /// Folder names from the top, e.g. `["Production", "Databases"]`; empty for any folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folder: Vec<String>,
    /// The record's title, or its 22-character UID.
    pub name: String,
}

/// The part of a record that Keeper notation selects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Selector {
    /// The record type.
    Type,
    /// The record title.
    Title,
    /// The record notes.
    Notes,
    /// A standard field, by type or label.
    Field {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<Index>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        property: Option<String>,
    },
    /// A custom field, by label or type.
    CustomField {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<Index>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        property: Option<String>,
    },
}

/// Which value of a multi-value field: `[]` (all, as a JSON array) or `[n]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Index {
    All,
    At(u32),
}

/// How a secret is rendered into its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Env,
    Properties,
    Yaml,
    Ini,
    Raw,
    Template,
}

/// A folder whose records are all written, one `<title>.json` file each.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Folder {
    pub folder: FolderRef,
    /// Absolute directory under [`SidecarSpec::mount_path`].
    pub output_dir: String,
}

/// A folder by UID or by its path of names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum FolderRef {
    Uid(String),
    Path(Vec<String>),
}

/// The signal sent to the application after files changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Signal {
    pub signal: SignalName,
    /// Signal only processes with this name (`/proc/<pid>/comm`); without it, the main process
    /// of every other container (the processes whose parent is outside the pod's PID
    /// namespace, except the pause process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// The signals an application may ask for; the ones that stop or kill are not among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignalName {
    #[serde(rename = "SIGHUP")]
    Hup,
    #[serde(rename = "SIGINT")]
    Int,
    #[serde(rename = "SIGQUIT")]
    Quit,
    #[serde(rename = "SIGTERM")]
    Term,
    #[serde(rename = "SIGUSR1")]
    Usr1,
    #[serde(rename = "SIGUSR2")]
    Usr2,
    #[serde(rename = "SIGWINCH")]
    Winch,
}

/// Unix permission bits of a written file, written as an octal string such as `"0440"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileMode(u32);

impl SidecarSpec {
    /// Reads a spec from the JSON in [`SPEC_ENV`], refusing versions other than
    /// [`SPEC_VERSION`] with a message that says which one this build reads.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let json_error = |e: serde_json::Error| Error::Json(e.to_string());
        let version: Version = serde_json::from_str(json).map_err(json_error)?;
        if version.version != SPEC_VERSION {
            return Err(Error::Version(version.version));
        }
        serde_json::from_str(json).map_err(json_error)
    }

    /// The JSON written into [`SPEC_ENV`].
    pub fn to_json(&self) -> String {
        // Serialising these types cannot fail: every map key is a string and no `Serialize`
        // impl here returns an error; an empty object would be refused by `from_json`.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Format {
    /// The name used in annotations and the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Env => "env",
            Format::Properties => "properties",
            Format::Yaml => "yaml",
            Format::Ini => "ini",
            Format::Raw => "raw",
            Format::Template => "template",
        }
    }

    /// The extension of a default file name in this format, with its dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => ".json",
            Format::Env => ".env",
            Format::Properties => ".properties",
            Format::Yaml => ".yaml",
            Format::Ini => ".ini",
            Format::Raw | Format::Template => "",
        }
    }
}

impl FromStr for Format {
    type Err = ();

    /// Parses the formats a user may name; `template` is implied by a template instead.
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "json" => Format::Json,
            "env" => Format::Env,
            "properties" => Format::Properties,
            "yaml" => Format::Yaml,
            "ini" => Format::Ini,
            "raw" => Format::Raw,
            _ => return Err(()),
        })
    }
}

impl SignalName {
    /// The conventional name, such as `SIGHUP`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignalName::Hup => "SIGHUP",
            SignalName::Int => "SIGINT",
            SignalName::Quit => "SIGQUIT",
            SignalName::Term => "SIGTERM",
            SignalName::Usr1 => "SIGUSR1",
            SignalName::Usr2 => "SIGUSR2",
            SignalName::Winch => "SIGWINCH",
        }
    }

    /// The signal number on Linux.
    pub fn number(self) -> i32 {
        match self {
            SignalName::Hup => 1,
            SignalName::Int => 2,
            SignalName::Quit => 3,
            SignalName::Term => 15,
            SignalName::Usr1 => 10,
            SignalName::Usr2 => 12,
            SignalName::Winch => 28,
        }
    }
}

impl FromStr for SignalName {
    type Err = ();

    /// Accepts `SIGHUP`, `HUP` and `hup` alike.
    fn from_str(s: &str) -> Result<Self, ()> {
        let upper = s.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Ok(match name {
            "HUP" => SignalName::Hup,
            "INT" => SignalName::Int,
            "QUIT" => SignalName::Quit,
            "TERM" => SignalName::Term,
            "USR1" => SignalName::Usr1,
            "USR2" => SignalName::Usr2,
            "WINCH" => SignalName::Winch,
            _ => return Err(()),
        })
    }
}

impl FileMode {
    /// `0400`: only the owner reads.
    pub const OWNER_READ: FileMode = FileMode(0o400);
    /// `0440`: the owner and the group read.
    pub const GROUP_READ: FileMode = FileMode(0o440);
    /// `0444`: everyone reads.
    pub const ALL_READ: FileMode = FileMode(0o444);

    /// The mode for `bits`, or `None` when it has bits beyond `0o777` or lacks owner read
    /// (the sidecar must read back what it wrote to detect changes).
    pub fn new(bits: u32) -> Option<Self> {
        (bits <= 0o777 && bits & 0o400 != 0).then_some(Self(bits))
    }

    /// The permission bits.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl fmt::Display for FileMode {
    /// Four octal digits, such as `0440`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl FromStr for FileMode {
    type Err = ();

    /// Parses three or four octal digits, such as `440` or `0440`.
    fn from_str(s: &str) -> Result<Self, ()> {
        let digits = s.trim();
        if !(3..=4).contains(&digits.len()) || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return Err(());
        }
        let bits = u32::from_str_radix(digits, 8).map_err(|_| ())?;
        FileMode::new(bits).ok_or(())
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(|()| {
            serde::de::Error::custom(format!(
                "invalid file mode {s:?}: expected octal digits with owner read, such as \"0440\""
            ))
        })
    }
}

/// The longest file name [`file_name`] makes, in bytes: a suffix such as `.json` still fits
/// the 255 bytes a file name may have.
const MAX_FILE_NAME: usize = 200;

/// A file name made from a record title or an attachment name, as upstream's `sanitizeName`
/// does (lowercased when `lowercase`, spaces and `/` to `-`), also replacing `\` and control
/// characters, bounded to 200 bytes, and `-` for a name that would be empty, `.` or `..`.
/// The webhook names default output files with it, the sidecar the files of whole folders.
pub fn file_name(name: &str, lowercase: bool) -> String {
    let mut out = String::with_capacity(name.len().min(MAX_FILE_NAME));
    for c in name.trim().chars() {
        let c = if c == ' ' || c == '/' || c == '\\' || c.is_control() {
            '-'
        } else {
            c
        };
        if out.len() + c.len_utf8() > MAX_FILE_NAME {
            break;
        }
        match c {
            c if lowercase && c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c if lowercase => out.extend(c.to_lowercase()),
            c => out.push(c),
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        out.clear();
        out.push('-');
    }
    out
}

#[cfg(test)]
mod tests;
