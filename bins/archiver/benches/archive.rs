//! Benchmark: the archiver on 1,000,000 rows of about 200 bytes, end to end (COPY, gzip,
//! upload to moto, read back, manifest, delete), against a raw `COPY ... TO STDOUT` of the
//! same rows read in the same run; and the archiver's peak memory.
//!
//! Run with `cargo bench -p archiver --bench archive` (about a minute). Targets (issue 5):
//! at least 0.5 of raw COPY's rows per second; peak RSS under 64 MiB.
//! Set `BENCH_ROWS` to change the row count.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_test_util::moto::{self, MotoServer};
use bulwark_test_util::postgres::TestPostgres;

const EXE: &str = env!("CARGO_BIN_EXE_archiver");

fn psql(pg: &TestPostgres, sql: &str) -> String {
    pg.psql("audit", sql).unwrap()
}

fn main() {
    let rows: u64 = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let pg = TestPostgres::start().unwrap();
    pg.create_database("audit").unwrap();
    psql(&pg, &format!(
        "CREATE TABLE audit_log (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, actor text, action text, details jsonb);
         INSERT INTO audit_log SELECT i, now() - interval '100 days' - make_interval(secs => i),
           'user-' || (i % 1000), 'update', jsonb_build_object('resource', 'orders/' || i, 'ip', '10.0.' || (i % 255) || '.' || (i % 7), 'note', repeat('x', 60))
         FROM generate_series(1, {rows}) i;
         CREATE INDEX ON audit_log (created_at, id); ANALYZE audit_log;"
    ));
    let row_bytes = psql(&pg, "SELECT avg(pg_column_size(t))::int FROM audit_log t");

    // Baseline: raw COPY of the same rows, read to the end by psql.
    let started = Instant::now();
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--", "psql", "-XAtq", "-h"])
        .arg(pg.socket_dir())
        .args([
            "-d",
            "audit",
            "-c",
            "COPY (SELECT * FROM audit_log ORDER BY created_at, id) TO STDOUT",
        ])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let copy = started.elapsed();
    assert!(out.status.success());
    let copy_bytes = out.stdout.len();

    let moto = MotoServer::shared().unwrap();
    let bucket = moto.create_unique_bucket("bench").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, format!(
        "version: \"2.0\"\ns3:\n  endpoint: {}\n  bucket: {bucket}\n  prefix: archives\n  region: {}\ndefaults:\n  retention_days: 90\n  batch_size: 50000\ndatabases:\n  - name: audit\n    host: {}\n    user: postgres\n    tables:\n      - name: audit_log\n        timestamp_column: created_at\n        primary_key: id\n",
        moto.endpoint(), moto::REGION, pg.socket_dir().display()
    )).unwrap();
    let started = Instant::now();
    let mut child = Command::new(EXE)
        .args([
            "--config",
            config.to_str().unwrap(),
            "--log-level",
            "warn",
            "--metrics-file",
        ])
        .arg(dir.path().join("metrics.prom"))
        .env("BULWARK_ARCHIVER_HEALTH__LISTEN", "127.0.0.1:0")
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let hwm = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        std::thread::sleep(Duration::from_millis(20));
    };
    let archive = started.elapsed();
    assert!(status.success(), "the archiver failed: {status}");
    assert_eq!(psql(&pg, "SELECT count(*) FROM audit_log"), "0");

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "archiver benchmark: {rows} rows of about {row_bytes} bytes ({} MiB as COPY text)",
        copy_bytes / (1024 * 1024)
    );
    println!(
        "end to end: archiver {:.0} rows/s ({:.1} s), raw COPY TO STDOUT {:.0} rows/s ({:.1} s); ratio {:.2} (target >= 0.5: {})",
        rate(archive),
        archive.as_secs_f64(),
        rate(copy),
        copy.as_secs_f64(),
        rate(archive) / rate(copy),
        if rate(archive) / rate(copy) >= 0.5 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "peak RSS {:.1} MiB (target < 64 MiB: {})",
        peak_kib as f64 / 1024.0,
        if peak_kib < 64 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
    // Where the time went, from the archiver's own phase histogram.
    let metrics = std::fs::read_to_string(dir.path().join("metrics.prom")).unwrap_or_default();
    let phases: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("archiver_phase_duration_seconds_sum{phase=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(phase, secs)| format!("{phase} {:.1} s", secs.parse::<f64>().unwrap_or(0.0)))
        .collect();
    println!("archiver phases: {}", phases.join(", "));
    println!(
        "the upstream Python archiver comparison (target >= 5x) is not part of this benchmark yet"
    );
}
