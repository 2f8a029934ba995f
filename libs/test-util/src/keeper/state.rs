//! The fake server's state: its key pair and key ids, the application with its key, records,
//! folders and files (each with its own key), the registered clients, the test controls, and
//! the request log; and how records and folders are encrypted into the wire shapes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use p256::{PublicKey, SecretKey};
use serde_json::{Map, Value, json};

use super::crypto::{self, Key};
use super::model::{Folder, Record};
use super::{ApiRequest, Error};

/// The key id the server starts with, outside the SDKs' built-in table (1 to 18), so that no
/// client can reach it through a built-in key by accident.
pub(crate) const FIRST_KEY_ID: u32 = 100;

/// How deep a folder tree may nest; deeper (or cyclic) parent chains are rejected.
const MAX_FOLDER_DEPTH: usize = 32;

/// The server's state, behind one mutex.
pub(crate) struct State {
    pub(crate) server_key: SecretKey,
    /// Every key id the server has used, oldest first; the last one is current.
    pub(crate) key_ids: Vec<u32>,
    pub(crate) app: App,
    pub(crate) records: BTreeMap<String, StoredRecord>,
    /// Folders in insertion order, which keeps parents before their children.
    pub(crate) folders: Vec<StoredFolder>,
    /// Clients by client id.
    pub(crate) clients: HashMap<String, Client>,
    pub(crate) throttle: usize,
    pub(crate) retry_after: Duration,
    pub(crate) unavailable: bool,
    pub(crate) log: Vec<ApiRequest>,
    /// `https://HOST[:PORT]`, the base of file download URLs.
    pub(crate) base_url: String,
    next_revision: i64,
}

/// The application the clients are bound to.
pub(crate) struct App {
    pub(crate) key: Key,
    pub(crate) title: String,
    /// The owner's key pair; clients only ever see its public half (`appOwnerPublicKey`).
    pub(crate) owner: SecretKey,
}

pub(crate) struct StoredRecord {
    pub(crate) record: Record,
    pub(crate) key: Key,
    pub(crate) revision: i64,
    /// File keys and download tokens by file UID.
    pub(crate) files: BTreeMap<String, StoredFile>,
}

#[derive(Clone)]
pub(crate) struct StoredFile {
    pub(crate) key: Key,
    /// The unguessable last segment of the file's download URL.
    pub(crate) download: String,
}

pub(crate) struct StoredFolder {
    pub(crate) folder: Folder,
    pub(crate) key: Key,
}

/// A client: a minted one-time token, bound once it has sent its public key.
pub(crate) struct Client {
    /// The one-time token's bytes; it encrypts the application key in the binding response.
    pub(crate) token: Key,
    pub(crate) public_key: Option<PublicKey>,
    /// The last key rotation this client has been told about (an index into `key_ids`).
    pub(crate) told_rotation: usize,
}

impl State {
    pub(crate) fn new(base_url: String, app_title: &str) -> State {
        State {
            server_key: crypto::random_secret_key(),
            key_ids: vec![FIRST_KEY_ID],
            app: App {
                key: crypto::random_key(),
                title: app_title.to_owned(),
                owner: crypto::random_secret_key(),
            },
            records: BTreeMap::new(),
            folders: Vec::new(),
            clients: HashMap::new(),
            throttle: 0,
            retry_after: Duration::ZERO,
            unavailable: false,
            log: Vec::new(),
            base_url,
            next_revision: 1,
        }
    }

    /// The key id clients should send now.
    pub(crate) fn current_key_id(&self) -> u32 {
        // `key_ids` starts with one id and only grows.
        self.key_ids.last().copied().unwrap_or(FIRST_KEY_ID)
    }

    /// The index of the current rotation in `key_ids`.
    pub(crate) fn rotation(&self) -> usize {
        self.key_ids.len() - 1
    }

    /// Mints a one-time token: 32 random bytes, URL-safe base64 without padding.
    pub(crate) fn mint_token(&mut self) -> String {
        let token = crypto::random_key();
        let rotation = self.rotation();
        self.clients.insert(
            crypto::client_id(&token),
            Client {
                token,
                public_key: None,
                told_rotation: rotation,
            },
        );
        crypto::url_b64(&token)
    }

    /// Stores or replaces a record. A replaced record keeps its key and its files' keys, as in
    /// a real vault, and gets a new revision.
    pub(crate) fn set_record(&mut self, record: Record) -> Result<(), Error> {
        if let Some(folder) = &record.folder
            && !self.folders.iter().any(|f| &f.folder.uid == folder)
        {
            return Err(Error::UnknownFolder {
                uid: folder.clone(),
            });
        }
        let revision = self.bump_revision();
        let previous = self.records.remove(&record.uid);
        let key = previous.as_ref().map_or_else(crypto::random_key, |p| p.key);
        let files = record
            .files
            .iter()
            .map(|file| {
                let stored = previous
                    .as_ref()
                    .and_then(|p| p.files.get(&file.uid).cloned())
                    .unwrap_or_else(|| StoredFile {
                        key: crypto::random_key(),
                        download: crypto::url_b64(&crypto::random_bytes::<16>()),
                    });
                (file.uid.clone(), stored)
            })
            .collect();
        tracing::debug!(uid = %record.uid, revision, "Fake Keeper stored a record.");
        self.records.insert(
            record.uid.clone(),
            StoredRecord {
                record,
                key,
                revision,
                files,
            },
        );
        Ok(())
    }

