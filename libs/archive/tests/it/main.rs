//! The archive pipeline against real PostgreSQL and a real S3 server (moto): archive, verify,
//! delete and restore with identical rows for the common column types; interrupted runs
//! completed without loss or duplicates; the run lock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bulwark_archive::config::Target;
use bulwark_archive::pipeline::{self, Options};
use bulwark_archive::restore::{Conflict, restore_table};
use bulwark_archive::{Error, lock, manifest};
use bulwark_storage::S3Options;
use bulwark_test_util::moto::{self, MotoServer};
use bulwark_test_util::postgres::TestPostgres;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const SCHEMA: &str = "
CREATE TABLE audit_log (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL,
    actor text,
    details jsonb,
    amount numeric(30, 10),
    payload bytea,
    tags text[],
    flag boolean,
    note text,
    ratio double precision,
    span interval,
    uid uuid,
    small smallint,
    doc json
);
CREATE INDEX ON audit_log (created_at, id);
";

/// 500 old rows of every type (with NULLs, awkward text, NaN and infinities) and 20 recent
/// ones.
const ROWS: &str = "
INSERT INTO audit_log
SELECT i,
       now() - make_interval(days => 100 + (i % 50), secs => i),
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'user-' || i || E' tab\\there \\\\ back \"quote\"\\nnewline ✓' END,
       CASE WHEN i % 5 = 0 THEN NULL WHEN i % 11 = 0 THEN 'null'::jsonb ELSE jsonb_build_object('i', i, 'nested', jsonb_build_object('a', ARRAY[1,2,3]), 's', E'x\\ny') END,
       CASE WHEN i % 3 = 0 THEN NULL ELSE 12345678901234567890.0123456789 / i END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') || '\\x00ff'::bytea END,
       CASE WHEN i % 6 = 0 THEN NULL ELSE ARRAY['a', 'b,c', E'd\"e'] END,
       i % 2 = 0,
       repeat('n', i % 10),
       CASE i % 5 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' WHEN 3 THEN 1e300 / i ELSE 0.1 * i END,
       make_interval(days => i, secs => i / 7.0),
       md5(i::text)::uuid,
       (i % 100 - 50)::smallint,
       CASE WHEN i % 9 = 0 THEN NULL ELSE ('{\"k\": ' || i || ', \"s\": \"a\\\"b\"}')::json END
FROM generate_series(1, 500) AS i;
INSERT INTO audit_log
SELECT i, now() - make_interval(days => 1), 'recent', NULL, 1, NULL, NULL, true, ''
FROM generate_series(1001, 1020) AS i;
";

const CHECKSUM: &str = "SELECT count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') FROM audit_log t";

struct Setup {
    _pg: TestPostgres,
    url: String,
    store: Arc<dyn ObjectStore>,
    target: Target,
    options: Options,
    progress: Arc<Recorded>,
}

/// The progress a run reports, as `(done, total)` per report.
#[derive(Debug, Default)]
struct Recorded(std::sync::Mutex<Vec<(u64, u64)>>);

impl pipeline::Progress for Recorded {
    fn advance(&self, _: &Target, done: u64, total: u64) {
        self.0.lock().unwrap().push((done, total));
    }
}

async fn setup(batch_size: u32) -> Setup {
    let pg = TestPostgres::start().unwrap();
    pg.create_database("audit").unwrap();
    let url = pg.url("audit");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&mut conn).await.unwrap();
    sqlx::raw_sql(ROWS).execute(&mut conn).await.unwrap();
    let moto = MotoServer::shared().unwrap();
    let bucket = moto.create_unique_bucket("archive").unwrap();
    let store = s3(moto.endpoint(), bucket);
    let progress = Arc::new(Recorded::default());
    Setup {
        progress: progress.clone(),
        _pg: pg,
        url,
        store,
        target: Target {
            database: "audit".to_owned(),
            schema: "public".to_owned(),
            table: "audit_log".to_owned(),
            timestamp_column: "created_at".to_owned(),
            primary_key: "id".to_owned(),
            retention_days: 90,
            batch_size,
            critical: false,
        },
        options: Options {
            prefix: "audit-archive".to_owned(),
            storage_class: Some("STANDARD_IA".to_owned()),
            failpoint: None,
            stop: None,
            progress: Some(progress),
            max_batch_bytes: 0,
            part_size: 0,
            codec: bulwark_archive::object::Codec::Gzip,
            compression_level: None,
            pause: std::time::Duration::ZERO,
            fail_on_schema_drift: false,
            vacuum_min_rows: None,
            hold_table: None,
        },
    }
}

/// How a fake S3 endpoint misbehaves.
#[derive(Clone, Copy)]
enum Fake {
    /// Accepts connections and reads requests, never answers.
    Silent,
    /// Answers every request with 503 Service Unavailable.
    Unavailable,
}

