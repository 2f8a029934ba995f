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
//!    <first>_<last>.jsonl.gz`): create-only in one request when small, as a multipart upload
//!    when spilled;
//! 3. read back as a stream: SHA-256 and row count must match what was read from the table;
//! 4. described by a manifest (`prefix/db/schema.table/_manifests/year=.../<name>.manifest.json`:
//!    checksum, count, key range, the primary keys), written before anything is deleted;
//! 5. deleted, exactly the rows the batch read, in one transaction: in the snapshot the
//!    batch's COPY ran in, handed from the reading connection to the deleting one (see
//!    `delete::Deletes`);
//! 6. marked complete (`_manifests/.../<name>.done`).
//!
//! Batch N+1 is read while batch N goes through 2 to 6 on a second connection.
//!
//! Only a manifest makes an object an archive. A crash before 4 leaves the rows in the table
//! and perhaps an object no manifest records; before it archives anything, the next run (under
//! the lock) removes every such object of the table whose rows are all still in the table
//! (one holding a row that is gone is kept, and the table fails), whatever range the crashed
//! run had cut,
//! so the next cut cannot leave a copy of the same rows beside it. A crash between 4 and 6
//! leaves a manifest without a marker, which the next run completes first (verify the object
//! again, delete the listed keys, which is idempotent, write the marker). So no row is lost,
//! and each archived row is in exactly one data object.
//!
//! The steps live in submodules: `sizing` (how many rows a batch holds), `read` (the COPY and
//! its snapshot), `store` (upload, verification, manifest), `delete`, and `recover` (what an
//! interrupted run left).

use std::sync::Arc;
use std::time::Instant;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::config::Target;
use crate::error::Error;
use crate::manifest::{manifest_key, marker_key, table_prefix};
use crate::sql::ident;

mod delete;
mod read;
mod recover;
mod sizing;
mod store;

pub use crate::object::{MIN_PART_SIZE, PART_SIZE};
use delete::Deletes;
pub(crate) use read::{Column, columns, held_rows};
use read::{Layout, batch_query, hand_over, read_batch};
use recover::recover;
pub use sizing::MAX_BATCH_BYTES;
use sizing::{FIRST_BATCH_SHARE, first_limit, next_limit};
use store::store_batch;

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
    /// Told how far each table has come (the rows due are counted first only when it is set).
    pub progress: Option<Arc<dyn Progress>>,
    /// The most JSON a batch should hold, whatever its row count: batches of wide rows get
    /// fewer rows, so that objects, spill files and the time a batch takes stay bounded.
    /// `0` means [`MAX_BATCH_BYTES`].
    pub max_batch_bytes: u64,
    /// The size of one part of a multipart upload, and the most of a batch's compressed
    /// bytes kept in memory. `0` means [`PART_SIZE`]; S3 wants at least 5 MiB.
    pub part_size: usize,
    /// How archives are compressed.
    pub codec: crate::object::Codec,
    /// The compression level; `None` is the codec's default (see `Codec::levels`).
    pub compression_level: Option<u32>,
    /// A pause after each batch (`defaults.sleep_between_batches`).
    pub pause: std::time::Duration,
    /// Refuse to archive a table whose columns differ from its last archive's
    /// (`defaults.fail_on_schema_drift`); otherwise the difference is a warning and a metric.
    pub fail_on_schema_drift: bool,
    /// `VACUUM (ANALYZE)` a table after a run that deleted at least this many of its rows
    /// (`defaults.vacuum_after`, `vacuum_min_rows`); `None`: never.
    pub vacuum_min_rows: Option<u64>,
    /// The legal hold table (quoted SQL), when `legal_holds` is configured and enabled.
    pub hold_table: Option<String>,
}

impl Options {
    pub(crate) fn part_size(&self) -> usize {
        match self.part_size {
            0 => PART_SIZE,
            size => size,
        }
    }

    /// The most JSON a batch should hold.
    pub(crate) fn batch_bytes(&self) -> u64 {
        match self.max_batch_bytes {
            0 => MAX_BATCH_BYTES,
            cap => cap,
        }
    }
}

