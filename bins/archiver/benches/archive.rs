//! Benchmark: the archiver on 1,000,000 rows of about 200 bytes, end to end (COPY, gzip,
//! upload to moto, read back, manifest, delete), against a raw `COPY ... TO STDOUT` of the
//! same rows read in the same run; and the archiver's peak memory, on those rows and on wide
//! rows that gzip cannot shrink much.
//!
//! Run with `cargo bench -p archiver --bench archive` (about two minutes). Targets (issue 5):
//! at least 0.5 of raw COPY's rows per second; peak RSS under 64 MiB.
//! Set `BENCH_ROWS` to change the row count, and `BENCH_UPSTREAM_ARCHIVER` to compare with the
//! upstream Python archiver on the same rows (see [`upstream`]). `BENCH_ARCHIVER_EXE` runs
//! another build of the archiver instead of the bench's own, such as the static musl binary of
//! `cargo xtask build` (`<target>/x86_64-unknown-linux-musl/release/archiver`), as it ships.

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
    psql(&pg, "CREATE TABLE audit_log (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, actor text, action text, details jsonb);
         CREATE INDEX ON audit_log (created_at, id);");
    load(&pg, rows);
    let row_bytes = psql(&pg, "SELECT avg(pg_column_size(t))::int FROM audit_log t");

    // Baseline: raw COPY of the same rows, read to the end by psql; the best of three runs
    // (it varies by half between runs here), which makes our ratio the conservative one.
    let (mut copy, mut copy_bytes) = (Duration::MAX, 0);
    for _ in 0..3 {
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
        copy = copy.min(started.elapsed());
        assert!(out.status.success());
        copy_bytes = out.stdout.len();
    }

    // The archiver, best of three as well: each run starts from the same rows, loaded again
    // into the vacuumed table; its CPU and metrics are those of the best run, its peak
    // memory the highest of all.
    let moto = MotoServer::shared().unwrap();
    let (mut best, mut peak_kib, mut metrics) = (None::<Run>, 0, String::new());
    for round in 0..3 {
        if round > 0 {
            psql(&pg, "VACUUM audit_log");
            load(&pg, rows);
        }
        let bucket = moto.create_unique_bucket("bench").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (archiver, metrics_file) = archiver_command(&pg, moto, &bucket, dir.path(), 50_000);
        let run = measure(archiver);
        assert_eq!(psql(&pg, "SELECT count(*) FROM audit_log"), "0");
        peak_kib = peak_kib.max(run.peak_kib);
        if best.as_ref().is_none_or(|b| run.wall < b.wall) {
            metrics = std::fs::read_to_string(metrics_file).unwrap_or_default();
            best = Some(run);
        }
    }
    let Some(Run {
        wall: archive, cpu, ..
    }) = best
    else {
        unreachable!("three rounds ran")
    };

    let rate = |d: Duration| rows as f64 / d.as_secs_f64();
    println!(
        "archiver benchmark: {rows} rows of about {row_bytes} bytes ({} MiB as COPY text)",
        copy_bytes / (1024 * 1024)
    );
    println!(
        "end to end (best of 3 each): archiver {:.0} rows/s ({:.2} s), raw COPY TO STDOUT {:.0} rows/s ({:.2} s); ratio {:.2} (target >= 0.5: {})",
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
        "archiver CPU {cpu:.2} s (user + system); peak RSS {:.1} MiB (target < 64 MiB: {})",
        peak_kib as f64 / 1024.0,
        if peak_kib < 64 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
    // Where the time went, from the archiver's own phase histogram.
    let phases: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("archiver_phase_duration_seconds_sum{phase=\""))
        .filter_map(|l| l.split_once("\"} "))
        .map(|(phase, secs)| format!("{phase} {:.1} s", secs.parse::<f64>().unwrap_or(0.0)))
        .collect();
    println!(
        "archiver phases: {}; {:.1} MiB gzip'd ({:.1}x smaller than COPY text)",
        phases.join(", "),
        uploaded(&metrics) / 1048576.0,
        copy_bytes as f64 / uploaded(&metrics).max(1.0)
    );
    wide(&pg, moto);
    upstream(&pg, moto, rows, rate(archive), peak_kib);
}

