//! What a fake Keeper application holds, as tests build it: records with standard and custom
//! fields, notes and file attachments, shared folders and their subfolders.
//!
//! These are plain values; the server gives each record, folder and file its own key when it
//! stores them (see `state.rs`) and encrypts them into the wire shapes on every response.

use serde_json::{Map, Value, json};

use super::crypto;

/// One field of a record, standard (`fields`) or custom (`custom`): `{"type", "label"?, "value"}`.
///
/// Values are JSON: strings for most types, objects for complex ones (`name` is
/// `{"first", "middle", "last"}`, `phone` is `{"number", "type", ...}`, `host` is
/// `{"hostName", "port"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub field_type: String,
    pub label: Option<String>,
    pub value: Vec<Value>,
}

/// A file attached to a record; its content is served, encrypted with its own key, from a
/// download URL on the same server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub uid: String,
    pub name: String,
    pub title: String,
    pub mime_type: String,
    pub content: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub last_modified: i64,
}

/// A record shared with the application, directly or through a shared folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub uid: String,
    pub title: String,
    pub record_type: String,
    pub notes: Option<String>,
    pub fields: Vec<Field>,
    pub custom: Vec<Field>,
    pub files: Vec<File>,
    /// The shared folder or subfolder the record lives in; `None` shares it directly.
    pub folder: Option<String>,
    /// Whether the record's data is encrypted with the key that would wrap its record key (the
    /// application key, or a folder member's shared folder key), so that the response carries
    /// no `recordKey`, as for a "single record share".
    pub no_record_key: bool,
}

/// A shared folder (no parent) or a subfolder of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub uid: String,
    pub name: String,
    pub parent: Option<String>,
}

impl Field {
    /// A field without a label.
    pub fn new<V: Into<Value>>(field_type: &str, value: impl IntoIterator<Item = V>) -> Field {
        Field {
            field_type: field_type.to_owned(),
            label: None,
            value: value.into_iter().map(Into::into).collect(),
        }
    }

    /// A field with a label, as custom fields usually have.
    pub fn labeled<V: Into<Value>>(
        field_type: &str,
        label: &str,
        value: impl IntoIterator<Item = V>,
    ) -> Field {
        Field {
            label: Some(label.to_owned()),
            ..Field::new(field_type, value)
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut field = Map::new();
        field.insert("type".into(), self.field_type.clone().into());
        if let Some(label) = &self.label {
            field.insert("label".into(), label.clone().into());
        }
        field.insert("value".into(), Value::Array(self.value.clone()));
        Value::Object(field)
    }
}

impl File {
    /// A file with a random UID, titled by its name, of type `application/octet-stream`.
    pub fn new(name: &str, content: impl Into<Vec<u8>>) -> File {
        File {
            uid: new_uid(),
            name: name.to_owned(),
            title: name.to_owned(),
            mime_type: "application/octet-stream".to_owned(),
            content: content.into(),
            last_modified: 1_700_000_000_000,
        }
    }

    pub fn with_uid(mut self, uid: &str) -> File {
        self.uid = uid.to_owned();
        self
    }

    pub fn with_title(mut self, title: &str) -> File {
        self.title = title.to_owned();
        self
    }

    pub fn with_mime_type(mut self, mime_type: &str) -> File {
        self.mime_type = mime_type.to_owned();
        self
    }

    /// The metadata the file's `data` carries (`KeeperFile` in the SDKs).
    pub(crate) fn metadata_json(&self) -> Value {
        json!({
            "name": self.name,
            "title": self.title,
            "type": self.mime_type,
            "size": self.content.len(),
            "lastModified": self.last_modified,
        })
    }
}

impl Record {
    /// A record of `record_type` (`login`, `databaseCredentials`, `file`, ...) with a random UID.
    pub fn new(record_type: &str, title: &str) -> Record {
        Record {
            uid: new_uid(),
            title: title.to_owned(),
            record_type: record_type.to_owned(),
            notes: None,
            fields: Vec::new(),
            custom: Vec::new(),
            files: Vec::new(),
            folder: None,
            no_record_key: false,
        }
    }

