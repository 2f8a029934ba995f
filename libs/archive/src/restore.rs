//! Restoring archives into a table: each archive is read and verified against its manifest,
//! streamed (inflated and checked on the way) with `COPY FROM STDIN` into a temporary table, and inserted with
//! `json_populate_record`, so every column comes back with its own type.

use futures::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::path::Path;
// Every dynamic statement quotes identifiers with `sql::ident` and values are bound.
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::config::Target;
use crate::error::Error;
use crate::manifest::manifests;
use crate::object::Unzip;
use crate::pipeline::Options;
use crate::sql::{escape, ident, literal};

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

/// A conflict strategy that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown conflict strategy {0:?}: expected skip, fail or overwrite")]
pub struct UnknownConflict(String);

impl std::str::FromStr for Conflict {
    type Err = UnknownConflict;

    fn from_str(s: &str) -> Result<Self, UnknownConflict> {
        match s {
            "skip" => Ok(Conflict::Skip),
            "fail" => Ok(Conflict::Fail),
            "overwrite" => Ok(Conflict::Overwrite),
            other => Err(UnknownConflict(other.to_owned())),
        }
    }
}

/// How much COPY text is sent to PostgreSQL at a time.
const COPY_CHUNK: usize = 1024 * 1024;

/// Appends one JSON line to `copy` as a line of COPY text.
fn copy_line(copy: &mut Vec<u8>, line: &[u8]) {
    if !line.is_empty() {
        escape(line, copy);
        copy.push(b'\n');
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
    // `json_populate_record` makes a JSON `null` SQL NULL for every type; `json` and `jsonb`
    // columns are taken from the line itself instead, where a present `null` is the JSON
    // value null and an absent key (how the archive writes SQL NULL there) is SQL NULL.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT a.attname::text, t.typname::text FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(&table)
    .fetch_all(&mut *conn)
    .await?;
    let select = columns
        .iter()
        .map(|(name, typname)| match typname.as_str() {
            "json" => format!("doc -> {}", literal(name)),
            "jsonb" => format!("(doc -> {})::jsonb", literal(name)),
            _ => format!("(r).{}", ident(name)),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut inserted = 0;
    for manifest in manifests(store, options, target).await? {
        // One pass over the object: its lines go into COPY as they are inflated, and the
        // transaction commits only if the whole object matched its manifest.
        let mut tx = conn.begin().await?;
        sqlx::query("CREATE TEMP TABLE bulwark_restore (doc json) ON COMMIT DROP")
            .execute(&mut *tx)
            .await?;
        let mut sink = tx
            .copy_in_raw("COPY bulwark_restore (doc) FROM STDIN")
            .await?;
        let streamed = async {
            let mut stream = store
                .get(&Path::from(manifest.object.clone()))
                .await?
                .into_stream();
            let mut unzip = Unzip::new();
            let mut copy = Vec::with_capacity(COPY_CHUNK + COPY_CHUNK / 4);
            while let Some(chunk) = stream.next().await {
                unzip.push(&chunk?, &mut |line| copy_line(&mut copy, line));
                if copy.len() >= COPY_CHUNK {
                    sink.send(std::mem::take(&mut copy)).await?;
                }
            }
            let finished = unzip.finish(&mut |line| copy_line(&mut copy, line));
            Unzip::check(&manifest.object, finished, &manifest.sha256, manifest.rows)?;
            Ok::<_, Error>(copy)
        }
        .await;
        match streamed {
            Ok(rest) => {
                sink.send(rest).await?;
                sink.finish().await?;
            }
            Err(e) => {
                // Nothing of this archive is kept: the COPY and its transaction are dropped.
                let _ = sink.abort(e.to_string()).await;
                return Err(e);
            }
        }
        let rows = format!(
            "SELECT {select} FROM (SELECT doc, json_populate_record(NULL::{table}, doc) AS r FROM bulwark_restore) AS lines"
        );
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