/// Peak memory on rows gzip cannot shrink much: `BENCH_WIDE_ROWS` (default 20,000) rows of
/// about 8 KB of random hex, so batches of about 64 MiB of JSON that stay over 30 MiB
/// gzip'd, spilled to temporary files and uploaded in parts.
fn wide(pg: &TestPostgres, moto: &MotoServer) {
    let rows: u64 = std::env::var("BENCH_WIDE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    psql(
        pg,
        &format!(
        "INSERT INTO audit_log SELECT i, now() - interval '100 days' - make_interval(secs => i),
           'user-' || (i % 1000), 'upload', jsonb_build_object('blob',
             (SELECT string_agg(md5(random()::text || i || g), '') FROM generate_series(1, 256) g))
         FROM generate_series(1, {rows}) i;
         ANALYZE audit_log;"
    ),
    );
    let json_mib = psql(
        pg,
        "SELECT sum(octet_length(row_to_json(t)::text)) / 1048576 FROM audit_log t",
    );
    let bucket = moto.create_unique_bucket("wide").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (archiver, metrics) = archiver_command(pg, moto, &bucket, dir.path(), 50_000);
    let Run {
        wall: took,
        peak_kib,
        ..
    } = measure(archiver);
    assert_eq!(psql(pg, "SELECT count(*) FROM audit_log"), "0");
    let uploaded = uploaded(&std::fs::read_to_string(metrics).unwrap_or_default());
    println!(
        "wide rows: {rows} rows, {json_mib} MiB of JSON, {:.0} MiB gzip'd, in {:.1} s; peak RSS {:.1} MiB (target < 64 MiB: {})",
        uploaded / 1048576.0,
        took.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        if peak_kib < 64 * 1024 {
            "met"
        } else {
            "MISSED"
        }
    );
}

/// The archive bytes uploaded, from the archiver's metrics.
fn uploaded(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("archiver_bytes_uploaded_total{"))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(_, v)| v.parse::<f64>().unwrap_or(0.0))
        .sum()
}

/// The archiver on the benchmark table with `batch_size`, writing to `bucket`; the command
/// and the file its metrics go to.
fn archiver_command(
    pg: &TestPostgres,
    moto: &MotoServer,
    bucket: &str,
    dir: &std::path::Path,
    batch_size: u32,
) -> (Command, std::path::PathBuf) {
    let config = dir.join("config.yaml");
    std::fs::write(&config, format!(
        "version: \"2.0\"\ns3:\n  endpoint: {}\n  bucket: {bucket}\n  prefix: archives\n  region: {}\ndefaults:\n  retention_days: 90\n  batch_size: {batch_size}\ndatabases:\n  - name: audit\n    host: {}\n    user: postgres\n    tables:\n      - name: audit_log\n        timestamp_column: created_at\n        primary_key: id\n",
        moto.endpoint(), moto::REGION, pg.socket_dir().display()
    )).unwrap();
    let metrics = dir.join("metrics.prom");
    let exe = std::env::var("BENCH_ARCHIVER_EXE").unwrap_or_else(|_| EXE.to_owned());
    let mut archiver = Command::new(exe);
    archiver
        .args([
            "--config",
            config.to_str().unwrap(),
            "--log-level",
            "warn",
            "--metrics-file",
        ])
        .arg(&metrics)
        .env("BULWARK_ARCHIVER_HEALTH__LISTEN", "127.0.0.1:0")
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .stdout(Stdio::null());
    (archiver, metrics)
}

/// Fills `audit_log` with `rows` rows of about 200 bytes, all older than 90 days.
fn load(pg: &TestPostgres, rows: u64) {
    psql(pg, &format!(
        "INSERT INTO audit_log SELECT i, now() - interval '100 days' - make_interval(secs => i),
           'user-' || (i % 1000), 'update', jsonb_build_object('resource', 'orders/' || i, 'ip', '10.0.' || (i % 255) || '.' || (i % 7), 'note', repeat('x', 60))
         FROM generate_series(1, {rows}) i;
         ANALYZE audit_log;"
    ));
}

/// What [`measure`] saw of a run.
struct Run {
    wall: Duration,
    peak_kib: u64,
    /// User plus system CPU seconds, as last read before the process ended (to within the
    /// 20 ms between reads).
    cpu: f64,
}

