//! Which Keeper records and values a [`SidecarSpec`] selects: the plan of the one batched
//! request a refresh makes ([`plan`]), and the resolution of every output file against the
//! records it returned ([`select`]).
//!
//! Records are found by UID, or by title (optionally inside a folder path); with
//! `strict-lookup` a title that matches several records is an error, otherwise the record with
//! the smallest UID wins, so that every refresh picks the same one (upstream took whichever
//! came first). Nothing here does IO: file attachments are named, and the caller downloads
//! them.

use std::collections::BTreeMap;

use bulwark_sidecar_spec::file_name;
use bulwark_sidecar_spec::{
    FileMode, FolderRef, Format, Index, RecordRef, Secret, Selector, SidecarSpec, Source,
};
use serde_json::Value;

/// A Keeper record as the sidecar reads it (the decrypted record data of KSM).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub uid: String,
    pub title: String,
    pub record_type: String,
    /// The shared folder or subfolder that holds the record, if any.
    pub folder_uid: Option<String>,
    pub notes: String,
    pub fields: Vec<Field>,
    pub custom: Vec<Field>,
    pub files: Vec<FileInfo>,
}

/// A standard or custom field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    pub field_type: String,
    pub label: Option<String>,
    pub value: Vec<Value>,
}

/// A file attachment's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileInfo {
    pub uid: String,
    pub name: String,
    pub title: String,
}

/// A folder, for resolving folder paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderInfo {
    pub uid: String,
    pub parent_uid: Option<String>,
    pub name: String,
}

/// What one refresh must ask Keeper for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every record is needed (some are named by title): ask for all the application sees.
    pub all_records: bool,
    /// Records by UID, when not `all_records`.
    pub record_uids: Vec<String>,
    /// Folders whose records are all needed, by UID, when not `all_records`.
    pub folder_uids: Vec<String>,
    /// Folder names are needed (folder paths), so the folder tree must be fetched too.
    pub folders: bool,
}

/// What an output file holds, before rendering.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Named values of a record (whole, or some fields), rendered in the secret's format.
    Values(BTreeMap<String, Value>),
    /// One value, from notation.
    Value(Value),
    /// A file attachment, to download.
    File {
        record_uid: String,
        file_uid: String,
    },
}

/// One output file, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Absolute path under the mount path.
    pub path: String,
    pub format: Format,
    pub template: Option<String>,
    pub env_prefix: Option<String>,
    pub mode: FileMode,
    pub content: Content,
    /// The record it came from, for logs (never its values).
    pub record_uid: String,
}

/// Why a secret cannot be resolved. Names the output path and the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{path}: no record {reference} is shared with this application")]
    NotFound { path: String, reference: String },
    #[error(
        "{path}: {count} records are titled {title:?} ({uids}); keeper.security/strict-lookup forbids choosing one: use a UID"
    )]
    Ambiguous {
        path: String,
        title: String,
        count: usize,
        uids: String,
    },
    #[error("{path}: record {uid} has no {what}")]
    Missing {
        path: String,
        uid: String,
        what: String,
    },
    #[error("{dir}: no folder {reference} is shared with this application")]
    FolderNotFound { dir: String, reference: String },
}

impl Error {
    /// A bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotFound { .. } | Error::FolderNotFound { .. } => "not_found",
            Error::Ambiguous { .. } => "ambiguous",
            Error::Missing { .. } => "missing_value",
        }
    }
}