    /// A `login` record with `login` and `password` fields, the commonest shape.
    pub fn login(title: &str, login: &str, password: &str) -> Record {
        Record::new("login", title)
            .field(Field::new("login", [login]))
            .field(Field::new("password", [password]))
    }

    pub fn with_uid(mut self, uid: &str) -> Record {
        self.uid = uid.to_owned();
        self
    }

    /// Adds a standard field.
    pub fn field(mut self, field: Field) -> Record {
        self.fields.push(field);
        self
    }

    /// Adds a custom field.
    pub fn custom(mut self, field: Field) -> Record {
        self.custom.push(field);
        self
    }

    pub fn notes(mut self, notes: &str) -> Record {
        self.notes = Some(notes.to_owned());
        self
    }

    /// Attaches a file; the record's `fileRef` field lists it.
    pub fn file(mut self, file: File) -> Record {
        self.files.push(file);
        self
    }

    /// Puts the record in a shared folder or subfolder, which must exist when it is stored.
    pub fn in_folder(mut self, folder_uid: &str) -> Record {
        self.folder = Some(folder_uid.to_owned());
        self
    }

    /// Encrypts the record's data with the application key (a shared folder's key for a folder
    /// member) and sends no `recordKey`.
    pub fn without_record_key(mut self) -> Record {
        self.no_record_key = true;
        self
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The record as the SDKs decrypt it: `{"title", "type", "fields", "custom", "notes"?}`,
    /// with a `fileRef` field listing the attachments unless one is already there.
    pub(crate) fn data_json(&self) -> Value {
        let mut fields: Vec<Value> = self.fields.iter().map(Field::to_json).collect();
        let has_file_ref = self.fields.iter().any(|f| f.field_type == "fileRef");
        if !self.files.is_empty() && !has_file_ref {
            let uids = self.files.iter().map(|f| Value::from(f.uid.clone()));
            fields.push(Field::new("fileRef", uids).to_json());
        }
        let mut data = Map::new();
        data.insert("title".into(), self.title.clone().into());
        data.insert("type".into(), self.record_type.clone().into());
        data.insert("fields".into(), Value::Array(fields));
        data.insert(
            "custom".into(),
            self.custom.iter().map(Field::to_json).collect(),
        );
        if let Some(notes) = &self.notes {
            data.insert("notes".into(), notes.clone().into());
        }
        Value::Object(data)
    }

    /// The first field, standard then custom, that `selector` names (label, then type).
    pub(crate) fn field_mut(&mut self, selector: &str) -> Option<&mut Field> {
        let by_label = |f: &Field| f.label.as_deref() == Some(selector);
        let by_type = |f: &Field| f.field_type.eq_ignore_ascii_case(selector);
        // Labels win over types, as in the SDKs' field search.
        if let Some(i) = self.fields.iter().position(by_label) {
            return self.fields.get_mut(i);
        }
        if let Some(i) = self.custom.iter().position(by_label) {
            return self.custom.get_mut(i);
        }
        if let Some(i) = self.fields.iter().position(by_type) {
            return self.fields.get_mut(i);
        }
        self.custom.iter_mut().find(|f| by_type(f))
    }
}

impl Folder {
    /// A shared folder with a random UID.
    pub fn shared(name: &str) -> Folder {
        Folder {
            uid: new_uid(),
            name: name.to_owned(),
            parent: None,
        }
    }

    /// A subfolder of `parent_uid` (a shared folder or another subfolder) with a random UID.
    pub fn subfolder(name: &str, parent_uid: &str) -> Folder {
        Folder {
            parent: Some(parent_uid.to_owned()),
            ..Folder::shared(name)
        }
    }

    pub fn with_uid(mut self, uid: &str) -> Folder {
        self.uid = uid.to_owned();
        self
    }

    pub fn uid(&self) -> &str {
        &self.uid
    }
}

/// A random Keeper UID: 16 bytes in URL-safe base64 without padding, 22 characters, the shape the
/// SDKs' notation code recognises as a UID rather than a title.
pub fn new_uid() -> String {
    crypto::url_b64(&crypto::random_bytes::<16>())
}