    /// Replaces the values of the field `selector` names (label first, then type; standard
    /// fields before custom ones).
    pub(crate) fn update_field(
        &mut self,
        uid: &str,
        selector: &str,
        value: Vec<Value>,
    ) -> Result<(), Error> {
        // The revision is only used up once the field is found.
        let revision = self.next_revision;
        let stored = self
            .records
            .get_mut(uid)
            .ok_or_else(|| Error::UnknownRecord {
                uid: uid.to_owned(),
            })?;
        let field = stored
            .record
            .field_mut(selector)
            .ok_or_else(|| Error::UnknownField {
                uid: uid.to_owned(),
                selector: selector.to_owned(),
            })?;
        field.value = value;
        stored.revision = revision;
        self.next_revision += 1;
        tracing::debug!(%uid, revision, "Fake Keeper updated a field.");
        Ok(())
    }

    pub(crate) fn set_folder(&mut self, folder: Folder) -> Result<(), Error> {
        if let Some(parent) = &folder.parent {
            if !self.folders.iter().any(|f| &f.folder.uid == parent) {
                return Err(Error::UnknownFolder {
                    uid: parent.clone(),
                });
            }
            if self.root_of(parent).is_none() {
                return Err(Error::FolderTooDeep {
                    uid: folder.uid.clone(),
                });
            }
        }
        match self.folders.iter_mut().find(|f| f.folder.uid == folder.uid) {
            // Renaming keeps the key; moving a folder is not modelled, so the parent stays.
            Some(stored) => stored.folder.name = folder.name,
            None => self.folders.push(StoredFolder {
                folder,
                key: crypto::random_key(),
            }),
        }
        Ok(())
    }

    fn bump_revision(&mut self) -> i64 {
        let revision = self.next_revision;
        self.next_revision += 1;
        revision
    }

    fn folder(&self, uid: &str) -> Option<&StoredFolder> {
        self.folders.iter().find(|f| f.folder.uid == uid)
    }

    /// The shared folder at the root of `uid`'s tree (itself for a shared folder).
    pub(crate) fn root_of(&self, uid: &str) -> Option<&StoredFolder> {
        let mut folder = self.folder(uid)?;
        for _ in 0..MAX_FOLDER_DEPTH {
            match &folder.folder.parent {
                None => return Some(folder),
                Some(parent) => folder = self.folder(parent)?,
            }
        }
        None
    }

    /// The `get_secret` response for a bound client: directly shared records, then shared
    /// folders with their records, filtered by `requestedRecords` and `requestedFolders`.
    ///
    /// A filter selects the records it names; with both, a record named by either is returned.
    pub(crate) fn secrets_response(
        &self,
        requested_records: Option<&[String]>,
        requested_folders: Option<&[String]>,
    ) -> Map<String, Value> {
        let filtered = requested_records.is_some() || requested_folders.is_some();
        let folder_wanted = |uid: &str| {
            requested_folders.is_some_and(|wanted| {
                wanted.iter().any(|w| w == uid)
                    || self
                        .root_of(uid)
                        .is_some_and(|root| wanted.contains(&root.folder.uid))
            })
        };
        let wanted = |stored: &StoredRecord| {
            !filtered
                || requested_records.is_some_and(|r| r.contains(&stored.record.uid))
                || stored.record.folder.as_deref().is_some_and(folder_wanted)
        };

        let records: Vec<Value> = self
            .records
            .values()
            .filter(|stored| stored.record.folder.is_none() && wanted(stored))
            .map(|stored| self.record_entry(stored, &self.app.key, None))
            .collect();

        let mut folders = Vec::new();
        for root in self.folders.iter().filter(|f| f.folder.parent.is_none()) {
            let members: Vec<Value> = self
                .records
                .values()
                .filter(|stored| wanted(stored))
                .filter_map(|stored| {
                    let folder = stored.record.folder.as_deref()?;
                    let in_root = self.root_of(folder)?.folder.uid == root.folder.uid;
                    let inner = (folder != root.folder.uid).then_some(folder);
                    in_root.then(|| self.record_entry(stored, &root.key, inner))
                })
                .collect();
            if filtered && members.is_empty() && !folder_wanted(&root.folder.uid) {
                continue;
            }
            folders.push(json!({
                "folderUid": root.folder.uid,
                "folderKey": crypto::std_b64(&crypto::gcm_encrypt(&self.app.key, &root.key)),
                "name": root.folder.name,
                "records": members,
            }));
        }

        let app_data = json!({"title": self.app.title, "type": "General"}).to_string();
        let mut response = Map::new();
        response.insert(
            "appData".into(),
            crypto::url_b64(&crypto::gcm_encrypt(&self.app.key, app_data.as_bytes())).into(),
        );
        response.insert("records".into(), records.into());
        response.insert("folders".into(), folders.into());
        response
    }

