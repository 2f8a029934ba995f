//! The spec as a JSON string literal, written directly: the text serde_json writes for a
//! [`SidecarSpec`], escaped into a string in the same pass.
//!
//! Admission writes this literal into the keeper containers of every pod, and going through
//! serde's serializer was an eighth of an admission's instructions. Every struct is
//! destructured in full, so that a new field does not compile until it is written here, and
//! `tests::the_literal_is_serde_json_s_text_as_a_string` holds the output to serde_json's on
//! every variant.

use super::{
    Auth, FileMode, Folder, FolderRef, Index, RecordRef, Secret, Selector, SidecarSpec, Signal,
    Source,
};
use crate::json::{push_nested_string, push_number};

/// A member name as the literal holds it: `\"name\":`.
macro_rules! member {
    ($name:literal) => {
        concat!("\\\"", $name, "\\\":")
    };
}

/// Starts member `$name` of the object that `$w` is writing.
macro_rules! field {
    ($w:expr, $name:literal) => {
        $w.field(member!($name))
    };
}

/// `spec`'s JSON as a JSON string literal, quotes included.
pub(super) fn write(spec: &SidecarSpec) -> String {
    let SidecarSpec {
        version,
        mount_path,
        auth,
        secrets,
        folders,
        refresh_interval,
        fail_on_error,
        strict_lookup,
        file_mode,
        signal,
        ca_cert_file,
        health_port,
    } = spec;
    let mut w = Literal(String::with_capacity(1024));
    w.0.push_str("\"{");
    field!(w, "version");
    push_number(&mut w.0, *version);
    field!(w, "mountPath");
    w.string(mount_path);
    field!(w, "auth");
    w.auth(auth);
    field!(w, "secrets");
    w.array(secrets, Literal::secret);
    field!(w, "folders");
    w.array(folders, Literal::folder);
    field!(w, "refreshInterval");
    // A duration prints as digits and unit letters only; writing to a String cannot fail.
    w.0.push_str("\\\"");
    let _ = refresh_interval.write_shortest(&mut w.0);
    w.0.push_str("\\\"");
    field!(w, "failOnError");
    w.bool(*fail_on_error);
    field!(w, "strictLookup");
    w.bool(*strict_lookup);
    field!(w, "fileMode");
    w.file_mode(*file_mode);
    field!(w, "signal");
    match signal {
        Some(signal) => w.signal(signal),
        None => w.0.push_str("null"),
    }
    field!(w, "caCertFile");
    match ca_cert_file {
        Some(file) => w.string(file),
        None => w.0.push_str("null"),
    }
    field!(w, "healthPort");
    push_number(&mut w.0, *health_port);
    w.0.push_str("}\"");
    w.0
}

/// The literal being written: JSON text whose quotes and backslashes are escaped once more.
struct Literal(String);

impl Literal {
    /// Starts a member of the object being written: `key` is its quoted name and colon, as
    /// [`member!`] writes them.
    fn field(&mut self, key: &'static str) {
        if !self.0.ends_with('{') {
            self.0.push(',');
        }
        self.0.push_str(key);
    }

    fn string(&mut self, value: &str) {
        push_nested_string(&mut self.0, value);
    }

    /// A string that needs no escaping: a tag or a name of this crate's.
    fn word(&mut self, value: &str) {
        self.0.push_str("\\\"");
        self.0.push_str(value);
        self.0.push_str("\\\"");
    }

