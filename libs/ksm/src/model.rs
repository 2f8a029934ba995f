//! What the client returns: decrypted records, files and folders.

use std::fmt;

use serde_json::Value;

use crate::crypto::Key;

/// What to fetch. `None` for both means every record shared with the application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Records by UID.
    pub records: Option<Vec<String>>,
    /// Shared folders or subfolders by UID, with all their records.
    pub folders: Option<Vec<String>>,
    /// Also fetch the folder tree (names and parents), for folder paths.
    pub folder_tree: bool,
}

/// The records and folders one fetch returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub records: Vec<Record>,
    /// Empty unless the query asked for the folder tree.
    pub folders: Vec<Folder>,
}

/// A decrypted record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Record {
    pub uid: String,
    pub title: String,
    pub record_type: String,
    /// The shared folder or subfolder that holds it, if any.
    pub folder_uid: Option<String>,
    pub notes: String,
    pub fields: Vec<Field>,
    pub custom: Vec<Field>,
    pub files: Vec<File>,
}

/// A standard or custom field. `Debug` hides the values.
#[derive(Clone, Default, PartialEq)]
pub struct Field {
    pub field_type: String,
    pub label: Option<String>,
    pub value: Vec<Value>,
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("field_type", &self.field_type)
            .field("label", &self.label)
            .field("values", &self.value.len())
            .finish()
    }
}

/// A file attachment; `Debug` hides its key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct File {
    pub uid: String,
    pub name: String,
    pub title: String,
    pub mime_type: String,
    pub size: u64,
    pub(crate) url: String,
    pub(crate) key: Key,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("uid", &self.uid)
            .field("name", &self.name)
            .field("title", &self.title)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// A folder of the application's folder tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folder {
    pub uid: String,
    pub parent_uid: Option<String>,
    pub name: String,
}