/// A misbehaving S3 endpoint on loopback; its URL.
fn fake_s3(fake: Fake) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut tcp in listener.incoming().flatten() {
            if let Fake::Unavailable = fake {
                let mut buf = [0u8; 65536];
                let _ = tcp.read(&mut buf);
                let _ = tcp.write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
            held.push(tcp);
        }
    });
    url
}

/// An S3 store on `endpoint` with moto's credentials.
fn s3(endpoint: &str, bucket: impl Into<String>) -> Arc<dyn ObjectStore> {
    bulwark_storage::s3(&moto::s3_options(endpoint, bucket)).unwrap()
}

/// One archive run of the test table on `conn`, with a second connection for deletes.
async fn archive(
    s: &Setup,
    conn: &mut PgConnection,
    store: &dyn ObjectStore,
    options: &Options,
) -> Result<pipeline::Report, Error> {
    let mut deleter = PgConnection::connect(&s.url).await.unwrap();
    pipeline::archive_table(conn, &mut deleter, store, options, &s.target).await
}

/// A run of the test table with `options` that stops at failpoint `point`.
async fn crash_at(s: &Setup, conn: &mut PgConnection, options: &Options, point: &str) {
    let options = Options {
        failpoint: Some(point.to_owned()),
        ..options.clone()
    };
    let err = archive(s, conn, &*s.store, &options).await.unwrap_err();
    assert!(matches!(err, Error::Failpoint(_)), "{err}");
}

/// Every archive verifies, and restoring them all gives back `original`: archive plus table
/// equal what the table held.
async fn assert_restores_to(s: &Setup, conn: &mut PgConnection, original: &str) {
    manifest::verify_table(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    restore_table(conn, &*s.store, &s.options, &s.target, Conflict::Fail)
        .await
        .unwrap();
    assert_eq!(checksum(conn).await, original);
}

/// Every object's name in `store`.
async fn names(store: &dyn ObjectStore) -> Vec<String> {
    store
        .list(None)
        .map(|m| m.unwrap().location.to_string())
        .collect()
        .await
}

async fn checksum(conn: &mut PgConnection) -> String {
    sqlx::query_scalar(CHECKSUM).fetch_one(conn).await.unwrap()
}

async fn count(conn: &mut PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn archive_verify_delete_restore_round_trip() {
    let s = setup(120).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let original = checksum(&mut conn).await;
    assert_eq!(
        pipeline::count_due(&mut conn, &s.target).await.unwrap(),
        500
    );

    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!((report.rows, report.batches, report.recovered), (500, 5, 0));
    assert_eq!(count(&mut conn).await, 20, "only the recent rows stay");
    // The progress callback heard of each batch, up to every row due.
    let reports = s.progress.0.lock().unwrap().clone();
    assert_eq!(reports.len(), 5);
    assert!(reports.windows(2).all(|w| w[0].0 < w[1].0), "{reports:?}");
    assert_eq!(reports.last(), Some(&(500, 500)));
    assert_eq!(
        manifest::verify_table(&*s.store, &s.options, &s.target)
            .await
            .unwrap(),
        5
    );
    let manifests = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    let keys: usize = manifests.iter().map(|m| m.keys.len()).sum();
    assert_eq!(keys, 500);
    assert!(
        manifests[0]
            .object
            .starts_with("audit-archive/audit/public.audit_log/year="),
        "{}",
        manifests[0].object
    );

    // A second run finds nothing to do and changes nothing.
    let again = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(again.rows, 0);

    // Restore: identical rows, every type.
    let restored = restore_table(&mut conn, &*s.store, &s.options, &s.target, Conflict::Fail)
        .await
        .unwrap();
    assert_eq!(restored, 500);
    assert_eq!(checksum(&mut conn).await, original);
    // Restoring again: skip keeps the table, fail refuses, overwrite keeps it identical.
    assert_eq!(
        restore_table(&mut conn, &*s.store, &s.options, &s.target, Conflict::Skip)
            .await
            .unwrap(),
        0
    );
    assert!(
        restore_table(&mut conn, &*s.store, &s.options, &s.target, Conflict::Fail)
            .await
            .is_err()
    );
    assert_eq!(
        restore_table(
            &mut conn,
            &*s.store,
            &s.options,
            &s.target,
            Conflict::Overwrite
        )
        .await
        .unwrap(),
        500
    );
    assert_eq!(checksum(&mut conn).await, original);
}

#[tokio::test]
async fn interrupted_runs_are_completed_without_loss_or_duplicates() {
    let s = setup(50).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let original = checksum(&mut conn).await;
    // Stop after each step of different batches, then run to completion.
    for point in [
        "uploaded@1",
        "manifest@2",
        "deleted@1",
        "uploaded@2",
        "manifest@1",
        "deleted@2",
    ] {
        crash_at(&s, &mut conn, &s.options, point).await;
    }
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert!(report.recovered >= 1, "{report:?}");
    assert_eq!(count(&mut conn).await, 20);
    // Every archived key exactly once across all manifests, and all 500 of them.
    let manifests = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    let mut keys: Vec<i64> = manifests
        .iter()
        .flat_map(|m| m.keys.iter().map(|k| k.parse::<i64>().unwrap()))
        .collect();
    keys.sort_unstable();
    let before = keys.len();
    keys.dedup();
    assert_eq!(before, keys.len(), "a row was archived twice");
    assert_eq!(keys, (1..=500).collect::<Vec<_>>());
    assert_restores_to(&s, &mut conn, &original).await;
}

/// An upload a crashed run never recorded is removed before the next run cuts its batches,
/// however differently it cuts them, so its rows end up in exactly one data object; until
/// then, `verify` reports it.
#[tokio::test]
async fn an_unrecorded_upload_is_removed_before_the_next_cut() {
    let mut s = setup(50).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    crash_at(&s, &mut conn, &s.options, "uploaded@1").await;
    let objects = |store: Arc<dyn ObjectStore>| async move {
        let mut names: Vec<String> = store
            .list(None)
            .map(|m| m.unwrap().location.to_string())
            .filter(|n| std::future::ready(n.ends_with(".jsonl.gz")))
            .collect()
            .await;
        names.sort();
        names
    };
    let orphan = objects(s.store.clone()).await;
    assert_eq!(orphan.len(), 1, "{orphan:?}");
    let error = manifest::verify_table(&*s.store, &s.options, &s.target)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(
            "1 data object(s) under audit-archive/audit/public.audit_log have no manifest"
        ),
        "{error}"
    );
    // The next run cuts the first batch elsewhere (another batch size).
    s.target.batch_size = 70;
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 500, "{report:?}");
    let after = objects(s.store.clone()).await;
    assert!(!after.contains(&orphan[0]), "{after:?}");
    let everything = names(&*s.store).await;
    assert!(
        everything
            .iter()
            .filter(|n| !n.ends_with(".jsonl.gz"))
            .all(|n| n.contains("/_manifests/")),
        "{everything:?}"
    );
    assert_eq!(
        manifest::verify_table(&*s.store, &s.options, &s.target)
            .await
            .unwrap(),
        after.len() as u64
    );
}