/// Whether `name` is a record or folder UID (22 characters of URL-safe base64) rather than a
/// title.
pub fn is_uid(name: &str) -> bool {
    name.len() == 22
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The request a refresh makes for `spec`.
pub fn plan(spec: &SidecarSpec) -> Plan {
    let mut plan = Plan::default();
    for secret in &spec.secrets {
        let record = source_record(&secret.source);
        if is_uid(&record.name) && record.folder.is_empty() {
            plan.record_uids.push(record.name.clone());
        } else {
            plan.all_records = true;
            plan.folders |= !record.folder.is_empty();
        }
    }
    for folder in &spec.folders {
        match &folder.folder {
            FolderRef::Uid(uid) => plan.folder_uids.push(uid.clone()),
            FolderRef::Path(_) => {
                plan.all_records = true;
                plan.folders = true;
            }
        }
    }
    if plan.all_records {
        plan.record_uids.clear();
        plan.folder_uids.clear();
    }
    plan.record_uids.sort();
    plan.record_uids.dedup();
    plan.folder_uids.sort();
    plan.folder_uids.dedup();
    plan
}

fn source_record(source: &Source) -> &RecordRef {
    match source {
        Source::Record { record, .. }
        | Source::Notation { record, .. }
        | Source::File { record, .. } => record,
    }
}

/// Resolves every output of `spec` against `records` and `folders`.
pub fn select(
    spec: &SidecarSpec,
    records: &[Record],
    folders: &[FolderInfo],
) -> Result<Vec<Output>, Error> {
    let mut outputs = Vec::with_capacity(spec.secrets.len());
    for secret in &spec.secrets {
        outputs.push(secret_output(spec, secret, records, folders)?);
    }
    for folder in &spec.folders {
        let uid = match &folder.folder {
            FolderRef::Uid(uid) => uid.clone(),
            FolderRef::Path(path) => {
                folder_by_path(folders, path).ok_or_else(|| Error::FolderNotFound {
                    dir: folder.output_dir.clone(),
                    reference: format!("{:?}", path.join("/")),
                })?
            }
        };
        let mut members: Vec<&Record> = records
            .iter()
            .filter(|r| r.folder_uid.as_deref() == Some(uid.as_str()))
            .collect();
        members.sort_by(|a, b| a.title.cmp(&b.title).then(a.uid.cmp(&b.uid)));
        let mut used = BTreeMap::<String, usize>::new();
        for record in members {
            // Two records with one title in a folder get distinct files, in UID order.
            let base = file_name(&record.title, true);
            let n = used.entry(base.clone()).or_default();
            *n += 1;
            let name = if *n == 1 { base } else { format!("{base}-{n}") };
            outputs.push(Output {
                path: format!("{}/{name}.json", folder.output_dir.trim_end_matches('/')),
                format: Format::Json,
                template: None,
                env_prefix: None,
                mode: spec.file_mode,
                content: Content::Values(values(record, &[])),
                record_uid: record.uid.clone(),
            });
        }
    }
    Ok(outputs)
}

fn secret_output(
    spec: &SidecarSpec,
    secret: &Secret,
    records: &[Record],
    folders: &[FolderInfo],
) -> Result<Output, Error> {
    let path = &secret.path;
    let record = find(spec, path, source_record(&secret.source), records, folders)?;
    let content = match &secret.source {
        Source::Record { fields, .. } => {
            let map = values(record, fields);
            if let Some(missing) = fields.iter().find(|f| !map.contains_key(*f)) {
                return Err(Error::Missing {
                    path: path.clone(),
                    uid: record.uid.clone(),
                    what: format!("field {missing:?}"),
                });
            }
            Content::Values(map)
        }
        Source::Notation { selector, .. } => {
            Content::Value(notation(record, selector).ok_or_else(|| Error::Missing {
                path: path.clone(),
                uid: record.uid.clone(),
                what: describe(selector),
            })?)
        }
        Source::File { file, .. } => {
            let found = record
                .files
                .iter()
                .find(|f| f.name == *file || f.title == *file || f.uid == *file)
                .ok_or_else(|| Error::Missing {
                    path: path.clone(),
                    uid: record.uid.clone(),
                    what: format!("file attachment {file:?}"),
                })?;
            Content::File {
                record_uid: record.uid.clone(),
                file_uid: found.uid.clone(),
            }
        }
    };
    Ok(Output {
        path: path.clone(),
        format: secret.format,
        template: secret.template.clone(),
        env_prefix: secret.env_prefix.clone(),
        mode: secret.mode.unwrap_or(spec.file_mode),
        content,
        record_uid: record.uid.clone(),
    })
}

fn find<'r>(
    spec: &SidecarSpec,
    path: &str,
    reference: &RecordRef,
    records: &'r [Record],
    folders: &[FolderInfo],
) -> Result<&'r Record, Error> {
    let describe = || {
        if reference.folder.is_empty() {
            format!("{:?}", reference.name)
        } else {
            format!(
                "{:?} in folder {:?}",
                reference.name,
                reference.folder.join("/")
            )
        }
    };
    let not_found = || Error::NotFound {
        path: path.to_owned(),
        reference: describe(),
    };
    let folder = if reference.folder.is_empty() {
        None
    } else {
        Some(folder_by_path(folders, &reference.folder).ok_or_else(not_found)?)
    };
    let in_folder = |r: &&Record| folder.is_none() || r.folder_uid == folder;
    if is_uid(&reference.name)
        && let Some(record) = records
            .iter()
            .filter(in_folder)
            .find(|r| r.uid == reference.name)
    {
        return Ok(record);
    }
    let mut matches: Vec<&Record> = records
        .iter()
        .filter(in_folder)
        .filter(|r| r.title == reference.name)
        .collect();
    matches.sort_by(|a, b| a.uid.cmp(&b.uid));
    match matches.as_slice() {
        [] => Err(not_found()),
        [one] => Ok(one),
        [first, ..] if !spec.strict_lookup => Ok(first),
        many => Err(Error::Ambiguous {
            path: path.to_owned(),
            title: reference.name.clone(),
            count: many.len(),
            uids: many
                .iter()
                .map(|r| r.uid.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The UID of the folder at `path` (names from a top-level shared folder down).
fn folder_by_path(folders: &[FolderInfo], path: &[String]) -> Option<String> {
    let mut parent: Option<&str> = None;
    let mut found = None;
    for (depth, name) in path.iter().enumerate() {
        let next = folders.iter().find(|f| {
            f.name == *name
                && if depth == 0 {
                    // A top-level folder: no parent, or a parent we cannot see.
                    f.parent_uid
                        .as_deref()
                        .is_none_or(|p| !folders.iter().any(|g| g.uid == p))
                } else {
                    f.parent_uid.as_deref() == parent
                }
        })?;
        parent = Some(&next.uid);
        found = Some(next.uid.clone());
    }
    found
}

/// The field model: standard fields, then custom ones, each under its label or else its type;
/// a single value unwrapped, several as an array. A name that repeats gets `_2`, `_3`, ... so
/// that nothing is silently overwritten (upstream kept the last). The record's notes are added
/// as `notes` unless a field has that name. With `only`, just the named fields (by label, else
/// by type).
pub fn values(record: &Record, only: &[String]) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for field in record.fields.iter().chain(&record.custom) {
        let name = field
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
            .unwrap_or(&field.field_type);
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let mut key = name.to_owned();
        let mut n = 1;
        while out.contains_key(&key) {
            n += 1;
            key = format!("{name}_{n}");
        }
        out.insert(key, unwrap(&field.value));
    }
    if !record.notes.is_empty()
        && !out.contains_key("notes")
        && (only.is_empty() || only.iter().any(|o| o == "notes"))
    {
        out.insert("notes".to_owned(), Value::String(record.notes.clone()));
    }
    out
}

fn unwrap(values: &[Value]) -> Value {
    match values {
        [one] => one.clone(),
        many => Value::Array(many.to_vec()),
    }
}

/// The value Keeper notation selects, as the official SDKs define it: the first value unless
/// an index is given, `[]` for all of them, `[n]` for one, then an optional property of an
/// object value.
fn notation(record: &Record, selector: &Selector) -> Option<Value> {
    let (fields, name, index, property) = match selector {
        Selector::Type => return Some(Value::String(record.record_type.clone())),
        Selector::Title => return Some(Value::String(record.title.clone())),
        Selector::Notes => return Some(Value::String(record.notes.clone())),
        Selector::Field {
            name,
            index,
            property,
        } => (&record.fields, name, index, property),
        Selector::CustomField {
            name,
            index,
            property,
        } => (&record.custom, name, index, property),
    };
    // Standard fields are named by type, custom ones by label; either way works.
    let field = match selector {
        Selector::Field { .. } => fields
            .iter()
            .find(|f| f.field_type == *name)
            .or_else(|| fields.iter().find(|f| f.label.as_deref() == Some(name))),
        _ => fields
            .iter()
            .find(|f| f.label.as_deref() == Some(name))
            .or_else(|| fields.iter().find(|f| f.field_type == *name)),
    }?;
    let pick = |v: &Value| match property {
        Some(p) => v.get(p).cloned(),
        None => Some(v.clone()),
    };
    match index {
        Some(Index::All) => field
            .value
            .iter()
            .map(pick)
            .collect::<Option<Vec<_>>>()
            .map(Value::Array),
        Some(Index::At(i)) => pick(field.value.get(usize::try_from(*i).ok()?)?),
        None => pick(field.value.first()?),
    }
}

fn describe(selector: &Selector) -> String {
    match selector {
        Selector::Type => "type".to_owned(),
        Selector::Title => "title".to_owned(),
        Selector::Notes => "notes".to_owned(),
        Selector::Field {
            name,
            index,
            property,
        }
        | Selector::CustomField {
            name,
            index,
            property,
        } => {
            let kind = if matches!(selector, Selector::Field { .. }) {
                "field"
            } else {
                "custom field"
            };
            let index = match index {
                Some(Index::At(i)) => format!(" value {i}"),
                _ => String::new(),
            };
            let property = property
                .as_ref()
                .map(|p| format!(" property {p:?}"))
                .unwrap_or_default();
            format!("{kind} {name:?}{index}{property}")
        }
    }
}

#[cfg(test)]
mod tests;
