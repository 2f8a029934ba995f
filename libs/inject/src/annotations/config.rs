//! The `keeper.security/config` annotation: a YAML document of `secrets:` and `folders:`
//! (level 5 of the upstream docs), for what the simple annotations cannot say.

use std::collections::BTreeMap;

use bulwark_sidecar_spec::{FileMode, Folder, FolderRef, Format, RecordRef, Secret, Source};
use serde::Deserialize;

use super::names::first_line;
use super::parser::Parser;
use super::paths::{Origin, Outputs, default_output_path, output_dir, output_file};
use super::secrets::{folder_uid, single_value};
use super::{ENV_VARS_REASON, K8S_SECRET_REASON, key};
use crate::notation::{self, Reference};
use crate::{Error, MOUNT_PATH, Result};

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
    /// `keeper.security/config`, the YAML document of level 5 upstream.
    pub(super) fn config(&mut self, out: &mut Outputs<'a>) -> Result<()> {
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
            let origin = Origin::ConfigSecret(i);
            let secret = config_secret(&origin.to_string(), &config, i, s, &mut self.warnings)?;
            out.push_secret((origin, secret));
        }
        for (i, f) in doc.folders.into_iter().enumerate() {
            let origin = Origin::ConfigFolder(i);
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
                (Some(uid), None) => FolderRef::Uid(folder_uid(origin, &uid)?),
                (None, Some(path)) => {
                    FolderRef::Path(notation::folder_path(&path).map_err(|m| {
                        Error::invalid(origin.to_string(), format!("path {path:?}: {m}"))
                    })?)
                }
                _ => {
                    return Err(Error::invalid(
                        origin.to_string(),
                        "expected exactly one of uid and path (or its alias folderPath)",
                    ));
                }
            };
            let output_dir = match f.output_path {
                Some(dir) => output_dir(at("outputPath").as_str(), &dir)?,
                None => MOUNT_PATH.to_owned(),
            };
            out.push_folder((origin, Folder { folder, output_dir }));
        }
        Ok(())
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
        Some(path) => output_file(at("path").as_str(), path.trim())?,
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