/// A row inserted into a batch's key range after the batch was read is not deleted with it:
/// the range delete sees a key the manifest lacks, rolls back, and deletes by key instead.
#[tokio::test]
async fn a_row_inserted_into_an_archived_range_is_kept() {
    let s = setup(120).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    crash_at(&s, &mut conn, &s.options, "manifest@1").await;
    // Batch 1 is archived and described but not deleted; a late row lands inside its range.
    sqlx::raw_sql(
        "INSERT INTO audit_log (id, created_at, actor)
         SELECT 5000, created_at, 'late' FROM audit_log ORDER BY created_at, id OFFSET 10 LIMIT 1",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.recovered, 1);
    assert_eq!(count(&mut conn).await, 20);
    let mut keys: Vec<i64> = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap()
        .iter()
        .flat_map(|m| m.keys.iter().map(|k| k.parse::<i64>().unwrap()))
        .collect();
    keys.sort_unstable();
    let mut expected: Vec<i64> = (1..=500).collect();
    expected.push(5000);
    assert_eq!(
        keys, expected,
        "the late row was deleted without being archived"
    );
}

/// SIGTERM (the stop token) lets the batch in progress complete, then the run stops; the
/// batch read ahead is dropped, and the next run goes on from there.
#[tokio::test]
async fn a_stop_completes_the_batch_in_progress_then_stops() {
    let s = setup(100).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    let options = Options {
        stop: Some(stop),
        ..s.options.clone()
    };
    let report = archive(&s, &mut conn, &*s.store, &options).await.unwrap();
    // A table's first batch is a quarter of `batch_size`.
    assert_eq!((report.batches, report.rows), (1, 25));
    assert_eq!(count(&mut conn).await, 495);
    let rest = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!((rest.rows, rest.recovered), (475, 0));
    assert_eq!(count(&mut conn).await, 20);
}

/// Wide rows get smaller batches: no batch holds much more JSON than `max_batch_bytes`,
/// whatever `batch_size` says, and every row is still archived once.
#[tokio::test]
async fn batches_of_wide_rows_are_bounded_by_bytes() {
    let s = setup(10_000).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql("UPDATE audit_log SET note = repeat('w', 20000) WHERE id % 10 <> 0")
        .execute(&mut conn)
        .await
        .unwrap();
    let width: std::collections::HashMap<i64, u64> = sqlx::query_as::<_, (i64, i32)>(
        "SELECT id, octet_length(row_to_json(t)::text) FROM audit_log t",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|(id, w)| (id, u64::try_from(w).unwrap()))
    .collect();
    let cap = 200_000;
    let options = Options {
        max_batch_bytes: cap,
        ..s.options.clone()
    };
    let report = archive(&s, &mut conn, &*s.store, &options).await.unwrap();
    assert_eq!(report.rows, 500);
    // Rows are about 18 KB of JSON: about 11 to a batch. Batches are sized from the rows
    // before them and cut short at the cap when narrow rows are followed by wide ones.
    assert!(report.batches >= 30, "{report:?}");
    let manifests = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    // Each batch's JSON, from each row's width (`row_to_json` is within a few bytes of ours).
    for m in &manifests {
        let json: u64 = m
            .keys
            .iter()
            .map(|k| width[&k.parse::<i64>().unwrap()] + 16)
            .sum();
        assert!(
            json <= cap + 21_000,
            "a batch of {} rows holds {json} bytes of JSON",
            m.rows
        );
    }
    assert_eq!(count(&mut conn).await, 20);
}

/// An object store that runs one SQL statement when the first manifest is written: between
/// a batch's COPY and its delete, as another client of the table could.
#[derive(Debug)]
struct Meddler {
    inner: Arc<dyn ObjectStore>,
    url: String,
    sql: std::sync::Mutex<Option<String>>,
}

impl std::fmt::Display for Meddler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Meddler({})", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Meddler {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let sql = match location.as_ref().ends_with(".manifest.json") {
            true => self.sql.lock().unwrap().take(),
            false => None,
        };
        if let Some(sql) = sql {
            let mut conn = PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        self.inner.put_opts(location, payload, opts).await
    }
    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }
    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// The delete of a batch works in the snapshot the batch was read in: a row inserted into
