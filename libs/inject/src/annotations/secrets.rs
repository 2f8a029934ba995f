//! What the simple annotations select: `secret`, `secrets`, `secret-<name>`, `file-<name>`
//! (levels 1 to 4 of the upstream docs) and whole folders (`folder`, `folder-uid`,
//! `folder-path`), with the rendering that `format` and `template` choose.

use bulwark_sidecar_spec::{Folder, FolderRef, Format, RecordRef, Secret, Source};

use super::key;
use super::parser::Parser;
use super::paths::{Origin, Outputs, default_output_path, output_dir, output_file};
use crate::notation::{self, Reference};
use crate::{Error, MOUNT_PATH, Result};

impl<'a> Parser<'a> {
    /// The annotation-level rendering of whole records: `format` or `template`.
    pub(super) fn default_render(&self) -> Result<(Format, Option<String>)> {
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
    pub(super) fn simple_secrets(&mut self, out: &mut Outputs<'a>) -> Result<()> {
        let (format, template) = self.default_render()?;
        let env_prefix = self.string(
            "env-prefix",
            "a prefix for the keys of env-format files, such as DB_",
        )?;
        let mut whole_records = 0;
        let whole = |origin: Origin<'a>, record: RecordRef, path: String| {
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
            titles.push((Origin::Annotation("secret"), title));
        }
        if let Some(list) = self.get("secrets") {
            let before = titles.len();
            titles.extend(
                list.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| (Origin::Annotation("secrets"), t.to_owned())),
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
            out.push_secret(whole(origin, record, path));
            whole_records += 1;
        }

        for (&k, &value) in &self.ours {
            let Some(name) = k.strip_prefix("secret-") else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let origin = Origin::Annotation(k);
            let (reference, path) = secret_value(origin, name, value)?;
            let default_path = |ext: &str| default_output_path(name, true, ext);
            let secret = match reference {
                Reference::Record(record) => {
                    whole_records += 1;
                    let path = path.unwrap_or_else(|| default_path(format.extension()));
                    whole(origin, record, path)
                }
                reference => (
                    origin,
                    single_value(reference, path.unwrap_or_else(|| default_path(""))),
                ),
            };
            out.push_secret(secret);
        }

        for (&k, &value) in &self.ours {
            let Some(name) = k.strip_prefix("file-") else {
                continue;
            };
            if name.is_empty() {
                continue;
            }
            let origin = Origin::Annotation(k);
            let (record, file, path) = file_value(origin, name, value)?;
            let path = path.unwrap_or_else(|| default_output_path(&file, false, ""));
            out.push_secret((
                origin,
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

    /// `folder`, `folder-uid` and `folder-path`.
    pub(super) fn folders(&mut self, out: &mut Outputs<'a>) -> Result<()> {
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
            (None, Some(uid)) => {
                FolderRef::Uid(folder_uid(Origin::Annotation("folder-uid"), &uid)?)
            }
            (None, None) => {
                if self.get("folder-path").is_some() {
                    self.warn("folder-path", "has no effect without keeper.security/folder or keeper.security/folder-uid");
                }
                return Ok(());
            }
        };
        let output_dir = match self.get("folder-path") {
            Some(dir) => output_dir(Origin::Annotation("folder-path"), dir.trim())?,
            None => MOUNT_PATH.to_owned(),
        };
        let origin = Origin::Annotation(if matches!(folder, FolderRef::Uid(_)) {
            "folder-uid"
        } else {
            "folder"
        });
        out.push_folder((origin, Folder { folder, output_dir }));
        Ok(())
    }
}

/// Parses a `secret-<name>` value into what it selects and its output path, if given.
///
/// Forms: `/path` (record `<name>`), `record`, `record:/path`, `record[field][:/path]`,
/// `Folder/Record[:/path]`, `[keeper://]record/<selector>/...[:/path]`.
fn secret_value(
    origin: Origin<'_>,
    name: &str,
    value: &str,
) -> Result<(Reference, Option<String>)> {
    let value = value.trim();
    let expected = "expected /path, record, record:/path, record[field]:/path, Folder/record:/path or keeper://record/field/name[:/path]";
    if value.is_empty() {
        return Err(Error::invalid(
            origin.to_string(),
            format!("empty value: {expected}"),
        ));
    }
    if value.starts_with('/') {
        let record = RecordRef {
            folder: Vec::new(),
            name: name.to_owned(),
        };
        return Ok((Reference::Record(record), Some(output_file(origin, value)?)));
    }
    let (selection, path) = split_path(value);
    let reference = notation::parse(selection).map_err(|m| {
        Error::invalid(
            origin.to_string(),
            format!("invalid reference {selection:?}: {m}; {expected}"),
        )
    })?;
    let path = path.map(|p| output_file(origin, p)).transpose()?;
    Ok((reference, path))
}

/// Parses a `file-<name>` value: `record:file[:/path]`, `file` (record `<name>`), or
/// `keeper://record/file/<file>[:/path]`.
fn file_value(
    origin: Origin<'_>,
    name: &str,
    value: &str,
) -> Result<(RecordRef, String, Option<String>)> {
    let value = value.trim();
    let expected = "expected record:file-name[:/path] or keeper://record/file/file-name[:/path]";
    if value.is_empty() {
        return Err(Error::invalid(
            origin.to_string(),
            format!("empty value: {expected}"),
        ));
    }
    let (selection, path) = split_path(value);
    let path = path.map(|p| output_file(origin, p)).transpose()?;
    let invalid = |m: notation::Error| {
        Error::invalid(
            origin.to_string(),
            format!("invalid reference {selection:?}: {m}; {expected}"),
        )
    };
    if selection.starts_with(notation::SCHEME) {
        return match notation::parse(selection).map_err(invalid)? {
            Reference::File(record, file) => Ok((record, file, path)),
            _ => Err(invalid(notation::Error::NotFile)),
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
pub(super) fn single_value(reference: Reference, path: String) -> Secret {
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

/// A folder UID: 22 characters of URL-safe base64.
pub(super) fn folder_uid(origin: impl std::fmt::Display, uid: &str) -> Result<String> {
    let uid = uid.trim();
    if uid.len() != 22
        || !uid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid(
            origin.to_string(),
            format!(
                "invalid folder UID {uid:?}: expected 22 characters of letters, digits, '-' and '_'"
            ),
        ));
    }
    Ok(uid.to_owned())
}
