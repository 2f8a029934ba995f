//! Completing what an interrupted run left: batches with a manifest and no completion marker.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::PgConnection;

use super::Options;
use super::delete::Deletes;
use super::read::Layout;
use crate::config::Target;
use crate::error::Error;
use crate::manifest::{Manifest, table_prefix, verify_object};

/// Completes the batches of interrupted runs: manifests without a completion marker.
pub(super) async fn recover(
    conn: &mut PgConnection,
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<u64, Error> {
    let prefix = Path::from(table_prefix(&options.prefix, target));
    let mut names = std::collections::BTreeSet::new();
    let mut listing = store.list(Some(&prefix));
    while let Some(meta) = listing.next().await {
        names.insert(meta?.location.to_string());
    }
    let pending: Vec<(&String, &str)> = names
        .iter()
        .filter_map(|name| Some((name, name.strip_suffix(".manifest.json")?)))
        .filter(|(_, object)| !names.contains(&format!("{object}.done")))
        .collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let deletes = Deletes::new(target, &Layout::read(conn, target).await?.pk_type);
    let mut recovered = 0;
    for (name, object) in pending {
        let data = store.get(&Path::from(name.clone())).await?.bytes().await?;
        let manifest: Manifest = serde_json::from_slice(&data).map_err(|e| Error::Verify {
            key: name.clone(),
            message: format!("unreadable manifest: {e}"),
        })?;
        verify_object(store, &manifest.object, &manifest.sha256, manifest.rows).await?;
        let deleted = deletes.run(conn, &manifest).await?;
        store
            .put(
                &Path::from(format!("{object}.done")),
                PutPayload::from_static(b"done\n"),
            )
            .await?;
        tracing::warn!(object, deleted, "Completed a batch of an interrupted run.");
        recovered += 1;
    }
    Ok(recovered)
}
