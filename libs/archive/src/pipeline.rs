//! The archive pipeline of one table, and the state machine that makes a crash at any point
//! harmless.
//!
//! Per table and run: one server-side cutoff (`now() - retention`), then batches in keyset
//! order `(timestamp, primary key)`. Each batch is
//!
//! 1. streamed out with `COPY (SELECT * ...) TO STDOUT` and turned into gzip'd JSON lines
//!    (see [`crate::jsonl`]; every PostgreSQL type round-trips through
//!    `json_populate_record`), kept in memory up to one upload part and spilled to an
//!    unlinked temporary file beyond (see [`crate::object`]);
//! 2. uploaded to a key derived from the data (`prefix/db/schema.table/year=/month=/day=/
//!    <first>_<last>.jsonl.gz`), so a rerun of the same batch finds the same key: create-only
//!    in one request when small, as a multipart upload when spilled. An object already there
//!    without a manifest is the unfinished upload of a crashed run (its rows were not
//!    deleted) and is replaced; one with a manifest must hold the same bytes (step 3);
//! 3. read back as a stream: SHA-256 and row count must match what was read from the table;
//! 4. described by a manifest (`<key>.manifest.json`: checksum, count, key range, the
//!    primary keys), written before anything is deleted;
//! 5. deleted, exactly the rows the batch read, in one transaction: in the snapshot the
//!    batch's COPY ran in, handed from the reading connection to the deleting one (see
//!    [`Deletes`]);
//! 6. marked complete (`<key>.done`).
//!
//! Batch N+1 is read while batch N goes through 2 to 6 on a second connection.
//!
//! A crash before 4 leaves rows in the table and at most an unreferenced object, which the
//! next run overwrites with the same bytes or finds equal; a crash between 4 and 6 leaves a
//! manifest without a marker, which the next run completes first (verify the object again,
//! delete the listed keys, which is idempotent, write the marker). So no row is lost and none
//! is archived twice.

use std::io::Write;
use std::time::Instant;

use flate2::Compression;
use flate2::write::GzEncoder;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
// Every dynamic statement quotes identifiers with `sql::ident` and values are bound.
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::config::Target;
use crate::jsonl::{Columns, Fields, Kind};
use crate::object::{Body, Spill, Upload, read_checked};
pub use crate::object::{MIN_PART_SIZE, PART_SIZE};
use crate::sql::{ident, literal};

/// Why a table could not be archived.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("verification failed for {key}: {message}")]
    Verify { key: String, message: String },
    #[error("unexpected COPY output: {0}")]
    Copy(String),
    #[error("compressing the batch: {0}")]
    Compress(String),
    #[error("stopped at failpoint {0}")]
    Failpoint(String),
}

impl Error {
    /// A bounded metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Db(_) => "database",
            Error::Store(_) => "storage",
            Error::Verify { .. } => "verification",
            Error::Copy(_) => "copy",
            Error::Compress(_) => "compress",
            Error::Failpoint(_) => "failpoint",
        }
    }
}

/// How the pipeline runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The key prefix in the bucket (the config's `s3.prefix`).
    pub prefix: String,
    /// The storage class of archive objects, when set.
    pub storage_class: Option<String>,
    /// Stops the run with an error right after the named step, to test crash recovery:
    /// `uploaded`, `manifest`, `deleted` (optionally `name@N` for the N-th batch).
    pub failpoint: Option<String>,
    /// Cancelled on SIGTERM: the run stops after the batch in progress, which completes.
    pub stop: Option<tokio_util::sync::CancellationToken>,
    /// Draw a progress bar per table on standard error (an interactive terminal).
    pub progress: bool,
    /// The most JSON a batch should hold, whatever its row count: batches of wide rows get
    /// fewer rows, so that objects, spill files and the time a batch takes stay bounded.
    /// `0` means [`MAX_BATCH_BYTES`].
    pub max_batch_bytes: u64,
    /// The size of one part of a multipart upload, and the most of a batch's compressed
    /// bytes kept in memory. `0` means [`PART_SIZE`]; S3 wants at least 5 MiB.
    pub part_size: usize,
}

