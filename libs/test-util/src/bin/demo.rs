//! The local end-to-end run on embedded defaults, with no cluster, that `cargo xtask demo`
//! builds and starts: `demo BIN_DIR PROJECT_ROOT`, where `BIN_DIR` holds the four binaries.
//!
//! It runs each binary the way Kubernetes would, with the harnesses of this crate: the long-running ones
//! start, answer `/health`, `/ready` and `/metrics`, and stop on SIGTERM; sentinel counts
//! a generated sample of error lines served by a Loki stand-in and shows its API's answers;
//! the Keeper sidecar delivers secrets from a fake Keeper server (init mode, then sidecar
//! mode); the archiver plans a run of the seed's configuration (whose database is not here:
//! exit 3, the error in the plan), then plans and archives a throwaway PostgreSQL table into a
//! local directory. It grows as each binary's issue lands.

#![allow(
    clippy::print_stdout,
    reason = "the demo is a terminal program: its progress lines are its output"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use bulwark_test_util::binary::{Running, http_get, run_to_exit};

/// The project's root, from the command line.
static ROOT: OnceLock<PathBuf> = OnceLock::new();

fn project_root() -> &'static Path {
    ROOT.get().map_or(Path::new("."), PathBuf::as_path)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [bin_dir, root] = args.as_slice() else {
        anyhow::bail!("usage: demo BIN_DIR PROJECT_ROOT (run it with `cargo xtask demo`)");
    };
    ROOT.get_or_init(|| root.clone());
    webhook(&bin_dir.join("injector-webhook"))?;
    sentinel(&bin_dir.join("sentinel"))?;
    sidecar(&bin_dir.join("injector-sidecar"))?;
    archiver(&bin_dir.join("archiver"))?;
    archive_run(&bin_dir.join("archiver"))?;
    println!("==> demo finished: every binary started, answered and stopped cleanly");
    Ok(())
}

