//! Restoring archives into a table: each archive is read and verified against its manifest,
//! loaded with `COPY FROM STDIN` into a temporary table, and inserted with
//! `json_populate_record`, so every column comes back with its own type.

use flate2::read::GzDecoder;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path;
// Every dynamic statement quotes identifiers with `sql::ident` and values are bound.
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::config::Target;
use crate::pipeline::{Error, Options, manifests, verify_object};
use crate::sql::{escape, ident};

/// What to do with a row whose primary key is already in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Keep the table's row.
    Skip,
    /// Stop with an error (nothing of that archive is inserted).
    Fail,
    /// Replace the table's row with the archived one.
    Overwrite,
}

impl std::str::FromStr for Conflict {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(Conflict::Skip),
            "fail" => Ok(Conflict::Fail),
            "overwrite" => Ok(Conflict::Overwrite),
            other => Err(format!(
                "unknown conflict strategy {other:?}: expected skip, fail or overwrite"
            )),
        }
    }
}

/// Restores every archive of `target`; returns the number of rows inserted.
pub async fn restore_table(
    conn: &mut PgConnection,
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
    conflict: Conflict,
) -> Result<u64, Error> {
    let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
    let pk = ident(&target.primary_key);
    let mut inserted = 0;
    for manifest in manifests(store, options, target).await? {
        verify_object(store, &manifest.object, &manifest.sha256, manifest.rows).await?;
        let data = store
            .get(&Path::from(manifest.object.clone()))
            .await?
            .bytes()
            .await?;
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut GzDecoder::new(&data[..]), &mut text).map_err(|e| {
            Error::Verify {
                key: manifest.object.clone(),
                message: format!("not gzip: {e}"),
            }
        })?;
        let mut copy = Vec::with_capacity(text.len() + text.len() / 8);
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            escape(line, &mut copy);
            copy.push(b'\n');
        }
        let mut tx = conn.begin().await?;
        sqlx::query("CREATE TEMP TABLE bulwark_restore (doc json) ON COMMIT DROP")
            .execute(&mut *tx)
            .await?;
        let mut sink = tx
            .copy_in_raw("COPY bulwark_restore (doc) FROM STDIN")
            .await?;
        sink.send(copy).await?;
        sink.finish().await?;
        let rows =
            format!("SELECT (json_populate_record(NULL::{table}, doc)).* FROM bulwark_restore");
        if conflict == Conflict::Overwrite {
            let sql = format!(
                "DELETE FROM {table} WHERE {pk} IN (SELECT (json_populate_record(NULL::{table}, doc)).{pk} FROM bulwark_restore)"
            );
            sqlx::query(AssertSqlSafe(sql)).execute(&mut *tx).await?;
        }
        let on_conflict = if conflict == Conflict::Skip {
            " ON CONFLICT DO NOTHING"
        } else {
            ""
        };
        let done = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {table} {rows}{on_conflict}"
        )))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        tracing::info!(
            object = manifest.object,
            rows = done,
            "Restored an archive."
        );
        inserted += done;
    }
    Ok(inserted)
}