impl Options {
    fn part_size(&self) -> usize {
        match self.part_size {
            0 => PART_SIZE,
            size => size,
        }
    }

    /// The most JSON a batch should hold.
    fn batch_bytes(&self) -> u64 {
        match self.max_batch_bytes {
            0 => MAX_BATCH_BYTES,
            cap => cap,
        }
    }
}

/// The default most JSON per batch: 64 MiB, about 8 MiB gzip'd.
pub const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// The first batch of a table holds this fraction of the rows of the others.
const FIRST_BATCH_SHARE: u32 = 4;

/// Rows sampled to size a table's first batch.
const SAMPLE_ROWS: u32 = 100;

/// The row count of a table's first batch, from the JSON width of its first rows due.
async fn first_limit(
    conn: &mut PgConnection,
    target: &Target,
    options: &Options,
    cutoff: &str,
) -> Result<u32, Error> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(octet_length(row_to_json(t)::text)), 0)::bigint FROM \
         (SELECT * FROM {}.{} t WHERE {ts} < $1::timestamptz ORDER BY t.{ts}, t.{pk} LIMIT {SAMPLE_ROWS}) t",
        ident(&target.schema),
        ident(&target.table),
        ts = ident(&target.timestamp_column),
        pk = ident(&target.primary_key),
    );
    let (rows, bytes): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(cutoff)
        .fetch_one(conn)
        .await?;
    let (rows, bytes) = (
        u64::try_from(rows).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    );
    Ok(next_limit(target, options, rows, bytes))
}

/// The row count of the batch after one of `rows` rows and `bytes` bytes of JSON.
fn next_limit(target: &Target, options: &Options, rows: u64, bytes: u64) -> u32 {
    let cap = options.batch_bytes();
    let per_row = (bytes / rows.max(1)).max(1);
    u32::try_from(cap / per_row)
        .unwrap_or(u32::MAX)
        .clamp(1, target.batch_size)
}

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

/// What a run did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub batches: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Batches of an earlier, interrupted run that this run completed.
    pub recovered: u64,
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

/// The stable advisory lock key of a database's archiver runs.
pub fn lock_key(database: &str) -> i64 {
    let digest = Sha256::digest(format!("bulwark-archiver/v1/{database}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Takes the run lock of `database` on `conn` (a connection kept for the whole run); `false`
/// when another run holds it.
pub async fn try_lock(conn: &mut PgConnection, database: &str) -> Result<bool, Error> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(database))
        .fetch_one(conn)
        .await?)
}

/// The number of rows older than the cutoff, for `--dry-run`.
pub async fn count_due(conn: &mut PgConnection, target: &Target) -> Result<i64, Error> {
    let sql = format!(
        "SELECT count(*) FROM {}.{} WHERE {} < now() - make_interval(days => $1)",
        ident(&target.schema),
        ident(&target.table),
        ident(&target.timestamp_column)
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .bind(i32::try_from(target.retention_days).unwrap_or(i32::MAX))
        .fetch_one(conn)
        .await?)
}

