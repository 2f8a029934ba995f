//! The archiver binary against real PostgreSQL and moto: a whole run, `verify`, the lock held
//! by another run, and SIGKILL at 32 points of runs followed by a run to completion, proving
//! by checksums that archive plus table equal the original.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bulwark_test_util::binary::run_to_exit;
use bulwark_test_util::moto::{self, MotoServer};
use bulwark_test_util::postgres::TestPostgres;

const EXE: &str = env!("CARGO_BIN_EXE_archiver");

const SETUP: &str = "
CREATE TABLE audit_log (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, actor text, details jsonb, amount numeric(20,6), payload bytea);
INSERT INTO audit_log SELECT i, now() - make_interval(days => 100, secs => i), 'user-' || i,
  jsonb_build_object('i', i), i / 7.0, decode(md5(i::text), 'hex') FROM generate_series(1, 600) i;
INSERT INTO audit_log SELECT i, now(), 'recent', NULL, NULL, NULL FROM generate_series(1001, 1010) i;
";

const CHECKSUM: &str =
    "SELECT count(*)::text || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM audit_log t";

struct World {
    pg: TestPostgres,
    config: tempfile::NamedTempFile,
    bucket: String,
}

/// What S3 itself lists under the table's prefix, read without our storage code: how many
/// times each primary key appears across all data objects, and the keys of anything else that
/// is not under the hidden `_manifests/` folder.
fn bucket_contents(w: &World) -> (std::collections::BTreeMap<i64, u32>, Vec<String>) {
    let moto = MotoServer::shared().unwrap();
    let prefix = "archives/audit/public.audit_log/";
    let mut ids = std::collections::BTreeMap::new();
    let mut strays = Vec::new();
    for key in moto.list_keys(&w.bucket, prefix).unwrap() {
        let relative = &key[prefix.len()..];
        if relative.starts_with("_manifests/") {
            continue;
        }
        if !key.ends_with(".jsonl.gz") {
            strays.push(key);
            continue;
        }
        let gz = moto.get_object(&w.bucket, &key).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut text)
            .unwrap();
        for line in text.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            *ids.entry(row["id"].as_i64().unwrap()).or_insert(0) += 1;
        }
    }
    (ids, strays)
}

fn psql(pg: &TestPostgres, sql: &str) -> String {
    pg.psql("audit", sql).unwrap()
}

fn world(batch_size: u32) -> World {
    let pg = TestPostgres::start().unwrap();
    pg.create_database("audit").unwrap();
    psql(&pg, SETUP);
    let moto = MotoServer::shared().unwrap();
    let bucket = moto.create_unique_bucket("archiver").unwrap();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        format!(
            "version: \"2.0\"\ns3:\n  endpoint: {}\n  bucket: {bucket}\n  prefix: archives\n  region: {}\ndefaults:\n  retention_days: 90\n  batch_size: {batch_size}\ndatabases:\n  - name: audit\n    host: {}\n    user: postgres\n    tables:\n      - name: audit_log\n        timestamp_column: created_at\n        primary_key: id\n",
            moto.endpoint(),
            moto::REGION,
            pg.socket_dir().display()
        ),
    )
    .unwrap();
    World { pg, config, bucket }
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("BULWARK_ARCHIVER_HEALTH__LISTEN", "127.0.0.1:0"),
        ("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY),
    ]
}

fn archiver(w: &World, args: &[&str]) -> (Option<i32>, String) {
    let mut full = vec!["--config", w.config.path().to_str().unwrap()];
    full.extend_from_slice(args);
    run_to_exit(Path::new(EXE), &full, &env())
}