    fn bool(&mut self, value: bool) {
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn file_mode(&mut self, mode: FileMode) {
        self.0.push_str("\\\"");
        self.0.extend(mode.octal().map(char::from));
        self.0.push_str("\\\"");
    }

    fn array<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        self.0.push('[');
        for (i, value) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(',');
            }
            item(self, value);
        }
        self.0.push(']');
    }

    fn strings(&mut self, items: &[String]) {
        self.array(items, |w, s| w.string(s));
    }

    /// `{"<tag>":"<value>"` with the object left open; `tag` as [`member!`] writes it.
    fn tagged(&mut self, tag: &'static str, value: &str) {
        self.0.push('{');
        self.field(tag);
        self.word(value);
    }

    fn auth(&mut self, auth: &Auth) {
        match auth {
            Auth::Secret => self.tagged(member!("method"), "secret"),
            Auth::AwsSecretsManager { secret_id, region } => {
                self.tagged(member!("method"), "aws-secrets-manager");
                field!(self, "secretId");
                self.string(secret_id);
                field!(self, "region");
                match region {
                    Some(region) => self.string(region),
                    None => self.0.push_str("null"),
                }
            }
            Auth::GcpSecretManager { secret_id } => {
                self.tagged(member!("method"), "gcp-secret-manager");
                field!(self, "secretId");
                self.string(secret_id);
            }
            Auth::AzureKeyVault {
                vault_name,
                secret_name,
            } => {
                self.tagged(member!("method"), "azure-key-vault");
                field!(self, "vaultName");
                self.string(vault_name);
                field!(self, "secretName");
                self.string(secret_name);
            }
        }
        self.0.push('}');
    }

    fn secret(&mut self, secret: &Secret) {
        let Secret {
            path,
            source,
            format,
            template,
            env_prefix,
            mode,
        } = secret;
        self.0.push('{');
        field!(self, "path");
        self.string(path);
        field!(self, "source");
        self.source(source);
        field!(self, "format");
        self.word(format.as_str());
        if let Some(template) = template {
            field!(self, "template");
            self.string(template);
        }
        if let Some(prefix) = env_prefix {
            field!(self, "envPrefix");
            self.string(prefix);
        }
        if let Some(mode) = mode {
            field!(self, "mode");
            self.file_mode(*mode);
        }
        self.0.push('}');
    }

    fn source(&mut self, source: &Source) {
        match source {
            Source::Record { record, fields } => {
                self.tagged(member!("kind"), "record");
                field!(self, "record");
                self.record(record);
                if !fields.is_empty() {
                    field!(self, "fields");
                    self.strings(fields);
                }
            }
            Source::Notation {
                notation,
                record,
                selector,
            } => {
                self.tagged(member!("kind"), "notation");
                field!(self, "notation");
                self.string(notation);
                field!(self, "record");
                self.record(record);
                field!(self, "selector");
                self.selector(selector);
            }
            Source::File { record, file } => {
                self.tagged(member!("kind"), "file");
                field!(self, "record");
                self.record(record);
                field!(self, "file");
                self.string(file);
            }
        }
        self.0.push('}');
    }

    fn record(&mut self, record: &RecordRef) {
        let RecordRef { folder, name } = record;
        self.0.push('{');
        if !folder.is_empty() {
            field!(self, "folder");
            self.strings(folder);
        }
        field!(self, "name");
        self.string(name);
        self.0.push('}');
    }

    fn selector(&mut self, selector: &Selector) {
        let (tag, field) = selector.parts();
        self.tagged(member!("type"), tag);
        if let Some((name, index, property)) = field {
            field!(self, "name");
            self.string(name);
            if let Some(index) = index {
                field!(self, "index");
                match index {
                    Index::All => self.word("all"),
                    Index::At(i) => {
                        self.0.push('{');
                        field!(self, "at");
                        push_number(&mut self.0, i);
                        self.0.push('}');
                    }
                }
            }
            if let Some(property) = property {
                field!(self, "property");
                self.string(property);
            }
        }
        self.0.push('}');
    }

    fn folder(&mut self, folder: &Folder) {
        let Folder { folder, output_dir } = folder;
        self.0.push('{');
        field!(self, "folder");
        self.0.push('{');
        match folder {
            FolderRef::Uid(uid) => {
                field!(self, "uid");
                self.string(uid);
            }
            FolderRef::Path(path) => {
                field!(self, "path");
                self.strings(path);
            }
        }
        self.0.push('}');
        field!(self, "outputDir");
        self.string(output_dir);
        self.0.push('}');
    }

    fn signal(&mut self, signal: &Signal) {
        let Signal { signal, process } = signal;
        self.tagged(member!("signal"), signal.as_str());
        if let Some(process) = process {
            field!(self, "process");
            self.string(process);
        }
        self.0.push('}');
    }
}
