//! Storing a batch: the upload (create-only, or multipart when spilled), the read-back
//! verification and the manifest, before anything is deleted.

use std::time::Instant;

use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutPayload};

use super::read::Batch;
use super::{Options, failpoint};
use crate::config::Target;
use crate::error::Error;
use crate::manifest::{Manifest, manifest_key, object_key, table_prefix, verify_object};
use crate::object::{Body, Upload};

/// Uploads, verifies and describes one batch; returns its manifest.
pub(super) async fn store_batch(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
    cutoff: &str,
    batch: Batch,
    number: u64,
    columns: &[[String; 2]],
) -> Result<Manifest, Error> {
    let table = table_prefix(&options.prefix, target);
    let object = object_key(&table, &batch.first, &batch.last, options.codec);
    let (sha256, bytes) = (batch.sha256, batch.bytes);
    let path = Path::from(object.clone());
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, "application/x-ndjson".into());
    attributes.insert(Attribute::ContentEncoding, options.codec.encoding().into());
    if let Some(class) = &options.storage_class {
        attributes.insert(Attribute::StorageClass, class.clone().into());
    }
    let upload = Upload {
        store,
        path: &path,
        attributes,
        part_size: options.part_size(),
    };
    let uploading = Instant::now();
    upload_batch(&upload, &table, &object, batch.body).await?;
    crate::metrics::phase("upload", uploading.elapsed());
    failpoint(options, "uploaded", number)?;
    let rows = batch.keys.len() as u64;
    let verifying = Instant::now();
    verify_object(store, &object, &sha256, rows).await?;
    crate::metrics::phase("verify", verifying.elapsed());
    let manifest = Manifest {
        version: crate::manifest::FORMAT,
        database: target.database.clone(),
        schema: target.schema.clone(),
        table: target.table.clone(),
        object: object.clone(),
        sha256,
        rows,
        bytes,
        cutoff: cutoff.to_owned(),
        first: batch.first,
        last: batch.last,
        keys: batch.keys,
        columns: columns.to_vec(),
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::Copy(e.to_string()))?;
    store
        .put(
            &Path::from(manifest_key(&table, &object)),
            PutPayload::from(json),
        )
        .await?;
    failpoint(options, "manifest", number)?;
    Ok(manifest)
}

/// Uploads a batch's body to `object`, unless the same batch is there already.
///
/// A small body goes create-only in one request; a spilled one as a multipart upload, after
/// a look at what is there (the run lock keeps other archivers out of the table's prefix).
/// An object that is there with a manifest is left alone (verification then decides whether
/// it is this batch); one without a manifest is the upload of a run that crashed before
/// deleting anything, and is replaced.
async fn upload_batch(
    upload: &Upload<'_>,
    table: &str,
    object: &str,
    body: Body,
) -> Result<(), Error> {
    let store = upload.store;
    let exists = |result: object_store::Result<object_store::ObjectMeta>| match result {
        Ok(_) => Ok(true),
        Err(object_store::Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(Error::from(e)),
    };
    let body = match body {
        Body::Memory(bytes) => match upload.put(Body::Memory(bytes.clone()), true).await {
            Ok(()) => return Ok(()),
            Err(Error::Store(object_store::Error::AlreadyExists { .. })) => Body::Memory(bytes),
            Err(e) => return Err(e),
        },
        Body::File(file) => {
            if !exists(store.head(upload.path).await)? {
                return upload.put(Body::File(file), false).await;
            }
            Body::File(file)
        }
    };
    for manifest in [
        manifest_key(table, object),
        format!("{object}.manifest.json"),
    ] {
        if exists(store.head(&Path::from(manifest)).await)? {
            return Ok(());
        }
    }
    tracing::warn!(
        object,
        "Replacing an archive that a crashed run uploaded but never recorded."
    );
    upload.put(body, false).await
}