/// the batch's range after the COPY is kept, and a row changed after the COPY makes the
/// delete fall back to the archived keys, without an error either way.
#[tokio::test]
async fn the_delete_sees_only_what_the_batch_read() {
    let s = setup(120).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let late = "INSERT INTO audit_log (id, created_at, actor) \
        SELECT 5000, created_at, 'late' FROM audit_log ORDER BY created_at, id OFFSET 10 LIMIT 1";
    let store = Meddler {
        inner: s.store.clone(),
        url: s.url.clone(),
        sql: std::sync::Mutex::new(Some(late.to_owned())),
    };
    let report = archive(&s, &mut conn, &store, &s.options).await.unwrap();
    assert_eq!(report.rows, 500, "{report:?}");
    let kept: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_log WHERE actor = 'late'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        kept,
        [5000],
        "the late row was deleted without being archived"
    );
    let next = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(next.rows, 1, "{next:?}");

    // A row of the first batch changes after it was read.
    let s = setup(120).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let change = "UPDATE audit_log SET small = 7 WHERE id = \
        (SELECT id FROM audit_log ORDER BY created_at, id OFFSET 10 LIMIT 1)";
    let store = Meddler {
        inner: s.store.clone(),
        url: s.url.clone(),
        sql: std::sync::Mutex::new(Some(change.to_owned())),
    };
    let report = archive(&s, &mut conn, &store, &s.options).await.unwrap();
    assert_eq!(report.rows, 500, "{report:?}");
    assert_eq!(count(&mut conn).await, 20);
}

/// The deleter holds each batch's snapshot open while the batch is uploaded: a server that
/// ends idle transactions quickly does not end ours.
#[tokio::test]
async fn a_slow_upload_outlasts_the_servers_idle_transaction_timeout() {
    let s = setup(250).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql("ALTER DATABASE audit SET idle_in_transaction_session_timeout = '100ms'")
        .execute(&mut conn)
        .await
        .unwrap();
    let store = Meddler {
        inner: s.store.clone(),
        url: s.url.clone(),
        sql: std::sync::Mutex::new(Some("SELECT pg_sleep(0.5)".to_owned())),
    };
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let report = archive(&s, &mut conn, &store, &s.options).await.unwrap();
    assert_eq!(report.rows, 500, "{report:?}");
    assert_eq!(count(&mut conn).await, 20);
}