/// Archives every row of `target` older than its retention.
///
/// Batches overlap: while batch N is uploaded, verified and deleted (on `deleter`), batch
/// N+1 is read (on `reader`). They are disjoint, because N+1 starts strictly after N's last
/// key, and each batch still goes through every step in order.
pub async fn archive_table(
    reader: &mut PgConnection,
    deleter: &mut PgConnection,
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<Report, Error> {
    let result = archive_batches(reader, deleter, store, options, target).await;
    if result.is_err() {
        // A batch's transactions may be open on either connection: end them, so that the
        // connections can be used again (a broken one fails here too, which is fine).
        for conn in [reader, deleter] {
            let _ = sqlx::raw_sql("ROLLBACK").execute(conn).await;
        }
    }
    result
}

async fn archive_batches(
    reader: &mut PgConnection,
    deleter: &mut PgConnection,
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
) -> Result<Report, Error> {
    for conn in [&mut *reader, &mut *deleter] {
        sqlx::raw_sql(SESSION).execute(&mut *conn).await?;
    }
    let mut report = Report {
        recovered: recover(deleter, store, options, target).await?,
        ..Report::default()
    };
    let cutoff: String = sqlx::query_scalar("SELECT (now() - make_interval(days => $1))::text")
        .bind(i32::try_from(target.retention_days).unwrap_or(i32::MAX))
        .fetch_one(&mut *reader)
        .await?;
    let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
    let total = if options.progress {
        let sql = format!(
            "SELECT count(*) FROM {table} WHERE {} < $1::timestamptz",
            ident(&target.timestamp_column)
        );
        sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
            .bind(&cutoff)
            .fetch_one(&mut *reader)
            .await
            .ok()
    } else {
        None
    };
    let layout = Layout::read(reader, target).await?;
    let deletes = Deletes::new(target, &layout);
    // The first batch is a quarter of the others: nothing overlaps its read, and the batches
    // after it overlap their reads with the uploads and deletes before them.
    let mut limit =
        (first_limit(reader, target, options, &cutoff).await? / FIRST_BATCH_SHARE).max(1);
    let (cap, part_size) = (options.batch_bytes(), options.part_size());
    let first = batch_query(target, &cutoff, None, limit);
    let mut batch = read_batch(reader, &first, &layout, cap, part_size).await?;
    hand_over(reader, deleter, &batch).await?;
    while !batch.keys.is_empty() {
        let started = batch.started;
        let rows = batch.keys.len() as u64;
        let full = batch.cut || rows >= u64::from(limit);
        limit = next_limit(target, options, rows, batch.json_bytes);
        let stopping = options.stop.as_ref().is_some_and(|s| s.is_cancelled());
        let next =
            (full && !stopping).then(|| batch_query(target, &cutoff, Some(&batch.last), limit));
        let number = report.batches + 1;
        let finish = async {
            let manifest = store_batch(store, options, target, &cutoff, batch, number).await?;
            let deleting = Instant::now();
            deletes.run_in_snapshot(&mut *deleter, &manifest).await?;
            crate::metrics::phase("delete", deleting.elapsed());
            failpoint(options, "deleted", number)?;
            store
                .put(
                    &Path::from(format!("{}.done", manifest.object)),
                    PutPayload::from_static(b"done\n"),
                )
                .await?;
            Ok::<_, Error>(manifest)
        };
        let read_next = async {
            match &next {
                Some(copy) => Some(read_batch(&mut *reader, copy, &layout, cap, part_size).await),
                None => None,
            }
        };
        let (manifest, next) = tokio::join!(finish, read_next);
        let manifest = manifest?;
        tracing::info!(
            database = target.database,
            table = format!("{}.{}", target.schema, target.table),
            rows = manifest.rows,
            bytes = manifest.bytes,
            object = manifest.object,
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "Archived a batch."
        );
        crate::metrics::batch(
            &target.database,
            &format!("{}.{}", target.schema, target.table),
            manifest.rows,
            manifest.bytes,
        );
        report.batches += 1;
        report.rows += manifest.rows;
        report.bytes += manifest.bytes;
        if let Some(total) = total {
            progress(target, report.rows, u64::try_from(total).unwrap_or(0));
        }
        // A SIGTERM during this batch drops the batch read ahead: it was only read.
        let stopping = options.stop.as_ref().is_some_and(|s| s.is_cancelled());
        match next {
            _ if full && stopping => {
                tracing::warn!(
                    database = target.database,
                    table = format!("{}.{}", target.schema, target.table),
                    "Stopping after the current batch (SIGTERM); the next run goes on from here."
                );
                if let Some(Ok(_)) = next {
                    sqlx::raw_sql("ROLLBACK").execute(&mut *reader).await?;
                }
                return Ok(report);
            }
            Some(next) => {
                batch = next?;
                hand_over(reader, deleter, &batch).await?;
            }
            None => break,
        }
    }
    crate::metrics::table_done(
        &target.database,
        &format!("{}.{}", target.schema, target.table),
    );
    Ok(report)
}

/// Settings of both connections of a run: values print in the forms their input functions
/// read back (and the same way on both), and no statement or lock wait runs away. The
/// deleter holds a batch's snapshot open while the batch is uploaded and verified, which a
/// server-wide `idle_in_transaction_session_timeout` must not cut short. Notices are not
/// sent: the run acts on errors only, and the `ROLLBACK` that ends a failed batch on both
/// connections would otherwise log "there is no transaction in progress" for one of them.
const SESSION: &str = "SET statement_timeout = '15min'; SET lock_timeout = '30s'; \
    SET idle_in_transaction_session_timeout = 0; SET client_min_messages = error; \
    SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; \
    SET extra_float_digits = 1";

/// A table's columns as COPY sends them, where its key and timestamp are among them, and
/// the key's type.
struct Layout {
    columns: Columns,
    pk: usize,
    ts: usize,
    /// As `format_type` prints it, such as `bigint` or `character varying(64)`.
    pk_type: String,
}

impl Layout {
    async fn read(conn: &mut PgConnection, target: &Target) -> Result<Self, Error> {
        let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT a.attname::text, t.typname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attnum",
        )
        .bind(&table)
        .fetch_all(&mut *conn)
        .await?;
        let find = |name: &str| {
            rows.iter()
                .position(|(n, _, _)| n == name)
                .ok_or_else(|| Error::Copy(format!("{table} has no column {name:?}")))
        };
        let (pk, ts) = (find(&target.primary_key)?, find(&target.timestamp_column)?);
        let columns: Vec<(String, Kind)> = rows
            .iter()
            .map(|(name, typname, _)| (name.clone(), Kind::of(typname)))
            .collect();
        Ok(Self {
            columns: Columns::new(&columns),
            pk,
            ts,
            pk_type: rows[pk].2.clone(),
        })
    }
}