/// Told how far each table has come, for a progress display (the binary draws bars on an
/// interactive terminal).
pub trait Progress: Send + Sync + std::fmt::Debug {
    /// `done` of the `total` rows due of `target` are archived.
    fn advance(&self, target: &Target, done: u64, total: u64);
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
    let recovered = recover(deleter, store, options, target).await?;
    let mut report = Report {
        recovered: recovered.batches,
        ..Report::default()
    };
    let cutoff: String = sqlx::query_scalar("SELECT (now() - make_interval(days => $1))::text")
        .bind(i32::try_from(target.retention_days).unwrap_or(i32::MAX))
        .fetch_one(&mut *reader)
        .await?;
    let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
    let total = if options.progress.is_some() {
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
    if let Some(latest) = &recovered.latest {
        schema_drift(store, options, target, latest, &layout.described).await?;
    }
    if let Some(hold) = &options.hold_table {
        let held = read::held(reader, target, hold, &cutoff).await?;
        crate::metrics::held(
            &target.database,
            &format!("{}.{}", target.schema, target.table),
            held,
        );
        if held > 0 {
            tracing::warn!(
                database = target.database,
                table = format!("{}.{}", target.schema, target.table),
                held,
                "Rows under legal hold are due but kept: they are neither archived nor deleted."
            );
        }
    }
    let deletes = Deletes::new(target, &layout.pk_type);
    // The first batch is a quarter of the others: nothing overlaps its read, and the batches
    // after it overlap their reads with the uploads and deletes before them.
    let mut limit =
        (first_limit(reader, target, options, &cutoff).await? / FIRST_BATCH_SHARE).max(1);
    let (cap, part_size) = (options.batch_bytes(), options.part_size());
    let hold = options.hold_table.as_deref();
    let first = batch_query(target, &layout.select, hold, &cutoff, None, limit);
    let level = (options.codec, options.compression_level);
    let mut batch = read_batch(reader, &first, &layout, cap, part_size, level).await?;
    hand_over(reader, deleter, &batch).await?;
    while !batch.keys.is_empty() {
        let started = batch.started;
        let rows = batch.keys.len() as u64;
        let full = batch.cut || rows >= u64::from(limit);
        limit = next_limit(target, options, rows, batch.json_bytes);
        let stopping = options.stop.as_ref().is_some_and(|s| s.is_cancelled());
        let next = (full && !stopping).then(|| {
            batch_query(
                target,
                &layout.select,
                hold,
                &cutoff,
                Some(&batch.last),
                limit,
            )
        });
        let number = report.batches + 1;
        let finish = async {
            let manifest = store_batch(
                store,
                options,
                target,
                &cutoff,
                batch,
                number,
                &layout.described,
            )
            .await?;
            // The object is still there, now that its manifest is: only then are rows deleted.
            if let Err(object_store::Error::NotFound { .. }) =
                store.head(&Path::from(manifest.object.as_str())).await
            {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *deleter).await;
                return Err(Error::Verify {
                    key: manifest.object.clone(),
                    message:
                        "the archive is gone although its manifest was written; nothing was deleted"
                            .to_owned(),
                });
            }
            let deleting = Instant::now();
            deletes.run_in_snapshot(&mut *deleter, &manifest).await?;
            crate::metrics::phase("delete", deleting.elapsed());
            failpoint(options, "deleted", number)?;
            let table = table_prefix(&options.prefix, target);
            store
                .put(
                    &Path::from(marker_key(&manifest_key(&table, &manifest.object))),
                    PutPayload::from_static(b"done\n"),
                )
                .await?;
            Ok::<_, Error>(manifest)
        };
        let read_next = async {
            let copy = next.as_ref()?;
            // `sleep_between_batches`: the next read starts that long after this one ended
            // (the pause overlaps this batch's upload and delete, and holds no snapshot).
            if !options.pause.is_zero() {
                let stop = options.stop.clone().unwrap_or_default();
                tokio::select! {
                    () = tokio::time::sleep(options.pause) => {}
                    () = stop.cancelled() => {}
                }
            }
            Some(read_batch(&mut *reader, copy, &layout, cap, part_size, level).await)
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
        if let (Some(progress), Some(total)) = (&options.progress, total) {
            progress.advance(target, report.rows, u64::try_from(total).unwrap_or(0));
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
    SET extra_float_digits = 1; SET TimeZone = 'UTC'";

/// Compares the table's columns with those the manifest `latest` recorded: a difference is
/// logged and counted, and with `fail_on_schema_drift` refuses the table (nothing is read or
/// deleted). Archives of older versions record no columns and are not compared.
async fn schema_drift(
    store: &dyn ObjectStore,
    options: &Options,
    target: &Target,
    latest: &str,
    now: &[[String; 2]],
) -> Result<(), Error> {
    let before = crate::manifest::read_manifest(store, latest).await?.columns;
    if before.is_empty() || before == now {
        return Ok(());
    }
    let names =
        |cols: &[[String; 2]]| -> Vec<String> { cols.iter().map(|c| c[0].clone()).collect() };
    let (was, is) = (names(&before), names(now));
    let added: Vec<&String> = is.iter().filter(|n| !was.contains(n)).collect();
    let removed: Vec<&String> = was.iter().filter(|n| !is.contains(n)).collect();
    let changed: Vec<String> = now
        .iter()
        .filter_map(|[name, ty]| {
            let old = before.iter().find(|c| &c[0] == name)?;
            (&old[1] != ty).then(|| format!("{name} {} -> {ty}", old[1]))
        })
        .collect();
    let table = format!("{}.{}", target.schema, target.table);
    let what = format!(
        "database {}: {table}'s columns differ from its last archive ({latest}): added {added:?}, removed {removed:?}, retyped {changed:?}",
        target.database
    );
    crate::metrics::schema_drift(&target.database, &table);
    if options.fail_on_schema_drift {
        return Err(Error::Schema(format!(
            "{what}; fail_on_schema_drift is set, so nothing was archived"
        )));
    }
    tracing::warn!(
        database = target.database,
        table,
        "{what}; archiving with the new columns."
    );
    Ok(())
}

/// Stops the run with an error right after `step` of batch `batch`, when the options ask for
/// it (crash-recovery tests).
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

#[cfg(test)]
mod tests;