/// A batch larger than one part goes as a multipart upload from a temporary file, and comes
/// back intact. The upload of a run that crashed before writing a manifest is replaced even
/// when the rows of its range changed since (nothing was deleted on its strength).
#[tokio::test]
async fn large_batches_go_in_parts_and_crashed_uploads_are_replaced() {
    let s = setup(100_000).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    // About 48 KB of random hex per old row: 24 MB of JSON that gzip halves at best.
    sqlx::raw_sql(
        "UPDATE audit_log SET note = (SELECT string_agg(md5(random()::text || id || g), '') \
         FROM generate_series(1, 1500) g) WHERE id <= 500",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let options = Options {
        part_size: pipeline::MIN_PART_SIZE,
        codec: bulwark_archive::object::Codec::Gzip,
        compression_level: None,
        pause: std::time::Duration::ZERO,
        fail_on_schema_drift: false,
        vacuum_min_rows: None,
        hold_table: None,
        max_batch_bytes: 256 * 1024 * 1024,
        ..s.options.clone()
    };
    crash_at(&s, &mut conn, &options, "uploaded@1").await;
    assert_eq!(
        count(&mut conn).await,
        520,
        "nothing is deleted before a manifest"
    );
    // A row inside the crashed batch changes: the rerun's object differs from the orphan.
    sqlx::raw_sql("UPDATE audit_log SET actor = 'changed' WHERE id = 250")
        .execute(&mut conn)
        .await
        .unwrap();
    let original = checksum(&mut conn).await;
    let report = archive(&s, &mut conn, &*s.store, &options).await.unwrap();
    assert_eq!((report.rows, report.batches), (500, 1), "{report:?}");
    assert!(
        report.bytes > 2 * pipeline::MIN_PART_SIZE as u64,
        "{report:?}"
    );
    let manifests = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    let object = s
        .store
        .head(&object_store::path::Path::from(manifests[0].object.clone()))
        .await
        .unwrap();
    // S3 gives a multipart object an ETag of `"<digest>-<parts>"`.
    let etag = object.e_tag.unwrap_or_default();
    assert!(
        etag.trim_matches('"').contains('-'),
        "not multipart: {etag}"
    );
    assert_eq!(object.size, report.bytes);
    assert_restores_to(&s, &mut conn, &original).await;
}

/// The same for a small batch, uploaded create-only in one request.
#[tokio::test]
async fn a_small_upload_of_a_crashed_run_is_replaced() {
    let s = setup(120).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    crash_at(&s, &mut conn, &s.options, "uploaded@1").await;
    sqlx::raw_sql(
        "UPDATE audit_log SET actor = 'changed' WHERE id = \
         (SELECT id FROM audit_log ORDER BY created_at, id OFFSET 50 LIMIT 1)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let original = checksum(&mut conn).await;
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 500, "{report:?}");
    assert_restores_to(&s, &mut conn, &original).await;
}

/// Batches follow the typed order of `(timestamp, primary key)`, not the order of their text:
/// as text, key 10 sorts before key 9, which once left 9 behind when a batch ended at 10.
#[tokio::test]
async fn batches_follow_the_typed_key_order() {
    let s = setup(1).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql(
        "DELETE FROM audit_log;
         INSERT INTO audit_log (id, created_at) SELECT i, now() - interval '100 days' FROM generate_series(8, 11) i;",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!((report.rows, report.batches), (4, 4));
    assert_eq!(count(&mut conn).await, 0, "a row was left behind");
    let mut firsts: Vec<String> = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.first[1].clone())
        .collect();
    firsts.sort_by_key(|k| k.parse::<i64>().unwrap());
    assert_eq!(firsts, ["8", "9", "10", "11"]);
}

#[tokio::test]
async fn a_second_run_cannot_take_the_lock() {
    let s = setup(100).await;
    let mut first = PgConnection::connect(&s.url).await.unwrap();
    let mut second = PgConnection::connect(&s.url).await.unwrap();
    assert!(lock::try_lock(&mut first, "audit").await.unwrap());
    assert!(!lock::try_lock(&mut second, "audit").await.unwrap());
    // Another database has its own lock.
    assert!(lock::try_lock(&mut second, "billing").await.unwrap());
    // When the first run's connection ends, its lock is free again; the server releases it
    // as the backend exits, a moment after the client has closed.
    first.close().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !lock::try_lock(&mut second, "audit").await.unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_tampered_archive_fails_verification() {
    let s = setup(1000).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    let manifest = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap()
        .remove(0);
    use object_store::ObjectStoreExt;
    s.store
        .put(
            &object_store::path::Path::from(manifest.object.clone()),
            b"garbage".to_vec().into(),
        )
        .await
        .unwrap();
    let err = manifest::verify_table(&*s.store, &s.options, &s.target)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Verify { .. }), "{err}");
    assert!(err.to_string().contains("SHA-256"), "{err}");
    // Restore checks as it streams and keeps nothing of an archive that fails.
    let before = count(&mut conn).await;
    let err = restore_table(&mut conn, &*s.store, &s.options, &s.target, Conflict::Fail)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert_eq!(count(&mut conn).await, before);
}

