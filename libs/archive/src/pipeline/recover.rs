//! What an interrupted run left, put right before a run archives anything (under the run
//! lock): batches with a manifest and no completion marker are completed; data objects that
//! no manifest records (uploads of a run that crashed before its manifest, which deleted no
//! row) are removed, so that the rows they hold, which are still in the table, end up in
//! exactly one archive.

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::PgConnection;

use super::Options;
use super::delete::Deletes;
use super::read::Layout;
use crate::config::Target;
use crate::error::Error;
use crate::manifest::{Listing, marker_key, read_manifest, table_prefix, verify_object};

/// What recovery found: how many batches it completed, and the manifest of the table's most
/// recent batch (for the schema check).
pub(super) struct Recovered {
    pub(super) batches: u64,
    pub(super) latest: Option<String>,
}

/// Puts right what interrupted runs left.
pub(super) async fn recover(
    conn: &mut PgConnection,
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<Recovered, Error> {
    let prefix = table_prefix(&options.prefix, target);
    let listing = Listing::of(store, &prefix).await?;
    for object in listing.unrecorded(&prefix) {
        match store.delete(&Path::from(object.as_str())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        tracing::warn!(
            object = object.as_str(),
            "Removed an archive that an interrupted run uploaded but never recorded; its rows are still in the table."
        );
    }
    let pending: Vec<&String> = listing
        .manifests
        .iter()
        .filter(|name| !listing.all.contains(&marker_key(name)))
        .collect();
    let latest = listing.latest_manifest().cloned();
    if pending.is_empty() {
        return Ok(Recovered { batches: 0, latest });
    }
    let deletes = Deletes::new(target, &Layout::read(conn, target).await?.pk_type);
    let mut recovered = 0;
    for name in pending {
        let manifest = read_manifest(store, name).await?;
        verify_object(store, &manifest.object, &manifest.sha256, manifest.rows).await?;
        let deleted = deletes.run(conn, &manifest).await?;
        store
            .put(
                &Path::from(marker_key(name)),
                PutPayload::from_static(b"done\n"),
            )
            .await?;
        tracing::warn!(
            object = manifest.object,
            deleted,
            "Completed a batch of an interrupted run."
        );
        recovered += 1;
    }
    Ok(Recovered {
        batches: recovered,
        latest,
    })
}
