//! What an interrupted run left, put right before a run archives anything (under the run
//! lock): batches with a manifest and no completion marker are completed; data objects that
//! no manifest records (uploads of a run that crashed before its manifest, which deleted no
//! row) are removed, so that the rows they hold, which are still in the table, end up in
//! exactly one archive.

use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sqlx::{AssertSqlSafe, PgConnection};

use super::Options;
use super::delete::Deletes;
use super::read::Layout;
use crate::config::Target;
use crate::error::Error;
use crate::manifest::{Listing, marker_key, read_manifest, table_prefix, verify_object};
use crate::object::Unzip;
use crate::sql::ident;

/// Removes `object`, an upload no manifest records, once it has checked that every row in it
/// is still in the table: then no row was deleted on its strength, and the next batches
/// archive those rows again. An object holding a row that is gone is kept, and the table
/// fails with the reason: whatever left it there (a naming mismatch, a run without the lock),
/// it may be the only copy of that row.
async fn remove_unrecorded(
    conn: &mut PgConnection,
    store: &dyn ObjectStore,
    target: &Target,
    pk_type: &str,
    object: &str,
) -> Result<(), Error> {
    let path = Path::from(object);
    let mut stream = store.get(&path).await?.into_stream();
    let mut unzip = Unzip::new();
    let mut keys = Vec::new();
    let mut bad = None;
    let mut take = |line: &[u8]| match serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|row| match row.get(&target.primary_key)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }) {
        Some(key) => keys.push(key),
        None => bad = Some(()),
    };
    while let Some(chunk) = stream.next().await {
        unzip.push(&chunk?, &mut take);
    }
    let (_, _, lines) = unzip.finish(&mut take);
    let keep = |why: String| Error::Verify {
        key: object.to_owned(),
        message: format!(
            "an archive no manifest records {why}: kept; check it, and remove it by hand if its rows are in the table"
        ),
    };
    if lines.is_err() || bad.is_some() {
        return Err(keep("cannot be read as this table's rows".to_owned()));
    }
    let sql = format!(
        "SELECT count(*) FROM {}.{} WHERE {} = ANY($1::text[]::{pk_type}[])",
        ident(&target.schema),
        ident(&target.table),
        ident(&target.primary_key)
    );
    let present: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(&keys)
        .fetch_one(&mut *conn)
        .await?;
    if u64::try_from(present).unwrap_or(0) != keys.len() as u64 {
        return Err(keep(format!(
            "holds {} row(s) that are no longer in the table",
            keys.len() as i64 - present
        )));
    }
    match store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::warn!(
        object,
        rows = keys.len(),
        "Removed an archive that an interrupted run uploaded but never recorded; its rows are still in the table."
    );
    Ok(())
}

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
    let unrecorded = listing.unrecorded(&prefix);
    if !unrecorded.is_empty() {
        let pk_type = Layout::read(conn, target).await?.pk_type;
        for object in unrecorded {
            remove_unrecorded(conn, store, target, &pk_type, object).await?;
        }
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