#[tokio::test]
async fn storage_failures_delete_nothing_and_database_restarts_are_survived() {
    let s = setup(100).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let original = checksum(&mut conn).await;
    // An S3 endpoint that refuses connections: the batch fails before anything is deleted.
    let dead = s3("http://127.0.0.1:9", "nowhere");
    let err = archive(&s, &mut conn, &*dead, &s.options)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "storage", "{err}");
    assert_eq!(
        checksum(&mut conn).await,
        original,
        "rows changed although nothing was stored"
    );

    // A server that never answers, and one that answers every request with 503: the
    // configured timeout and retries end the run, and nothing is deleted.
    for (name, behaviour) in [("silent", Fake::Silent), ("failing", Fake::Unavailable)] {
        let endpoint = fake_s3(behaviour);
        let store = bulwark_storage::s3(&S3Options {
            timeout: Some(std::time::Duration::from_millis(300)),
            max_retries: Some(1),
            retry_timeout: Some(std::time::Duration::from_secs(5)),
            ..moto::s3_options(&endpoint, name)
        })
        .unwrap();
        let started = std::time::Instant::now();
        let err = archive(&s, &mut conn, &*store, &s.options)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "storage", "{name}: {err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{name}: {:?}",
            started.elapsed()
        );
        assert_eq!(checksum(&mut conn).await, original, "{name}: rows changed");
    }

    // A bucket that does not exist: the same.
    let missing = s3(
        MotoServer::shared().unwrap().endpoint(),
        "no-such-bucket-for-the-archiver".to_owned(),
    );
    assert!(archive(&s, &mut conn, &*missing, &s.options).await.is_err());
    assert_eq!(checksum(&mut conn).await, original);

    // The database restarts between runs (and mid-run, after one batch): a new connection
    // completes the job without loss.
    let options = Options {
        failpoint: Some("manifest@2".to_owned()),
        ..s.options.clone()
    };
    assert!(archive(&s, &mut conn, &*s.store, &options).await.is_err());
    s._pg.restart().unwrap();
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "the old connection is gone"
    );
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.recovered, 1);
    assert_eq!(count(&mut conn).await, 20);
    restore_table(&mut conn, &*s.store, &s.options, &s.target, Conflict::Fail)
        .await
        .unwrap();
    assert_eq!(checksum(&mut conn).await, original);
}

