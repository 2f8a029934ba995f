//! Reading a batch: one `COPY` in keyset order, in a `REPEATABLE READ` snapshot that the
//! deleting connection takes over, turned into JSON lines and gzip'd on a blocking thread while
//! the rows arrive.

use std::time::Instant;

use futures::StreamExt;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::config::Target;
use crate::error::Error;
use crate::jsonl::{Columns, Fields, Kind};
use crate::object::{Body, Codec, Compressor, Spill};
use crate::sql::{ident, literal};

/// A table's columns as COPY sends them, where its key and timestamp are among them, the
/// key's type, and the select list of the batch query.
pub(super) struct Layout {
    columns: Columns,
    pk: usize,
    ts: usize,
    /// As `format_type` prints it, such as `bigint` or `character varying(64)`.
    pub(super) pk_type: String,
    /// The COPY query's output columns: the table's, with arrays made JSON arrays.
    pub(super) select: String,
    /// `[name, type]` of every column, as manifests record them.
    pub(super) described: Vec<[String; 2]>,
}

/// A column: its name, and the name and category of its type (of a domain's base type).
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) typname: String,
    pub(crate) category: String,
    /// For an array, its element type's name.
    pub(crate) element: String,
    pub(crate) format: String,
}

/// The columns of `table` (quoted), in order.
pub(crate) async fn columns(conn: &mut PgConnection, table: &str) -> Result<Vec<Column>, Error> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT a.attname::text, b.typname::text, b.typcategory::text, \
                COALESCE(e.typname::text, ''), format_type(a.atttypid, a.atttypmod) \
         FROM pg_attribute a \
         JOIN pg_type t ON t.oid = a.atttypid \
         JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END \
         LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A' \
         WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, typname, category, element, format)| Column {
            name,
            typname,
            category,
            element,
            format,
        })
        .collect())
}

impl Column {
    /// The column in the batch query's select list. An array becomes a JSON array in
    /// PostgreSQL (`array_to_json`, nested to any depth; elements as `to_json` writes them,
    /// with `numeric`, `money`, `bytea`, `json` and `jsonb` elements as their exact text); one whose bounds do
    /// not start at 1 (`'[0:1]={a,b}'`) stays its text, the only form that keeps them.
    fn select(&self) -> String {
        let c = format!("t.{}", ident(&self.name));
        if self.category != "A" {
            return c;
        }
        // `json`/`jsonb` elements as their text too: restore's `json_populate_record` would
        // read a JSON array element as another dimension of the array.
        let elements = match self.element.as_str() {
            "numeric" | "money" | "bytea" | "json" | "jsonb" => format!("{c}::text[]"),
            _ => c.clone(),
        };
        format!(
            "CASE WHEN array_dims({c}) !~ '^(\\[1:[0-9]+\\])+$' THEN to_json({c}::text) \
             ELSE array_to_json({elements}) END"
        )
    }
}

impl Layout {
    pub(super) async fn read(conn: &mut PgConnection, target: &Target) -> Result<Self, Error> {
        let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
        let rows = columns(conn, &table).await?;
        let find = |name: &str, key: &str| {
            rows.iter().position(|c| c.name == name).ok_or_else(|| {
                Error::Schema(format!(
                    "database {}: {}.{} has no column {name:?} ({key} in the config)",
                    target.database, target.schema, target.table
                ))
            })
        };
        let (pk, ts) = (
            find(&target.primary_key, "primary_key")?,
            find(&target.timestamp_column, "timestamp_column")?,
        );
        let columns: Vec<(String, Kind)> = rows
            .iter()
            .map(|c| (c.name.clone(), Kind::of(&c.typname, &c.category)))
            .collect();
        Ok(Self {
            columns: Columns::new(&columns),
            pk,
            ts,
            pk_type: rows[pk].format.clone(),
            select: rows
                .iter()
                .map(Column::select)
                .collect::<Vec<_>>()
                .join(", "),
            described: rows
                .iter()
                .map(|c| [c.name.clone(), c.format.clone()])
                .collect(),
        })
    }
}

/// Ends the reader's transaction of `batch`, after the deleter has begun its own in the same
/// snapshot (when there is anything to delete): the delete then sees exactly the rows the
/// batch read, and neither a row inserted into its range since nor one changed since.
pub(super) async fn hand_over(
    reader: &mut PgConnection,
    deleter: &mut PgConnection,
    batch: &Batch,
) -> Result<(), Error> {
    if !batch.keys.is_empty() {
        let begin = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT {}",
            literal(&batch.snapshot)
        );
        sqlx::raw_sql(AssertSqlSafe(begin)).execute(deleter).await?;
    }
    sqlx::raw_sql("COMMIT").execute(reader).await?;
    Ok(())
}