/// Sentinel over a generated sample of 2,000 Kubernetes error lines (`logs::generate`, the
/// same every run) served by a Loki stand-in, with the shipped rules: waits until every line is
/// counted, then shows what the API answers.
fn sentinel(exe: &Path) -> anyhow::Result<()> {
    use bulwark_test_util::loki::FakeLoki;
    const LINES: usize = 2_000;
    let loki = FakeLoki::start()?;
    let now = jiff::Timestamp::now().as_nanosecond() as i64;
    let sample = bulwark_test_util::logs::generate(17, LINES, now - 120_000_000_000);
    loki.push_logs(&sample);
    // The seed's query keeps lines that say error, fatal, panic, exception or fail.
    let filter = regex::Regex::new("(?i)(error|fatal|panic|exception|fail)")?;
    let expected = sample.iter().filter(|l| filter.is_match(&l.line)).count();
    println!(
        "==> a Loki stand-in at {} serving {LINES} generated error lines: bulwark-test-util's fake Loki, not Loki (query_range only)",
        loki.url()
    );
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("sentinel.yaml");
    std::fs::write(
        &config,
        format!(
            "loki:\n  url: {}\n  poll_interval: 2s\n  lookback: 5m\nweb:\n  listen: 127.0.0.1:0\n  base_path: /kube-sentinel\n  auth:\n    public_reads: true\nremediation:\n  enabled: false\n",
            loki.url()
        ),
    )?;
    let rules = project_root().join("libs/sentinel/src/rules/default-rules.yaml");
    let args = [
        "--config",
        config.to_str().context("non-UTF-8 path")?,
        "--rules",
        rules.to_str().context("non-UTF-8 path")?,
    ];
    service(exe, "sentinel", &[], &args, |addr| {
        let api = format!("http://{addr}/kube-sentinel/api");
        println!(
            "    the API answers at {api}/errors, {api}/stats, {api}/rules; the dashboard at http://{addr}/kube-sentinel/ (reads open, remediation off: there is no cluster here)"
        );
        let start = std::time::Instant::now();
        let stats = loop {
            let (_, body) =
                http_get(addr, "/kube-sentinel/api/stats").map_err(anyhow::Error::msg)?;
            let stats: serde_json::Value = serde_json::from_str(&body)?;
            if stats["occurrences"] == expected {
                break stats;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(30),
                "not every line was counted: {stats}"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        println!(
            "    GET {api}/stats -> {} lines (every one the query selects) as {} unique errors; by priority {}",
            stats["occurrences"], stats["unique_errors"], stats["by_priority"]
        );
        let (_, body) =
            http_get(addr, "/kube-sentinel/api/errors?page_size=5").map_err(anyhow::Error::msg)?;
        let errors: serde_json::Value = serde_json::from_str(&body)?;
        println!("    GET {api}/errors?page_size=5 (most urgent, then most recent):");
        for e in errors["errors"].as_array().into_iter().flatten() {
            println!(
                "        {} {} x{} {}/{}: {}",
                e["priority"].as_str().unwrap_or_default(),
                e["rule"].as_str().unwrap_or_default(),
                e["count"],
                e["namespace"].as_str().unwrap_or_default(),
                e["workload"].as_str().unwrap_or_default(),
                e["normalized"].as_str().unwrap_or_default()
            );
        }
        Ok(())
    })
}

fn service(
    exe: &Path,
    name: &str,
    env: &[(&str, &str)],
    args: &[&str],
    show: impl FnOnce(std::net::SocketAddr) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    println!("==> {name} {}", args.join(" "));
    let mut bin = Running::start(exe, args, env)
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let addr = bin.health_addr().map_err(anyhow::Error::msg)?;
    show(addr)?;
    for path in ["/health", "/ready", "/metrics"] {
        let (status, body) = http_get(addr, path).map_err(anyhow::Error::msg)?;
        println!("    GET http://{addr}{path} -> {status}");
        for line in body.lines().filter(|l| !l.starts_with('#')).take(4) {
            println!("        {line}");
        }
        anyhow::ensure!(status == 200, "{name}: {path} answered {status}");
    }
    let (status, took) = bin
        .terminate(Duration::from_secs(5))
        .map_err(anyhow::Error::msg)?;
    println!(
        "    SIGTERM -> exited with {status} after {} ms",
        took.as_millis()
    );
    anyhow::ensure!(
        status.success(),
        "{name} did not exit cleanly: {}",
        bin.output().join("\n")
    );
    Ok(())
}

fn archiver(exe: &Path) -> anyhow::Result<()> {
    let config = "libs/archive/tests/data/seed-config.yaml";
    println!("==> archiver --config {config} --dry-run");
    let env = [
        ("DB_PASSWORD", "demo-password"),
        ("BULWARK_ARCHIVER_HEALTH__LISTEN", "127.0.0.1:0"),
    ];
    let config = project_root().join(config);
    let config = config.to_str().context("non-UTF-8 path")?;
    let code = run_shown(
        exe,
        &["--config", config, "--dry-run", "--log-format", "text"],
        &env,
        "",
    );
    // The seed's database (db.example.com) is not here: the plan names the error for its
    // tables, and an unreachable database is exit 3, as in a cluster.
    anyhow::ensure!(
        code == Some(3),
        "archiver --dry-run of the seed's config exited with {code:?}, not 3 (its database is unreachable here)"
    );
    println!(
        "    exit 3: the seed's database is not reachable from here; the throwaway one below is"
    );
    Ok(())
}

/// The Keeper sidecar against a fake Keeper server: init mode writes the files, sidecar mode
/// serves health while refreshing.
fn sidecar(exe: &Path) -> anyhow::Result<()> {
    use bulwark_test_util::keeper::{FakeKeeper, Record};
    let keeper = FakeKeeper::start()?;
    keeper.set_record(Record::login("db", "app", "demo-password"))?;
    let dir = tempfile::tempdir()?;
    let mount = dir.path().join("secrets");
    std::fs::create_dir(&mount)?;
    let m = mount.to_str().context("non-UTF-8 path")?;
    let ca = keeper.write_ca(dir.path())?;
    let spec = format!(
        r#"{{"version":1,"mountPath":"{m}","auth":{{"method":"secret"}},"secrets":[{{"path":"{m}/db.env","source":{{"kind":"record","record":{{"name":"db"}}}},"format":"env","envPrefix":"DB_"}}],"folders":[],"refreshInterval":"5m","failOnError":true,"strictLookup":false,"fileMode":"0400","caCertFile":"{}","healthPort":9102}}"#,
        ca.display()
    );
    let config = keeper.token_config(&keeper.one_time_token()).to_string();
    let env = [
        ("BULWARK_INJECT_SPEC", spec.as_str()),
        ("BULWARK_INJECT_KSM_CONFIG", config.as_str()),
        ("BULWARK_INJECTOR_SIDECAR_HEALTH__LISTEN", "127.0.0.1:0"),
    ];
    println!(
        "==> injector-sidecar --mode init (fake Keeper at {})",
        keeper.hostname()
    );
    let code = run_shown(exe, &["--mode", "init", "--log-format", "text"], &env, "");
    anyhow::ensure!(
        code == Some(0),
        "injector-sidecar --mode init exited with {code:?}"
    );
    let names: Vec<String> = std::fs::read_dir(&mount)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.starts_with(".."))
        .collect();
    println!("    wrote {} (values not shown)", names.join(", "));
    service(
        exe,
        "injector-sidecar",
        &env,
        &["--mode", "sidecar"],
        |_| Ok(()),
    )
}

/// A real archive run: a throwaway PostgreSQL table into a local directory.
fn archive_run(exe: &Path) -> anyhow::Result<()> {
    use bulwark_test_util::postgres::TestPostgres;
    let pg = TestPostgres::start()?;
    pg.create_database("audit")?;
    let sql = "CREATE TABLE audit_log (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, actor text, details jsonb);
        INSERT INTO audit_log SELECT i, now() - make_interval(days => 80 + i % 40), 'user-' || i, jsonb_build_object('i', i)
        FROM generate_series(1, 5000) i;
        ANALYZE audit_log;";
    let psql = |sql: &str| pg.psql("audit", sql);
    psql(sql)?;
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("bucket");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "version: \"2.0\"\ns3:\n  endpoint: file://{}\n  bucket: local\n  prefix: archives\ndefaults:\n  retention_days: 90\n  batch_size: 1000\ndatabases:\n  - name: audit\n    host: {}\n    user: postgres\n    tables:\n      - name: audit_log\n        timestamp_column: created_at\n        primary_key: id\n",
            store.display(),
            pg.socket_dir().display()
        ),
    )?;
    let config = config.to_str().context("non-UTF-8 path")?;
    println!("==> archiver --config {config} (throwaway PostgreSQL, local directory)");
    let before = psql("SELECT count(*) FROM audit_log")?;
    let env = [("BULWARK_ARCHIVER_HEALTH__LISTEN", "127.0.0.1:0")];
    let code = run_shown(
        exe,
        &["--config", config, "--dry-run", "--log-format", "text"],
        &env,
        "--dry-run: ",
    );
    anyhow::ensure!(code == Some(0), "archiver --dry-run exited with {code:?}");
    let code = run_shown(exe, &["--config", config, "--log-format", "text"], &env, "");
    anyhow::ensure!(code == Some(0), "archiver exited with {code:?}");
    let after = psql("SELECT count(*) FROM audit_log")?;
    println!("    rows: {before} before, {after} after (older than 90 days archived)");
    let (code, _) = run_to_exit(exe, &["--config", config, "verify"], &env);
    anyhow::ensure!(code == Some(0), "archiver verify exited with {code:?}");
    println!("    archiver verify -> exit 0");
    Ok(())
}

