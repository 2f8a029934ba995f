//! Where archives go and how they are described: the object key of a batch, the manifest
//! written before its rows are deleted, and the checks of an archive against its manifest.
//!
//! A table's prefix holds its data and nothing else where query engines look: data objects
//! under `year=/month=/day=/`, and the archiver's own state (manifests and completion
//! markers) under `_manifests/`, which Athena, Spark, Trino and Hive skip as a hidden
//! directory (a name starting with `_`). Archives of versions that wrote manifests beside
//! their objects are still read.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Target;
use crate::error::Error;
use crate::object::read_checked;
use crate::pipeline::Options;

/// The version of the archive format that manifests record: 1 wrote every type but numbers,
/// booleans and JSON as its PostgreSQL text and SQL NULL as `null` everywhere; 2 writes typed
/// JSON (timestamps RFC 3339, numerics as exact strings, bytea base64, arrays JSON arrays) and
/// leaves SQL NULL `json`/`jsonb`/array columns out of the line. Restore reads both.
pub const FORMAT: u32 = 2;

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
    /// The table's columns when the batch was read: `[name, type]`, the type as
    /// `format_type` prints it (empty in archives of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<[String; 2]>,
}

/// The key prefix of a table's archives, as the object store names it (empty segments
/// dropped and unusual characters percent-encoded, as `object_store::Path` does), so that
/// keys derived from it match the names a listing returns.
pub fn table_prefix(prefix: &str, target: &Target) -> String {
    let prefix = prefix.trim_matches('/');
    let base = format!("{}/{}.{}", target.database, target.schema, target.table);
    let full = if prefix.is_empty() {
        base
    } else {
        format!("{prefix}/{base}")
    };
    Path::from(full.as_str()).to_string()
}

/// The folder of a table's manifests and completion markers, under its prefix.
pub const STATE_DIR: &str = "_manifests";

/// The key of the manifest of the archive `object` in the table under `table_prefix`.
pub(crate) fn manifest_key(table_prefix: &str, object: &str) -> String {
    format!("{}.manifest.json", state_key(table_prefix, object))
}

/// The key of the completion marker of a batch whose manifest is `manifest_key`.
pub(crate) fn marker_key(manifest_key: &str) -> String {
    format!(
        "{}.done",
        manifest_key
            .strip_suffix(".manifest.json")
            .unwrap_or(manifest_key)
    )
}

/// `object`'s place in the state folder: `<table>/_manifests/year=.../<name>`.
fn state_key(table_prefix: &str, object: &str) -> String {
    let relative = object
        .strip_prefix(table_prefix)
        .map_or(object, |r| r.trim_start_matches('/'));
    format!("{table_prefix}/{STATE_DIR}/{relative}")
}

/// What a listing of a table's prefix holds.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Data objects (`.jsonl.gz` or `.jsonl.zst` outside the state folder).
    pub(crate) objects: Vec<String>,
    /// Manifests, in either layout.
    pub(crate) manifests: Vec<String>,
    /// Every key, for lookups.
    pub(crate) all: std::collections::BTreeSet<String>,
}

impl Listing {
    /// Lists everything under `table_prefix`.
    pub(crate) async fn of(store: &dyn ObjectStore, table_prefix: &str) -> Result<Self, Error> {
        let mut listing = Listing::default();
        let mut stream = store.list(Some(&Path::from(table_prefix)));
        while let Some(meta) = stream.next().await {
            let name = meta?.location.to_string();
            if name.ends_with(".manifest.json") {
                listing.manifests.push(name.clone());
            } else if (name.ends_with(".jsonl.gz") || name.ends_with(".jsonl.zst"))
                && !name.contains(&format!("/{STATE_DIR}/"))
            {
                listing.objects.push(name.clone());
            }
            listing.all.insert(name);
        }
        listing.manifests.sort();
        listing.objects.sort();
        Ok(listing)
    }

    /// The manifest of the table's most recent batch: the last by object name (which starts
    /// with the batch's first timestamp), whichever layout it is in.
    pub(crate) fn latest_manifest(&self) -> Option<&String> {
        let relative = |name: &String| name.replacen(&format!("/{STATE_DIR}/"), "/", 1);
        self.manifests.iter().max_by_key(|name| relative(name))
    }

    /// The data objects that no manifest records, in either layout: uploads of runs that
    /// crashed before writing the manifest (no row was deleted on their strength).
    pub(crate) fn unrecorded(&self, table_prefix: &str) -> Vec<&String> {
        self.objects
            .iter()
            .filter(|object| {
                !self.all.contains(&manifest_key(table_prefix, object))
                    && !self.all.contains(&format!("{object}.manifest.json"))
            })
            .collect()
    }
}

/// The key of the archive of the batch from `first` to `last` (`[timestamp, primary key]`).
pub(crate) fn object_key(
    table_prefix: &str,
    first: &[String; 2],
    last: &[String; 2],
    codec: crate::object::Codec,
) -> String {
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
        "{table_prefix}/year={year}/month={month}/day={day}/{}_{}-{}_{}.{}",
        clean(&first[0]),
        clean(&first[1]),
        clean(&last[1]),
        &range[..12],
        codec.extension()
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

/// The manifests of `target`'s batches, in either layout.
pub async fn manifests(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<Vec<Manifest>, Error> {
    let listing = Listing::of(store, &table_prefix(&options.prefix, target)).await?;
    let mut out = Vec::new();
    for name in listing.manifests {
        out.push(read_manifest(store, &name).await?);
    }
    Ok(out)
}

/// The manifest stored at `name`.
pub(crate) async fn read_manifest(store: &dyn ObjectStore, name: &str) -> Result<Manifest, Error> {
    let data = store.get(&Path::from(name)).await?.bytes().await?;
    serde_json::from_slice(&data).map_err(|e| Error::Verify {
        key: name.to_owned(),
        message: format!("unreadable manifest: {e}"),
    })
}

/// Re-checks every archive of `target` against its manifest, and that every data object has
/// one (an unrecorded object would be read twice by a query engine); returns how many
/// archives were checked.
pub async fn verify_table(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<u64, Error> {
    let prefix = table_prefix(&options.prefix, target);
    let listing = Listing::of(store, &prefix).await?;
    let unrecorded = listing.unrecorded(&prefix);
    if let Some(first) = unrecorded.first() {
        return Err(Error::Verify {
            key: (*first).clone(),
            message: format!(
                "{} data object(s) under {prefix} have no manifest: uploads of an interrupted run, whose rows are still in the table; the next archiver run removes them",
                unrecorded.len()
            ),
        });
    }
    for name in &listing.manifests {
        let m = read_manifest(store, name).await?;
        verify_object(store, &m.object, &m.sha256, m.rows).await?;
    }
    Ok(listing.manifests.len() as u64)
}

/// `bytes` as lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