/// The COPY statement of the batch after `after` (the first batch for `None`).
pub(super) fn batch_query(
    target: &Target,
    select: &str,
    hold: Option<&str>,
    cutoff: &str,
    after: Option<&[String; 2]>,
    limit: u32,
) -> String {
    let (table, ts, pk) = (
        format!("{}.{}", ident(&target.schema), ident(&target.table)),
        ident(&target.timestamp_column),
        ident(&target.primary_key),
    );
    let keyset = after
        .map(|[t, k]| {
            format!(
                " AND ({ts}, {pk}) > ({}::timestamptz, {})",
                literal(t),
                literal(k)
            )
        })
        .unwrap_or_default();
    let held = hold
        .map(|h| format!(" AND NOT {}", held_condition(target, h)))
        .unwrap_or_default();
    // The ORDER BY names the table's columns (`t.`): with an output column of the same name
    // and another type (as `pk::text` once was), a bare name would sort by the output.
    format!(
        "COPY (SELECT {select} FROM {table} t \
         WHERE {ts} < {}::timestamptz{keyset}{held} ORDER BY t.{ts}, t.{pk} LIMIT {}) TO STDOUT",
        literal(cutoff),
        limit
    )
}

/// Whether row `t` of `target` is under a legal hold in the table `hold` (quoted SQL): the
/// whole table, or its key, by a hold that has not expired.
pub(crate) fn held_condition(target: &Target, hold: &str) -> String {
    let names = format!(
        "{}, {}",
        literal(&format!("{}.{}", target.schema, target.table)),
        if target.schema == "public" {
            literal(&target.table)
        } else {
            "NULL".to_owned()
        }
    );
    format!(
        "EXISTS (SELECT 1 FROM {hold} h WHERE h.table_name IN ({names}) \
         AND (h.expires_at IS NULL OR h.expires_at > now()) \
         AND (h.record_id IS NULL OR h.record_id = t.{}::text))",
        ident(&target.primary_key)
    )
}

/// `FROM ... WHERE ...` of `target`'s rows older than `cutoff` (SQL: a parameter or a
/// literal) that a legal hold in `hold` keeps.
pub(crate) fn held_rows(target: &Target, hold: &str, cutoff: &str) -> String {
    format!(
        "FROM {}.{} t WHERE t.{} < {cutoff}::timestamptz AND {}",
        ident(&target.schema),
        ident(&target.table),
        ident(&target.timestamp_column),
        held_condition(target, hold)
    )
}

/// How many rows of `target` older than `cutoff` are under a legal hold in `hold`.
pub(crate) async fn held(
    conn: &mut PgConnection,
    target: &Target,
    hold: &str,
    cutoff: &str,
) -> Result<u64, Error> {
    let sql = format!("SELECT count(*) {}", held_rows(target, hold, "$1"));
    let count: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(cutoff)
        .fetch_one(conn)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("42P01") || db.code().as_deref() == Some("42703") => {
                Error::Schema(format!(
                    "database {}: the legal hold table {hold} cannot be read ({}): it needs the columns table_name text, record_id text and expires_at timestamptz",
                    target.database,
                    db.message()
                ))
            }
            _ => Error::Db(e),
        })?;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// Why the compressor of a batch stopped taking JSON.
async fn compressor_failure(
    compressor: tokio::task::JoinHandle<std::io::Result<(Body, String, u64)>>,
) -> Error {
    match compressor.await {
        Ok(Err(e)) => Error::Compress(e.to_string()),
        _ => Error::Compress("the compressor stopped".to_owned()),
    }
}

/// A field as text: PostgreSQL sends UTF-8, so the lossy conversion is only a fallback.
fn text(field: &[u8]) -> String {
    match std::str::from_utf8(field) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(field).into_owned(),
    }
}

/// One batch as read from the table.
pub(super) struct Batch {
    /// When reading it began.
    pub(super) started: Instant,
    /// The size of its JSON lines, before compression.
    pub(super) json_bytes: u64,
    /// It was cut short at the byte cap: more rows may follow even if it has fewer than the
    /// limit.
    pub(super) cut: bool,
    /// Its gzip'd JSON lines, their SHA-256 and length.
    pub(super) body: Body,
    /// The snapshot it was read in, exported from the reader's open transaction.
    pub(super) snapshot: String,
    pub(super) sha256: String,
    pub(super) bytes: u64,
    pub(super) keys: Vec<String>,
    pub(super) first: [String; 2],
    pub(super) last: [String; 2],
}

