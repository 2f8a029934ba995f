//! The archiver's metrics, scrapeable on `/metrics` during a run and written at its end with
//! `--metrics-file` (for the node exporter's textfile collector, as a Job should). Labels are
//! the configured database and table names (a bounded set) and bounded kinds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const RECORDS: &str = "archiver_records_archived_total";
pub const BYTES: &str = "archiver_bytes_uploaded_total";
pub const BATCHES: &str = "archiver_batches_total";
pub const PHASE: &str = "archiver_phase_duration_seconds";
pub const ERRORS: &str = "archiver_errors_total";
pub const LAST_SUCCESS: &str = "archiver_last_success_timestamp_seconds";
pub const SCHEMA_DRIFT: &str = "archiver_schema_drift_total";
pub const HELD: &str = "archiver_rows_held";

/// Describes the metrics on the installed recorder.
pub fn describe() {
    metrics::describe_counter!(RECORDS, "Rows archived, verified and deleted.");
    metrics::describe_counter!(BYTES, metrics::Unit::Bytes, "Compressed bytes uploaded.");
    metrics::describe_counter!(BATCHES, "Batches archived.");
    metrics::describe_histogram!(
        PHASE,
        metrics::Unit::Seconds,
        "Time of each phase of a batch: copy, upload, verify, delete."
    );
    metrics::describe_counter!(ERRORS, "Tables that failed, by kind of error.");
    metrics::describe_gauge!(
        HELD,
        "Rows due for archiving that a legal hold keeps, at the start of the table's last run."
    );
    metrics::describe_counter!(
        SCHEMA_DRIFT,
        "Runs that found a table's columns changed since its last archive."
    );
    metrics::describe_gauge!(
        LAST_SUCCESS,
        metrics::Unit::Seconds,
        "Unix time a table was last archived completely."
    );
}

pub(crate) fn phase(name: &'static str, took: Duration) {
    metrics::histogram!(PHASE, "phase" => name).record(took.as_secs_f64());
}

pub(crate) fn batch(database: &str, table: &str, rows: u64, bytes: u64) {
    let labels = [
        ("database", database.to_owned()),
        ("table", table.to_owned()),
    ];
    metrics::counter!(RECORDS, &labels).increment(rows);
    metrics::counter!(BYTES, &labels).increment(bytes);
    metrics::counter!(BATCHES, &labels).increment(1);
}

pub(crate) fn table_done(database: &str, table: &str) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    metrics::gauge!(LAST_SUCCESS, "database" => database.to_owned(), "table" => table.to_owned())
        .set(now);
}

pub(crate) fn error(kind: &'static str) {
    metrics::counter!(ERRORS, "kind" => kind).increment(1);
}

pub(crate) fn schema_drift(database: &str, table: &str) {
    metrics::counter!(SCHEMA_DRIFT, "database" => database.to_owned(), "table" => table.to_owned())
        .increment(1);
}

pub(crate) fn held(database: &str, table: &str, rows: u64) {
    metrics::gauge!(HELD, "database" => database.to_owned(), "table" => table.to_owned())
        .set(rows as f64);
}