#[test]
fn runs_verifies_and_respects_the_lock() {
    let w = world(100);
    let metrics_file = tempfile::NamedTempFile::new().unwrap();
    let (code, out) = archiver(
        &w,
        &["--metrics-file", metrics_file.path().to_str().unwrap()],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(psql(&w.pg, "SELECT count(*) FROM audit_log"), "10");
    // The final metrics, as the node exporter's textfile collector reads them: what /metrics
    // served during the run, and what promtool accepts.
    let metrics = std::fs::read_to_string(metrics_file.path()).unwrap();
    bulwark_test_util::promtool::check_metrics(&metrics).unwrap();
    for name in [
        "archiver_records_archived_total{database=\"audit\",table=\"public.audit_log\"} 600",
        "archiver_batches_total{",
        "archiver_bytes_uploaded_total{",
        "archiver_phase_duration_seconds_bucket{phase=\"upload\"",
        "archiver_last_success_timestamp_seconds",
        "bulwark_build_info{",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let (code, out) = archiver(&w, &["verify"]);
    assert_eq!(code, Some(0), "{out}");
    // Another run holding the lock: exit 75, nothing done.
    psql(
        &w.pg,
        "INSERT INTO audit_log VALUES (2000, now() - interval '200 days', 'late', NULL, NULL, NULL)",
    );
    let key = bulwark_archive::lock::lock_key("audit");
    let mut holder = Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-XAtq", "-h"])
        .arg(w.pg.socket_dir())
        .args([
            "-d",
            "audit",
            "-c",
            &format!("SELECT pg_advisory_lock({key}); SELECT pg_sleep(30);"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while psql(
        &w.pg,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
    ) != "1"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder did not take the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The other run also holds the health port: this one says so and still answers 75.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = port.local_addr().unwrap().to_string();
    let mut env = env();
    env.retain(|(k, _)| *k != "BULWARK_ARCHIVER_HEALTH__LISTEN");
    env.push(("BULWARK_ARCHIVER_HEALTH__LISTEN", &listen));
    let (code, out) = run_to_exit(
        Path::new(EXE),
        &["--config", w.config.path().to_str().unwrap()],
        &env,
    );
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(code, Some(75), "{out}");
    assert!(out.contains("Another run holds the lock"), "{out}");
    assert!(out.contains("Cannot serve /health and /metrics"), "{out}");
    assert_eq!(
        psql(&w.pg, "SELECT count(*) FROM audit_log WHERE id = 2000"),
        "1"
    );
}

/// Old rows with keys from `from` to `to`, and the same rows in `audit_log_original`, the copy
/// that archive plus table must equal at the end.
fn add_old_rows(pg: &TestPostgres, from: u32, to: u32) {
    psql(
        pg,
        &format!(
            "INSERT INTO audit_log SELECT i, now() - make_interval(days => 100, secs => i), 'user-' || i,
               jsonb_build_object('i', i), i / 7.0, decode(md5(i::text), 'hex') FROM generate_series({from}, {to}) i;
             INSERT INTO audit_log_original SELECT * FROM audit_log WHERE id BETWEEN {from} AND {to};"
        ),
    );
}

#[test]
fn sigkill_at_any_point_loses_and_duplicates_nothing() {
    const KILLS: u32 = 32;
    let w = world(6);
    psql(
        &w.pg,
        "CREATE TABLE audit_log_original AS SELECT * FROM audit_log",
    );
    let mut kills = 0;
    let mut generation = 0;
    let mut delay_ms = 40;
    while kills < KILLS {
        let mut child = Command::new(EXE)
            .args([
                "--config",
                w.config.path().to_str().unwrap(),
                "--log-level",
                "warn",
            ])
            .envs(env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            kills += 1;
        }
        child.wait().unwrap();
        // Spread the kills over start-up, COPY, upload, verification, manifest and delete.
        delay_ms = 40 + (delay_ms * 7 + 13) % 160;
        // A machine fast enough to archive everything before the last kill gets more old rows,
        // so that every kill lands in a run with work to do.
        if psql(&w.pg, "SELECT count(*) FROM audit_log") == "10" {
            generation += 1;
            add_old_rows(&w.pg, 2000 * generation, 2000 * generation + 599);
        }
    }
    let (code, out) = archiver(&w, &["--log-level", "info"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(psql(&w.pg, "SELECT count(*) FROM audit_log"), "10", "{out}");
    // What a query engine reading the table's folder sees: every archived row exactly once,
    // across all data objects (not only those a manifest records), and nothing but data.
    let (ids, strays) = bucket_contents(&w);
    let twice: Vec<(&i64, &u32)> = ids.iter().filter(|(_, n)| **n != 1).collect();
    let archived: u64 = psql(
        &w.pg,
        "SELECT count(*) FROM audit_log_original WHERE id NOT IN (SELECT id FROM audit_log)",
    )
    .parse()
    .unwrap();
    eprintln!(
        "killed {kills} runs over {} generations of old rows; the bucket holds {} archived keys in data objects, {} of them more than once",
        generation + 1,
        ids.len(),
        twice.len()
    );
    assert!(
        twice.is_empty(),
        "{} keys are archived more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    assert_eq!(ids.len() as u64, archived);
    assert!(
        strays.is_empty(),
        "{} non-data objects among the data, e.g. {:?}",
        strays.len(),
        &strays[..strays.len().min(3)]
    );
    let (code, out) = archiver(&w, &["verify"]);
    assert_eq!(code, Some(0), "{out}");
    // Archive plus table equal the original: restore everything and compare.
    let (code, out) = archiver(&w, &["restore", "--conflict", "fail"]);
    assert_eq!(code, Some(0), "{out}");
    let original = CHECKSUM.replace("FROM audit_log t", "FROM audit_log_original t");
    assert_eq!(psql(&w.pg, CHECKSUM), psql(&w.pg, &original), "{out}");
}

/// A batch too large for memory goes to a temporary file; where none can be made, the table
/// fails with an error that says where and why, and nothing is deleted. With a usable
/// directory the same batch goes up as a multipart upload.
#[test]
fn a_batch_that_cannot_spill_fails_clearly_and_deletes_nothing() {
    let w = world(100_000);
    // About 48 KB of random hex per old row: about 15 MiB gzip'd, over one 8 MiB part.
    psql(
        &w.pg,
        "UPDATE audit_log SET actor = (SELECT string_agg(md5(random()::text || id || g), '') \
         FROM generate_series(1, 1500) g) WHERE id <= 600",
    );
    let original = psql(&w.pg, CHECKSUM);
    let missing = "/nonexistent/bulwark-spill";
    let mut env = env();
    env.push(("TMPDIR", missing));
    let args = ["--config", w.config.path().to_str().unwrap()];
    let (code, out) = run_to_exit(Path::new(EXE), &args, &env);
    assert_eq!(code, Some(3), "a table failed: {out}");
    assert!(!out.contains("\"level\":\"warn\""), "{out}");
    assert!(
        out.contains(&format!("temporary file in {missing} (TMPDIR)")),
        "{out}"
    );
    assert_eq!(psql(&w.pg, CHECKSUM), original, "nothing may change");

    let (code, out) = archiver(&w, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(psql(&w.pg, "SELECT count(*) FROM audit_log"), "10");
    let (code, out) = archiver(&w, &["verify"]);
    assert_eq!(code, Some(0), "{out}");
}

/// Errors read as a user needs them: which database, table and column, in PostgreSQL's words
/// without sqlx's "at line N" (a line of PostgreSQL's C source); a missing column is a schema
/// problem, not a COPY one.
#[test]
fn errors_name_the_database_table_and_column() {
    let w = world(100);
    let config = std::fs::read_to_string(w.config.path()).unwrap();
    std::fs::write(
        w.config.path(),
        config.replace("timestamp_column: created_at", "timestamp_column: created"),
    )
    .unwrap();
    let (code, out) = archiver(&w, &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains(r#"database audit: public.audit_log has no column \"created\" (timestamp_column in the config)"#),
        "{out}"
    );
    assert!(out.contains(r#""kind":"schema""#), "{out}");
    std::fs::write(
        w.config.path(),
        config.replace("- name: audit_log", "- name: audit_logs"),
    )
    .unwrap();
    let (code, out) = archiver(&w, &[]);
    assert_eq!(code, Some(3), "{out}");
    assert!(out.contains("relation"), "{out}");
    assert!(!out.contains(" at line "), "{out}");
}

/// A query engine reads the table's folder as a table: DuckDB (its JSON reader, Hive
/// partitions from `year=/month=/day=`) over the objects as S3 lists them, copied to a
/// directory as they are named in the bucket, `_manifests/` included.
#[test]
fn duckdb_reads_the_archive_as_a_table() {
    let w = world(100);
    let (code, out) = archiver(&w, &[]);
    assert_eq!(code, Some(0), "{out}");
    let moto = MotoServer::shared().unwrap();
    let prefix = "archives/audit/public.audit_log/";
    let dir = tempfile::tempdir().unwrap();
    for key in moto.list_keys(&w.bucket, prefix).unwrap() {
        let path = dir.path().join(&key[prefix.len()..]);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, moto.get_object(&w.bucket, &key).unwrap()).unwrap();
    }
    let query = format!(
        "import duckdb, sys\n\
         t = \"read_json('{}/**/*.jsonl.gz', format='newline_delimited', hive_partitioning=true)\"\n\
         print(duckdb.sql(f'SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {{t}}').fetchall())\n\
         print(duckdb.sql(f\"SELECT actor, details.i, year, month FROM {{t}} WHERE id = 42\").fetchall())\n",
        dir.path().display()
    );
    let output = Command::new("python3")
        .args(["-c", &query])
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "duckdb failed (cargo xtask prereqs installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = printed.lines();
    assert_eq!(lines.next(), Some("[(600, 600, 1, 600)]"), "{printed}");
    let row = lines.next().unwrap();
    assert!(row.starts_with("[('user-42', 42, "), "{row}");
}

/// `--max-runtime` stops starting tables and batches: a batch in progress completes, the run
/// exits 0, and the rest waits for the next run.
#[test]
fn max_runtime_ends_the_run_cleanly_after_the_batch_in_progress() {
    let w = world(100);
    let (code, out) = archiver(&w, &["--max-runtime", "1ms"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Reached --max-runtime"), "{out}");
    let left: u32 = psql(&w.pg, "SELECT count(*) FROM audit_log")
        .parse()
        .unwrap();
    // Reached at once, the run starts no table, or stops after the batch it began.
    assert!(left > 10 && left <= 610, "{left} rows left: {out}");
    let (code, out) = archiver(&w, &["verify"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = archiver(&w, &[]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(psql(&w.pg, "SELECT count(*) FROM audit_log"), "10");
}

/// `vacuum_after`: a run that deleted at least `vacuum_min_rows` rows vacuums and analyzes
/// the table; below the threshold it does not.
#[test]
fn vacuum_after_runs_when_enough_rows_were_deleted() {
    let w = world(1000);
    let config = std::fs::read_to_string(w.config.path()).unwrap();
    let with = |min: u32| {
        config.replace(
            "  batch_size: 1000\n",
            &format!("  batch_size: 1000\n  vacuum_after: true\n  vacuum_min_rows: {min}\n"),
        )
    };
    std::fs::write(w.config.path(), with(100_000)).unwrap();
    let (code, out) = archiver(&w, &["--log-level", "info"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("Vacuumed"), "{out}");
    add_old_rows_without_original(&w.pg);
    std::fs::write(w.config.path(), with(100)).unwrap();
    let (code, out) = archiver(&w, &["--log-level", "info"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Vacuumed and analyzed the table"), "{out}");
    assert_eq!(
        psql(
            &w.pg,
            "SELECT last_vacuum IS NOT NULL AND last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'audit_log'"
        ),
        "t"
    );
}

fn add_old_rows_without_original(pg: &TestPostgres) {
    psql(
        pg,
        "INSERT INTO audit_log SELECT i, now() - make_interval(days => 100, secs => i), 'user-' || i, NULL, NULL, NULL FROM generate_series(5000, 5299) i",
    );
}

/// `--dry-run` asks the database, without scanning the table or changing anything, for the
/// cutoff and the planner's estimate of the rows due, and prints the batches they make.
#[test]
fn dry_run_estimates_rows_and_batches_without_changing_anything() {
    let w = world(100);
    psql(&w.pg, "ANALYZE audit_log");
    let (code, out) = archiver(&w, &["--dry-run"]);
    assert_eq!(code, Some(0), "{out}");
    let plan: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.starts_with("{\"database\""))
            .unwrap(),
    )
    .unwrap();
    let rows = plan["rows_due_estimate"].as_u64().unwrap();
    assert!((500..=700).contains(&rows), "{plan}");
    assert_eq!(
        plan["batches_estimate"].as_u64().unwrap(),
        rows.div_ceil(100),
        "{plan}"
    );
    assert!(plan["cutoff"].as_str().unwrap().ends_with("+00"), "{plan}");
    assert_eq!(psql(&w.pg, "SELECT count(*) FROM audit_log"), "610");
}