/// How much JSON is handed to the compressor at a time.
const CHUNK: usize = 256 * 1024;

/// Reads one batch with `copy`; the JSON lines are gzip'd on a blocking thread while the next
/// rows arrive, into memory up to `part_size` bytes and into a temporary file beyond.
pub(super) async fn read_batch(
    conn: &mut PgConnection,
    copy: &str,
    layout: &Layout,
    cap: u64,
    part_size: usize,
    (codec, level): (Codec, Option<u32>),
) -> Result<Batch, Error> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let compressor = tokio::task::spawn_blocking(move || {
        let mut compressor = Compressor::new(codec, level, Spill::new(part_size))?;
        while let Some(chunk) = rx.blocking_recv() {
            compressor.write_all(&chunk)?;
        }
        compressor.finish()?.finish()
    });
    // The batch is read in a snapshot that the deleter takes over (see `hand_over`).
    let snapshot: String = sqlx::raw_sql(
        "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_export_snapshot()",
    )
    .fetch_one(&mut *conn)
    .await
    .and_then(|row| sqlx::Row::try_get(&row, 0))?;
    let mut stream = conn.copy_out_raw(copy).await?;
    let mut keys = Vec::new();
    let mut first: Option<[String; 2]> = None;
    let mut last_stamp: Vec<u8> = Vec::new();
    let mut json: Vec<u8> = Vec::with_capacity(CHUNK + 64 * 1024);
    let mut pending: Vec<u8> = Vec::new();
    let mut json_bytes = 0u64;
    let mut fields = Fields::default();
    let mut handle = |line: &[u8], json: &mut Vec<u8>| -> Result<(), Error> {
        layout
            .columns
            .row(line, json, &mut fields)
            .map_err(|e| Error::Copy(e.to_string()))?;
        let null = || Error::Copy("a NULL key or timestamp".to_owned());
        let key = text(fields.get(layout.pk).ok_or_else(null)?);
        let stamp = fields.get(layout.ts).ok_or_else(null)?;
        if first.is_none() {
            first = Some([text(stamp), key.clone()]);
        }
        last_stamp.clear();
        last_stamp.extend_from_slice(stamp);
        keys.push(key);
        Ok(())
    };
    let closed = || Error::Copy("the compressor stopped".to_owned());
    // Rows stop being taken once the batch holds `cap` bytes of JSON; the rest of the COPY
    // is read and dropped (sqlx 0.9 does not discard an unfinished COPY as documented: the
    // next statement fails with "expected CopyOutResponse, got CopyDone"), and those rows
    // begin the next batch. Batches are sized from the rows before them, so cuts are rare.
    let mut cut = false;
    'stream: while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        // PostgreSQL sends a row per CopyData message: whole rows are read where they arrived,
        // anything else is gathered in `pending` first.
        let whole = pending.is_empty() && chunk.last() == Some(&b'\n');
        if !whole {
            pending.extend_from_slice(&chunk);
        }
        let data: &[u8] = if whole { &chunk } else { &pending };
        let mut start = 0;
        while let Some(end) = memchr::memchr(b'\n', &data[start..]) {
            handle(&data[start..start + end], &mut json)?;
            start += end + 1;
            if json_bytes + json.len() as u64 >= cap {
                cut = true;
                break 'stream;
            }
        }
        if !whole {
            pending.drain(..start);
        }
        if json.len() >= CHUNK {
            json_bytes += json.len() as u64;
            let full = std::mem::replace(&mut json, Vec::with_capacity(CHUNK + 64 * 1024));
            if tx.send(full).await.is_err() {
                return Err(compressor_failure(compressor).await);
            }
        }
    }
    if cut {
        while let Some(chunk) = stream.next().await {
            chunk?;
        }
    } else if !pending.is_empty() {
        handle(&pending, &mut json)?;
    }
    drop(stream);
    json_bytes += json.len() as u64;
    if tx.send(json).await.is_err() {
        return Err(compressor_failure(compressor).await);
    }
    drop(tx);
    let (body, sha256, bytes) = compressor
        .await
        .map_err(|_| closed())?
        .map_err(|e| Error::Compress(e.to_string()))?;
    crate::metrics::phase("copy", started.elapsed());
    let last = [
        String::from_utf8_lossy(&last_stamp).into_owned(),
        keys.last().cloned().unwrap_or_default(),
    ];
    Ok(Batch {
        started,
        json_bytes,
        cut,
        body,
        sha256,
        bytes,
        snapshot,
        first: first.unwrap_or_default(),
        last,
        keys,
    })
}

#[cfg(test)]
mod tests;