#[tokio::test]
async fn a_failing_table_does_not_stop_the_others() {
    use bulwark_archive::config::Database;
    use bulwark_archive::run::{self, Command};
    let s = setup(100).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql("CREATE TABLE second_log AS SELECT * FROM audit_log; ALTER TABLE second_log ADD PRIMARY KEY (id);")
        .execute(&mut conn)
        .await
        .unwrap();
    let socket = s.url.split("host=").nth(1).unwrap().to_owned();
    let db = Database {
        name: "audit".to_owned(),
        host: socket,
        port: 5432,
        user: "postgres".to_owned(),
        password_env: None,
        tables: Vec::new(),
        read_replica: None,
        connection_pool_size: None,
        password: None,
    };
    let missing = Target {
        table: "no_such_table".to_owned(),
        ..s.target.clone()
    };
    let second = Target {
        table: "second_log".to_owned(),
        ..s.target.clone()
    };
    let targets = [missing.clone(), s.target.clone(), second];
    let code =
        run::run_database(&db, None, &targets, &*s.store, &s.options, Command::Archive).await;
    assert_eq!(code, run::Outcome::Partial);
    assert_eq!(count(&mut conn).await, 20);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM second_log")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 20);
    // Marked critical, the same failure stops the run: the others stop after their batch.
    let critical = Target {
        critical: true,
        ..missing
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let options = Options {
        stop: Some(stop.clone()),
        ..s.options.clone()
    };
    sqlx::raw_sql(
        "INSERT INTO audit_log (id, created_at, actor) \
         SELECT i, now() - interval '200 days' - i * interval '1 second', 'again' FROM generate_series(10000, 10499) i",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let before = count(&mut conn).await;
    let code = run::run_database(
        &db,
        None,
        &[critical, s.target.clone()],
        &*s.store,
        &options,
        Command::Archive,
    )
    .await;
    assert_eq!(code, run::Outcome::Critical);
    assert!(stop.is_cancelled());
    // The other table stopped after its batch in progress, far from done.
    let after = count(&mut conn).await;
    assert!(after > 300 && after < before, "{before} -> {after}");
}

const EVERY_TYPE: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE DOMAIN blob AS bytea CHECK (octet_length(VALUE) = 4 OR octet_length(VALUE) = 0);
CREATE TYPE pair AS (a int, b text);
CREATE TABLE every_type (
  id bigint PRIMARY KEY, created_at timestamptz NOT NULL,
  i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, num numeric(40,10), num_any numeric, cash money,
  txt text, vc varchar(20), ch char(5), bin bytea, b bool, uid uuid,
  d date, t time, ttz timetz, ts timestamp, iv interval,
  js json, jsb jsonb, x xml,
  ip inet, net cidr, mac macaddr, mac8 macaddr8,
  bits bit(4), vbits varbit(8), tsv tsvector, tsq tsquery,
  pt point, ln line, ls lseg, bx box, pth path, pg polygon, ci circle,
  r4 int4range, rn numrange, rts tstzrange, rd daterange, mr int4multirange,
  e mood, dom positive, dblob blob, comp pair,
  a_int int[], a_int2d int[], a_text text[], a_num numeric[], a_ts timestamptz[], a_bytea bytea[],
  a_jsonb jsonb[], a_uuid uuid[], a_comp pair[], a_enum mood[], a_bool bool[], a_inet inet[],
  a_lb int[], a_empty int[], a_float float8[], a_interval interval[], a_date date[], a_range int4range[]
);
INSERT INTO every_type VALUES
 (1, now() - interval '200 days', 32767, -2147483648, 9223372036854775807, 1.5, 0.1, 1234567890123456789012345678.0123456789, 1e-30, 12.34,
  E'tab\there, "quoted" {braces} back\\slash ✓', 'varchar', 'ch', '\x00ff10'::bytea, true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '2026-02-28', '23:59:59.999999', '12:00:00+05:30', '2026-06-07 23:18:09.170185', '1 year 2 mons 3 days 04:05:06.7',
  '{"b": 1,  "a": [1, 2]}', '{"k": "v", "n": null}', '<a href="x">t</a>',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
  B'1010', B'101', 'a fat:2 cat', 'fat & rat',
  '(1,2)', '{1,-1,0}', '[(0,0),(1,1)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(1,0))', '<(0,0),1>',
  '[1,5)', '(1.5,2.5]', '["2026-01-01 00:00:00+00","2026-02-01 00:00:00+00")', '[2026-01-01,2026-02-01)', '{[1,3),[5,7)}',
  'happy', 7, '\xdeadbeef', ROW(1, 'x, "y"'),
  '{1,2,NULL}', '{{1,2},{3,4}}', ARRAY['a', 'b,c', 'd"e', NULL, '', 'NULL', '{x}', E'back\\slash'], '{1.10,NaN,-0.5}',
  ARRAY['2026-01-01 10:00:00+00'::timestamptz, 'infinity'], ARRAY['\x01'::bytea, '\x'], ARRAY['{"a": 1}'::jsonb, 'null', '[]', '[1, 2]'],
  ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid], ARRAY[ROW(1, 'a')::pair, ROW(NULL, NULL)::pair], '{sad,happy}', '{t,f,NULL}', '{10.0.0.1,::1}',
  '[0:1]={5,6}', '{}', '{1.5,Infinity,-Infinity,NaN}', '{"1 day","-00:00:01"}', '{2026-01-01,infinity}', '{"[1,2)",empty}'),
 (2, now() - interval '200 days', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, now() - interval '200 days', 0, 0, 0, 'NaN', '-Infinity', 0, 'NaN', -0.01,
  '', '', '', '\x'::bytea, false, '00000000-0000-0000-0000-000000000000',
  'infinity', '00:00', '00:00:00-03', '-infinity', '-1 days',
  'null', 'null', '', '::1', '::/0', '00:00:00:00:00:00', '00:00:00:00:00:00:00:00',
  B'0000', B'', '', 'a', '(0,0)', '{0,1,0}', '[(0,0),(0,0)]', '(0,0),(0,0)', '((0,0))', '((0,0))', '<(0,0),0>',
  'empty', 'empty', 'empty', 'empty', '{}', 'ok', 1, '\x', ROW(NULL, NULL),
  '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}');
"#;

/// Every built-in type family goes out as typed JSON and comes back identical: the table's
/// text, row by row, is the same after archive and restore, SQL NULL and JSON null apart.
#[tokio::test]
async fn every_type_round_trips_through_typed_json() {
    let mut s = setup(100).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql(EVERY_TYPE).execute(&mut conn).await.unwrap();
    s.target.table = "every_type".to_owned();
    let sum = "SELECT count(*)::text || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM every_type t";
    let original: String = sqlx::query_scalar(sum).fetch_one(&mut conn).await.unwrap();
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 3, "{report:?}");

    // The lines as a reader sees them.
    let manifests = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    assert!(manifests.iter().all(|m| m.version == 2));
    let gz = s
        .store
        .get(&Path::from(manifests[0].object.clone()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
        .unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let one = &lines[0];
    assert_eq!(one["num"], "1234567890123456789012345678.0123456789");
    assert_eq!(one["bin"], "AP8Q");
    assert_eq!(one["ts"], "2026-06-07T23:18:09.170185");
    assert!(
        one["created_at"].as_str().unwrap().ends_with("+00:00"),
        "{}",
        one["created_at"]
    );
    assert_eq!(one["a_int"], serde_json::json!([1, 2, null]));
    assert_eq!(one["a_int2d"], serde_json::json!([[1, 2], [3, 4]]));
    assert_eq!(one["a_num"], serde_json::json!(["1.10", "NaN", "-0.5"]));
    assert_eq!(
        one["a_jsonb"],
        serde_json::json!(["{\"a\": 1}", "null", "[]", "[1, 2]"])
    );
    assert_eq!(one["a_lb"], "[0:1]={5,6}");
    assert_eq!(one["jsb"], serde_json::json!({"k": "v", "n": null}));
    let two = lines[1].as_object().unwrap();
    assert!(
        !two.contains_key("jsb") && !two.contains_key("a_int"),
        "{two:?}"
    );
    assert_eq!(two["txt"], serde_json::Value::Null);
    assert_eq!(lines[2]["jsb"], serde_json::Value::Null);
    assert!(lines[2].as_object().unwrap().contains_key("jsb"));

    restore_table(&mut conn, &*s.store, &s.options, &s.target, Conflict::Fail)
        .await
        .unwrap();
    let restored: String = sqlx::query_scalar(sum).fetch_one(&mut conn).await.unwrap();
    assert_eq!(restored, original);
    let nulls: (bool, bool) = sqlx::query_as("SELECT (SELECT jsb IS NULL FROM every_type WHERE id = 2), (SELECT jsb = 'null'::jsonb FROM every_type WHERE id = 3)")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(nulls, (true, true));
}

/// Manifests record the table's columns; a run that finds them changed since the last
/// archive says what changed, and with `fail_on_schema_drift` archives nothing.
#[tokio::test]
async fn a_changed_table_is_reported_and_refused_on_request() {
    let mut s = setup(1000).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 500);
    let manifests = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap();
    assert!(
        manifests[0]
            .columns
            .contains(&["amount".to_owned(), "numeric(30,10)".to_owned()])
    );
    sqlx::raw_sql(
        "ALTER TABLE audit_log ADD COLUMN region text; ALTER TABLE audit_log ALTER COLUMN actor TYPE varchar(200); \
         INSERT INTO audit_log (id, created_at, actor) VALUES (9001, now() - interval '300 days', 'late');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    s.options.fail_on_schema_drift = true;
    let error = archive(&s, &mut conn, &*s.store, &s.options)
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(r#"added ["region"]"#)
            && message.contains("actor text -> character varying(200)")
            && message.contains("fail_on_schema_drift"),
        "{message}"
    );
    assert_eq!(error.kind(), "schema");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE id = 9001")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 1, "nothing is archived when refused");
    // Without the setting, a warning: the row goes.
    s.options.fail_on_schema_drift = false;
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 1);
}

/// Rows under a legal hold are neither archived nor deleted, read in the batch's snapshot:
/// a held key stays in the table and in no archive, an expired hold holds nothing, and a
/// hold of the whole table stops its archiving.
#[tokio::test]
async fn rows_under_legal_hold_are_kept_out_of_archives_and_deletes() {
    let mut s = setup(100).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE legal_holds (table_name text NOT NULL, record_id text, expires_at timestamptz); \
         INSERT INTO legal_holds VALUES ('public.audit_log', '7', NULL), ('audit_log', '8', now() - interval '1 day'), \
           ('public.audit_log', '250', now() + interval '1 year'), ('other_table', NULL, NULL);",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    s.options.hold_table = Some("\"legal_holds\"".to_owned());
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 498, "{report:?}");
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM audit_log WHERE id <= 500 ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, [7, 250]);
    let archived: Vec<String> = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|m| m.keys)
        .collect();
    assert!(!archived.contains(&"7".to_owned()) && archived.contains(&"8".to_owned()));

    // The whole table held: nothing goes, however old.
    sqlx::raw_sql(
        "INSERT INTO legal_holds VALUES ('audit_log', NULL, NULL); \
         INSERT INTO audit_log (id, created_at, actor) VALUES (9001, now() - interval '300 days', 'late');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert_eq!(report.rows, 0, "{report:?}");

    // A hold table that is not there is a clear error, before anything is read.
    s.options.hold_table = Some("\"no_holds\"".to_owned());
    let error = archive(&s, &mut conn, &*s.store, &s.options)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("the legal hold table \"no_holds\" cannot be read"),
        "{error}"
    );
}

