//! Access to Keeper as a refresh cycle uses it, behind two small traits so that the cycle and
//! the loops are tested without TLS or a server ([`Connect`] makes a [`Keeper`] from a KSM
//! configuration). [`Ksm`] is the real one, over `bulwark_ksm::Client`.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bulwark_ksm::{Client, KsmConfig, Options, Query};

use crate::select;

/// What one fetch returned, as selection reads it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    pub records: Vec<select::Record>,
    /// Empty unless the query asked for the folder tree.
    pub folders: Vec<select::FolderInfo>,
}

/// One Keeper application, as a refresh cycle uses it.
#[async_trait]
pub trait Keeper: Send + Sync + fmt::Debug {
    /// The records and folders `query` asks for, in one request.
    async fn fetch(&self, query: &Query) -> Result<Fetched, bulwark_ksm::Error>;

    /// The content of file `file_uid` of record `record_uid`, as the last fetch returned it.
    async fn download(
        &self,
        record_uid: &str,
        file_uid: &str,
    ) -> Result<Vec<u8>, bulwark_ksm::Error>;

    /// The configuration as it is now: bound once a one-time token was used.
    fn config(&self) -> KsmConfig;
}

/// Makes the [`Keeper`] of a configuration.
pub trait Connect: Send + Sync + fmt::Debug {
    fn connect(&self, config: KsmConfig) -> Result<Arc<dyn Keeper>, bulwark_ksm::Error>;
}

/// The real Keeper, through our KSM client.
#[derive(Debug)]
pub struct Ksm {
    pub options: Options,
}

impl Connect for Ksm {
    fn connect(&self, config: KsmConfig) -> Result<Arc<dyn Keeper>, bulwark_ksm::Error> {
        Ok(Arc::new(KsmKeeper {
            client: Client::new(config, &self.options)?,
            files: Mutex::new(Vec::new()),
        }))
    }
}

/// A client, and the attachments of its last fetch (their keys and addresses are needed to
/// download them).
#[derive(Debug)]
struct KsmKeeper {
    client: Client,
    files: Mutex<Vec<(String, bulwark_ksm::File)>>,
}

#[async_trait]
impl Keeper for KsmKeeper {
    async fn fetch(&self, query: &Query) -> Result<Fetched, bulwark_ksm::Error> {
        let snapshot = self.client.fetch(query).await?;
        *self.files.lock().unwrap_or_else(PoisonError::into_inner) = snapshot
            .records
            .iter()
            .flat_map(|r| r.files.iter().map(|f| (r.uid.clone(), f.clone())))
            .collect();
        Ok(Fetched {
            records: snapshot.records.iter().map(convert).collect(),
            folders: snapshot
                .folders
                .iter()
                .map(|f| select::FolderInfo {
                    uid: f.uid.clone(),
                    parent_uid: f.parent_uid.clone(),
                    name: f.name.clone(),
                })
                .collect(),
        })
    }

    async fn download(
        &self,
        record_uid: &str,
        file_uid: &str,
    ) -> Result<Vec<u8>, bulwark_ksm::Error> {
        let file = self
            .files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(record, file)| record == record_uid && file.uid == file_uid)
            .map(|(_, file)| file.clone());
        match file {
            Some(file) => self.client.download(&file).await,
            // Selection only names files of the last fetch.
            None => Err(bulwark_ksm::Error::Protocol {
                endpoint: "download".to_owned(),
                message: format!("file {file_uid} of record {record_uid} was not fetched"),
            }),
        }
    }

    fn config(&self) -> KsmConfig {
        self.client.config()
    }
}

/// A KSM record as selection reads it.
fn convert(record: &bulwark_ksm::Record) -> select::Record {
    let fields = |fields: &[bulwark_ksm::Field]| {
        fields
            .iter()
            .map(|f| select::Field {
                field_type: f.field_type.clone(),
                label: f.label.clone(),
                value: f.value.clone(),
            })
            .collect()
    };
    select::Record {
        uid: record.uid.clone(),
        title: record.title.clone(),
        record_type: record.record_type.clone(),
        folder_uid: record.folder_uid.clone(),
        notes: record.notes.clone(),
        fields: fields(&record.fields),
        custom: fields(&record.custom),
        files: record
            .files
            .iter()
            .map(|f| select::FileInfo {
                uid: f.uid.clone(),
                name: f.name.clone(),
                title: f.title.clone(),
            })
            .collect(),
    }
}
