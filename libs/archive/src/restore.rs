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

/// How each column of a line of format `version` becomes its value: through
/// `json_populate_record` (`r`), except, from format 2 on, `json` and `jsonb` (taken from the
/// line, where an absent key is SQL NULL and `null` the JSON value null, which
/// `json_populate_record` would both make SQL NULL) and `bytea` (base64).
fn select_list(columns: &[crate::pipeline::Column], version: u32) -> String {
    columns
        .iter()
        .map(|c| {
            let key = literal(&c.name);
            match (version >= 2, c.category.as_str(), c.typname.as_str()) {
                (true, "A", _) | (false, _, _) => format!("(r).{}", ident(&c.name)),
                (true, _, "json") => format!("doc -> {key}"),
                (true, _, "jsonb") => format!("(doc -> {key})::jsonb"),
                (true, _, "bytea") => format!("decode(doc ->> {key}, 'base64')"),
                (true, _, _) => format!("(r).{}", ident(&c.name)),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `json_populate_record` is given: the line, without (from format 2 on) the `json`,
/// `jsonb` and `bytea` columns taken from the line itself, so that their values never pass
/// through the record's types (a domain's check would see base64 text, a NOT NULL domain a
/// JSON null).
fn record_input(columns: &[crate::pipeline::Column], version: u32) -> String {
    let own: Vec<String> = columns
        .iter()
        .filter(|c| c.category != "A" && matches!(c.typname.as_str(), "json" | "jsonb" | "bytea"))
        .map(|c| literal(&c.name))
        .collect();
    if version < 2 || own.is_empty() {
        return "doc".to_owned();
    }
    format!("(doc::jsonb - ARRAY[{}]::text[])::json", own.join(", "))
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
    let columns = crate::pipeline::columns(conn, &table).await?;
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
        let select = select_list(&columns, manifest.version);
        let record = record_input(&columns, manifest.version);
        let rows = format!(
            "SELECT {select} FROM (SELECT doc, json_populate_record(NULL::{table}, {record}) AS r FROM bulwark_restore) AS lines"
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

#[cfg(test)]
mod tests {
    use super::select_list;
    use crate::pipeline::Column;

    fn column(name: &str, typname: &str, category: &str) -> Column {
        Column {
            name: name.to_owned(),
            typname: typname.to_owned(),
            category: category.to_owned(),
            element: String::new(),
            format: typname.to_owned(),
        }
    }

    #[test]
    fn older_archives_are_read_as_they_were_written() {
        let columns = [
            column("doc", "jsonb", "U"),
            column("raw", "bytea", "U"),
            column("tags", "_text", "A"),
            column("it's", "int4", "N"),
        ];
        assert_eq!(
            select_list(&columns, 2),
            r#"(doc -> 'doc')::jsonb, decode(doc ->> 'raw', 'base64'), (r)."tags", (r)."it's""#
        );
        // Format 1 wrote bytea as hex text and SQL NULL as null: all through the record.
        assert_eq!(
            select_list(&columns, 1),
            r#"(r)."doc", (r)."raw", (r)."tags", (r)."it's""#
        );
    }
}