/// `compression: zstd`: objects are `.jsonl.zst`, verified and restored as gzip ones are, and
/// a table may hold archives of both.
#[tokio::test]
async fn zstd_archives_verify_and_restore_beside_gzip_ones() {
    let mut s = setup(200).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    let original = checksum(&mut conn).await;
    crash_at(&s, &mut conn, &s.options, "deleted@2").await;
    s.options.codec = bulwark_archive::object::Codec::Zstd;
    s.options.compression_level = Some(19);
    let report = archive(&s, &mut conn, &*s.store, &s.options).await.unwrap();
    assert!(report.rows > 0, "{report:?}");
    let names: Vec<String> = manifest::manifests(&*s.store, &s.options, &s.target)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.object)
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".jsonl.zst")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".jsonl.gz")), "{names:?}");
    assert_restores_to(&s, &mut conn, &original).await;
}

/// An upload no manifest records is removed only when every row in it is still in the table;
/// one holding a row that is gone is kept, and the table fails saying so.
#[tokio::test]
async fn an_unrecorded_upload_whose_rows_are_gone_is_kept() {
    let s = setup(50).await;
    let mut conn = PgConnection::connect(&s.url).await.unwrap();
    crash_at(&s, &mut conn, &s.options, "uploaded@1").await;
    // Rows of the first batch (the oldest ones) disappear some other way.
    sqlx::raw_sql("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log ORDER BY created_at, id LIMIT 3)")
        .execute(&mut conn)
        .await
        .unwrap();
    let error = archive(&s, &mut conn, &*s.store, &s.options)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("holds 3 row(s) that are no longer in the table: kept"),
        "{error}"
    );
    let objects: Vec<String> = names(&*s.store)
        .await
        .into_iter()
        .filter(|n| n.ends_with(".jsonl.gz"))
        .collect();
    assert_eq!(objects.len(), 1, "the object is kept: {objects:?}");
}