    /// One record as `get_secret` sends it. `wrapping_key` encrypts the record key: the
    /// application key for a direct share, the shared folder's key for a folder member.
    fn record_entry(
        &self,
        stored: &StoredRecord,
        wrapping_key: &Key,
        inner_folder: Option<&str>,
    ) -> Value {
        let record = &stored.record;
        let mut entry = Map::new();
        entry.insert("recordUid".into(), record.uid.clone().into());
        // Without a `recordKey` the SDKs use the wrapping key as the record key.
        let record_key = if record.no_record_key {
            wrapping_key
        } else {
            let sealed = crypto::gcm_encrypt(wrapping_key, &stored.key);
            entry.insert("recordKey".into(), crypto::std_b64(&sealed).into());
            &stored.key
        };
        let data = record.data_json().to_string();
        entry.insert(
            "data".into(),
            crypto::std_b64(&crypto::gcm_encrypt(record_key, data.as_bytes())).into(),
        );
        entry.insert("revision".into(), stored.revision.into());
        entry.insert("isEditable".into(), false.into());
        // Folder members carry no `folderUid`: the SDKs take it from the enclosing shared
        // folder, and name a subfolder through `innerFolderUid`.
        if let Some(inner) = inner_folder {
            entry.insert("innerFolderUid".into(), inner.into());
        }
        let files: Vec<Value> = record
            .files
            .iter()
            .filter_map(|file| {
                let keys = stored.files.get(&file.uid)?;
                let metadata = file.metadata_json().to_string();
                Some(json!({
                    "fileUid": file.uid,
                    "fileKey": crypto::std_b64(&crypto::gcm_encrypt(record_key, &keys.key)),
                    "data": crypto::std_b64(&crypto::gcm_encrypt(&keys.key, metadata.as_bytes())),
                    "url": format!("{}/files/{}", self.base_url, keys.download),
                    "thumbnailUrl": Value::Null,
                }))
            })
            .collect();
        entry.insert("files".into(), files.into());
        Value::Object(entry)
    }

    /// The `get_folders` response: every folder, parents before children. A shared folder's
    /// key is AES-GCM'd with the application key; a subfolder's key is AES-CBC'd with its shared
    /// folder's key; `data` is AES-CBC of `{"name"}` with the folder's own key.
    pub(crate) fn folders_response(&self) -> Map<String, Value> {
        let folders: Vec<Value> = self
            .folders
            .iter()
            .filter_map(|stored| {
                let root = self.root_of(&stored.folder.uid)?;
                let (folder_key, parent) = match &stored.folder.parent {
                    None => (crypto::gcm_encrypt(&self.app.key, &stored.key), ""),
                    Some(parent) => (crypto::cbc_encrypt(&root.key, &stored.key), parent.as_str()),
                };
                let data = crypto::cbc_encrypt(&stored.key, &folder_name_json(&stored.folder.name));
                Some(json!({
                    "folderUid": stored.folder.uid,
                    "folderKey": crypto::std_b64(&folder_key),
                    "parent": parent,
                    "data": crypto::std_b64(&data),
                }))
            })
            .collect();
        let mut response = Map::new();
        response.insert("folders".into(), folders.into());
        response
    }

    /// The encrypted content of the file whose download token is `download`.
    pub(crate) fn download(&self, download: &str) -> Option<(&str, Vec<u8>)> {
        self.records.values().find_map(|stored| {
            let (uid, keys) = stored.files.iter().find(|(_, f)| f.download == download)?;
            let file = stored.record.files.iter().find(|f| &f.uid == uid)?;
            Some((
                file.uid.as_str(),
                crypto::gcm_encrypt(&keys.key, &file.content),
            ))
        })
    }
}

/// `{"name": ...}` padded with trailing spaces so that its AES-CBC encryption (16-byte IV plus
/// whole blocks) is a multiple of 3 bytes long, and so its base64 has no `=` padding.
///
/// The official Rust crate decodes a folder's `data` twice, once requiring padding and once
/// refusing it; only an unpadded-length encoding satisfies both. JSON allows the spaces.
fn folder_name_json(name: &str) -> Vec<u8> {
    let mut json = json!({ "name": name }).to_string().into_bytes();
    while !(16 + 16 * (json.len() / 16 + 1)).is_multiple_of(3) {
        json.push(b' ');
    }
    json
}