/// Runs `command` to completion, reading its peak resident memory and CPU time from /proc.
fn measure(mut command: Command) -> Run {
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let (mut peak_kib, mut ticks) = (0u64, 0u64);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let proc = |file: &str| {
            std::fs::read_to_string(format!("/proc/{}/{file}", child.id())).unwrap_or_default()
        };
        let hwm = proc("status")
            .lines()
            .find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        peak_kib = peak_kib.max(hwm);
        // Fields 14 and 15 of /proc/PID/stat (after the parenthesised name): utime, stime.
        let stat = proc("stat");
        let used: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .map(|t| t.parse::<u64>().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0);
        ticks = ticks.max(used);
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{command:?} failed: {status}");
    Run {
        wall: started.elapsed(),
        peak_kib,
        // The kernel's clock tick for these fields is 100 Hz on Linux.
        cpu: ticks as f64 / 100.0,
    }
}

/// The upstream Python archiver (github.com/labsbykora/audit_table_archiver) on the same rows,
/// the same PostgreSQL and the same moto, when `BENCH_UPSTREAM_ARCHIVER` names its `archiver`
/// executable. It is never part of this repository; install it outside, for example:
///
/// ```text
/// git clone https://github.com/labsbykora/audit_table_archiver /tmp/upstream-archiver/src
/// python3 -m venv /tmp/upstream-archiver/venv
/// /tmp/upstream-archiver/venv/bin/pip install -e /tmp/upstream-archiver/src
/// BENCH_UPSTREAM_ARCHIVER=/tmp/upstream-archiver/venv/bin/archiver cargo bench -p archiver --bench archive
/// ```
fn upstream(pg: &TestPostgres, moto: &MotoServer, rows: u64, ours: f64, our_peak_kib: u64) {
    let Ok(exe) = std::env::var("BENCH_UPSTREAM_ARCHIVER") else {
        println!(
            "upstream Python archiver: not run (set BENCH_UPSTREAM_ARCHIVER to its archiver executable; see the bench's source)"
        );
        return;
    };
    load(pg, rows);
    let bucket = moto.create_unique_bucket("upstream").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    // Upstream builds `postgresql://user:password@host:port/db`; a percent-encoded socket
    // directory as the host reaches the same unix socket as we do. Same batch size as ours;
    // its metrics and health servers off (they would bind ports 8000 and 8001).
    let host = pg.socket_dir().display().to_string().replace('/', "%2F");
    std::fs::write(&config, format!(
        "version: \"2.0\"\ns3:\n  endpoint: {}\n  bucket: {bucket}\n  prefix: archives/\n  region: {}\n  encryption: none\n  access_key_id: {}\n  secret_access_key: {}\ndefaults:\n  retention_days: 90\n  batch_size: 50000\ndatabases:\n  - name: audit\n    host: \"{host}\"\n    port: 5432\n    user: postgres\n    password: unused-trust-auth\n    tables:\n      - name: audit_log\n        schema: public\n        timestamp_column: created_at\n        primary_key: id\nmonitoring:\n  metrics_enabled: false\n  health_check_enabled: false\n",
        moto.endpoint(), moto::REGION, moto::ACCESS_KEY_ID, moto::SECRET_ACCESS_KEY
    )).unwrap();
    let mut command = Command::new(&exe);
    command
        .args(["--config", config.to_str().unwrap(), "--log-level", "WARN"])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let Run {
        wall: took,
        peak_kib,
        ..
    } = measure(command);
    let left: u64 = psql(pg, "SELECT count(*) FROM audit_log").parse().unwrap();
    assert_eq!(left, 0, "the upstream archiver left {left} rows");
    let theirs = rows as f64 / took.as_secs_f64();
    println!(
        "upstream Python archiver: {theirs:.0} rows/s ({:.1} s), peak RSS {:.1} MiB; ours is {:.1}x faster (target >= 5x: {}) with {:.1}x less memory",
        took.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        ours / theirs,
        if ours / theirs >= 5.0 {
            "met"
        } else {
            "MISSED"
        },
        peak_kib as f64 / our_peak_kib.max(1) as f64
    );
}