/// Ends the reader's transaction of `batch`, after the deleter has begun its own in the same
/// snapshot (when there is anything to delete): the delete then sees exactly the rows the
/// batch read, and neither a row inserted into its range since nor one changed since.
async fn hand_over(
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
fn batch_query(target: &Target, cutoff: &str, after: Option<&[String; 2]>, limit: u32) -> String {
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
    // The ORDER BY names the table's columns (`t.`): with an output column of the same name
    // and another type (as `pk::text` once was), a bare name would sort by the output.
    format!(
        "COPY (SELECT * FROM {table} t \
         WHERE {ts} < {}::timestamptz{keyset} ORDER BY t.{ts}, t.{pk} LIMIT {}) TO STDOUT",
        literal(cutoff),
        limit
    )
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
struct Batch {
    /// When reading it began.
    started: Instant,
    /// The size of its JSON lines, before compression.
    json_bytes: u64,
    /// It was cut short at the byte cap: more rows may follow even if it has fewer than the
    /// limit.
    cut: bool,
    /// Its gzip'd JSON lines, their SHA-256 and length.
    body: Body,
    /// The snapshot it was read in, exported from the reader's open transaction.
    snapshot: String,
    sha256: String,
    bytes: u64,
    keys: Vec<String>,
    first: [String; 2],
    last: [String; 2],
}

/// How much JSON is handed to the compressor at a time.
const CHUNK: usize = 256 * 1024;

/// Reads one batch with `copy`; the JSON lines are gzip'd on a blocking thread while the next
/// rows arrive, into memory up to `part_size` bytes and into a temporary file beyond.
async fn read_batch(
    conn: &mut PgConnection,
    copy: &str,
    layout: &Layout,
    cap: u64,
    part_size: usize,
) -> Result<Batch, Error> {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let compressor = tokio::task::spawn_blocking(move || {
        let mut gz = GzEncoder::new(Spill::new(part_size), Compression::fast());
        while let Some(chunk) = rx.blocking_recv() {
            gz.write_all(&chunk)?;
        }
        gz.finish()?.finish()
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

/// Uploads, verifies and describes one batch; returns its manifest.
async fn store_batch(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
    cutoff: &str,
    batch: Batch,
    number: u64,
) -> Result<Manifest, Error> {
    let object = object_key(
        &table_prefix(&options.prefix, target),
        &batch.first,
        &batch.last,
    );
    let (sha256, bytes) = (batch.sha256, batch.bytes);
    let path = Path::from(object.clone());
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::ContentType, "application/x-ndjson".into());
    attributes.insert(Attribute::ContentEncoding, "gzip".into());
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
    upload_batch(&upload, &object, batch.body).await?;
    crate::metrics::phase("upload", uploading.elapsed());
    failpoint(options, "uploaded", number)?;
    let rows = batch.keys.len() as u64;
    let verifying = Instant::now();
    verify_object(store, &object, &sha256, rows).await?;
    crate::metrics::phase("verify", verifying.elapsed());
    let manifest = Manifest {
        version: 1,
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
    };
    let json = serde_json::to_vec(&manifest).map_err(|e| Error::Copy(e.to_string()))?;
    store
        .put(
            &Path::from(format!("{object}.manifest.json")),
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
async fn upload_batch(upload: &Upload<'_>, object: &str, body: Body) -> Result<(), Error> {
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
    let manifest = Path::from(format!("{object}.manifest.json"));
    if exists(store.head(&manifest).await)? {
        return Ok(());
    }
    tracing::warn!(
        object,
        "Replacing an archive that a crashed run uploaded but never recorded."
    );
    upload.put(body, false).await
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

/// How an archived batch's rows are deleted: exactly the keys of its manifest, in one
/// transaction.
///
/// A batch of this run is deleted by its `(timestamp, key)` range in the snapshot it was
/// read in ([`Deletes::run_in_snapshot`]): rows inserted since are not visible there, and a
/// row changed since fails the delete, which then falls back to [`Deletes::run`]. That
/// one (also for batches of an interrupted run) deletes the range and returns the keys it
/// deleted; if any of them is not in the manifest (a row was inserted into the range after
/// it was read), the transaction is rolled back and the manifest's keys are deleted one by
/// one instead. Either way nothing that was not archived is deleted.
struct Deletes {
    by_range: String,
    by_keys: String,
    /// The range delete without `RETURNING`, for the snapshot the batch was read in.
    in_snapshot: String,
}

impl Deletes {
    fn new(target: &Target, layout: &Layout) -> Self {
        let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
        // Keys are cast to the primary key's own type, so that the deletes use its index.
        let pk_type = &layout.pk_type;
        let (ts, pk) = (ident(&target.timestamp_column), ident(&target.primary_key));
        let range = format!(
            "DELETE FROM {table} WHERE {ts} >= $1::timestamptz AND {ts} <= $3::timestamptz \
             AND ({ts}, {pk}) >= ($1::timestamptz, $2::text::{pk_type}) \
             AND ({ts}, {pk}) <= ($3::timestamptz, $4::text::{pk_type}) \
             AND {ts} < $5::timestamptz"
        );
        Self {
            by_range: format!("{range} RETURNING {pk}::text"),
            in_snapshot: range,
            by_keys: format!(
                "DELETE FROM {table} WHERE {pk} = ANY($1::text[]::{pk_type}[]) AND {ts} < $2::timestamptz"
            ),
        }
    }

    /// Deletes `manifest`'s rows on `conn`, whose transaction is in the snapshot the batch was
    /// read in (see `hand_over`), and commits. Rows of the range visible there are exactly
    /// the batch's, so its range is deleted without returning keys; if any of them changed
    /// since (a serialization failure) or the count differs, the transaction is rolled back
    /// and [`Deletes::run`] deletes by keys.
    async fn run_in_snapshot(
        &self,
        conn: &mut PgConnection,
        manifest: &Manifest,
    ) -> Result<u64, Error> {
        let deleted = sqlx::query_with(AssertSqlSafe(self.in_snapshot.as_str()), range(manifest)?)
            .execute(&mut *conn)
            .await;
        match deleted {
            Ok(done) if done.rows_affected() == manifest.rows => {
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
                Ok(done.rows_affected())
            }
            Ok(_) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                self.run(conn, manifest).await
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40001") => {
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                tracing::warn!(
                    object = manifest.object,
                    "Rows of the batch changed after it was read; deleting the archived keys."
                );
                self.run(conn, manifest).await
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                Err(e.into())
            }
        }
    }

    /// Deletes `manifest`'s rows; returns how many were deleted.
    async fn run(&self, conn: &mut PgConnection, manifest: &Manifest) -> Result<u64, Error> {
        let mut tx = conn.begin().await?;
        let gone: Vec<String> =
            sqlx::query_scalar_with(AssertSqlSafe(self.by_range.as_str()), range(manifest)?)
                .fetch_all(&mut *tx)
                .await?;
        let archived: std::collections::HashSet<&str> =
            manifest.keys.iter().map(String::as_str).collect();
        let deleted = if gone.iter().all(|k| archived.contains(k.as_str())) {
            tx.commit().await?;
            gone.len() as u64
        } else {
            tx.rollback().await?;
            tracing::warn!(
                object = manifest.object,
                "Rows that were not archived appeared in the batch's key range; deleting the archived keys one by one."
            );
            let mut tx = conn.begin().await?;
            let deleted = sqlx::query(AssertSqlSafe(self.by_keys.as_str()))
                .bind(&manifest.keys)
                .bind(&manifest.cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            deleted
        };
        if deleted != manifest.rows {
            tracing::warn!(
                object = manifest.object,
                deleted,
                archived = manifest.rows,
                "Fewer rows deleted than archived: some were deleted by someone else, or by an interrupted run."
            );
        }
        Ok(deleted)
    }
}

/// The parameters of the range deletes: `$1`, `$2` the first `(timestamp, key)` of the batch,
/// `$3`, `$4` its last, `$5` the cutoff.
fn range(manifest: &Manifest) -> Result<sqlx::postgres::PgArguments, Error> {
    use sqlx::Arguments;
    let mut args = sqlx::postgres::PgArguments::default();
    for value in [
        &manifest.first[0],
        &manifest.first[1],
        &manifest.last[0],
        &manifest.last[1],
        &manifest.cutoff,
    ] {
        args.add(value)
            .map_err(|e| Error::Copy(format!("binding a delete's range: {e}")))?;
    }
    Ok(args)
}

/// Completes the batches of interrupted runs: manifests without a completion marker.
async fn recover(
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
    let deletes = Deletes::new(target, &Layout::read(conn, target).await?);
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

fn object_key(table_prefix: &str, first: &[String; 2], last: &[String; 2]) -> String {
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

fn failpoint(options: &Options, step: &str, batch: u64) -> Result<(), Error> {
    let Some(point) = &options.failpoint else {
        return Ok(());
    };
    let (name, at) = match point.split_once('@') {
        Some((name, n)) => (name, n.parse().unwrap_or(1)),
        None => (point.as_str(), 1),
    };
    if name == step && at == batch {
        return Err(Error::Failpoint(point.clone()));
    }
    Ok(())
}

/// Redraws `db schema.table [#####.....]  45% 4500/10000 rows` on standard error.
fn progress(target: &Target, done: u64, total: u64) {
    let total = total.max(done).max(1);
    let filled = usize::try_from(done * 30 / total).unwrap_or(30);
    let end = if done >= total { "\n" } else { "" };
    // The bar is this option's output, on an interactive terminal only.
    #[allow(clippy::print_stderr)]
    {
        eprint!(
            "\r{} {}.{} [{}{}] {:3}% {done}/{total} rows{end}",
            target.database,
            target.schema,
            target.table,
            "#".repeat(filled),
            ".".repeat(30 - filled),
            done * 100 / total
        );
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