/// Runs `exe` with `args` until it exits, printing its output indented, each line after
/// `label`; returns its exit code.
fn run_shown(exe: &Path, args: &[&str], env: &[(&str, &str)], label: &str) -> Option<i32> {
    let (code, out) = run_to_exit(exe, args, env);
    for line in out.lines() {
        println!("    {label}{line}");
    }
    code
}

/// The webhook with a throwaway certificate (cert-manager provides it in a cluster).
fn webhook(exe: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca = bulwark_test_util::tls::TestCa::new("demo")?;
    let (cert, key) = ca.issue(&["localhost"])?.write(dir.path())?;
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let env = [
        ("BULWARK_INJECTOR_WEBHOOK_HEALTH__LISTEN", "127.0.0.1:0"),
        ("BULWARK_INJECTOR_WEBHOOK_WEBHOOK__LISTEN", "127.0.0.1:0"),
        ("BULWARK_INJECTOR_WEBHOOK_WEBHOOK__CERT_FILE", cert.as_str()),
        ("BULWARK_INJECTOR_WEBHOOK_WEBHOOK__KEY_FILE", key.as_str()),
        ("BULWARK_INJECTOR_WEBHOOK_WEBHOOK__SHUTDOWN_DELAY", "0s"),
    ];
    service(exe, "injector-webhook", &env, &[], |_| Ok(()))
}
