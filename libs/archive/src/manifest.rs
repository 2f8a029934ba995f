//! Where archives go and how they are described: the object key of a batch, the manifest
//! written beside it before its rows are deleted, and the checks of an archive against its
//! manifest.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Target;
use crate::error::Error;
use crate::object::read_checked;
use crate::pipeline::Options;

/// The record of one archived batch, written before its rows are deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub database: String,
    pub schema: String,
    pub table: String,
    pub object: String,
    pub sha256: String,
    pub rows: u64,
    pub bytes: u64,
    pub cutoff: String,
    /// `[timestamp, primary key]` of the first and last row, as PostgreSQL prints them.
    pub first: [String; 2],
    pub last: [String; 2],
    /// Every primary key in the batch, as text: exactly what is deleted.
    pub keys: Vec<String>,
}

/// The key prefix of a table's archives.
pub fn table_prefix(prefix: &str, target: &Target) -> String {
    let prefix = prefix.trim_matches('/');
    let base = format!("{}/{}.{}", target.database, target.schema, target.table);
    if prefix.is_empty() {
        base
    } else {
        format!("{prefix}/{base}")
    }
}

/// The key of the archive of the batch from `first` to `last` (`[timestamp, primary key]`).
pub(crate) fn object_key(table_prefix: &str, first: &[String; 2], last: &[String; 2]) -> String {
    // `2026-01-31 12:00:00.123+00` -> year, month, day, and a compact time for the name.
    let date = first[0].get(..10).unwrap_or("0000-00-00");
    let (year, month, day) = (
        date.get(..4).unwrap_or("0000"),
        date.get(5..7).unwrap_or("00"),
        date.get(8..10).unwrap_or("00"),
    );
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect()
    };
    // The key range makes the name unique; a hash of it keeps odd keys from colliding.
    let range = hex(&Sha256::digest(format!("{first:?}{last:?}").as_bytes()));
    format!(
        "{table_prefix}/year={year}/month={month}/day={day}/{}_{}-{}_{}.jsonl.gz",
        clean(&first[0]),
        clean(&first[1]),
        clean(&last[1]),
        &range[..12]
    )
}

/// Reads `key` back and checks its SHA-256 and its number of JSON lines, as a stream.
pub async fn verify_object(
    store: &dyn ObjectStore,
    key: &str,
    sha256: &str,
    rows: u64,
) -> Result<(), Error> {
    read_checked(store, key, sha256, rows).await
}

/// The manifests of `target`'s completed batches.
pub async fn manifests(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<Vec<Manifest>, Error> {
    let prefix = Path::from(table_prefix(&options.prefix, target));
    let mut names = Vec::new();
    let mut listing = store.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        let name = meta?.location.to_string();
        if name.ends_with(".manifest.json") {
            names.push(name);
        }
    }
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let data = store.get(&Path::from(name.clone())).await?.bytes().await?;
        out.push(serde_json::from_slice(&data).map_err(|e| Error::Verify {
            key: name,
            message: format!("unreadable manifest: {e}"),
        })?);
    }
    Ok(out)
}

/// Re-checks every archive of `target` against its manifest; returns how many were checked.
pub async fn verify_table(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<u64, Error> {
    let manifests = manifests(store, options, target).await?;
    for m in &manifests {
        verify_object(store, &m.object, &m.sha256, m.rows).await?;
    }
    Ok(manifests.len() as u64)
}

/// `bytes` as lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
