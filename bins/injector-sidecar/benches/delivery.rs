//! Benchmark: the sidecar against the fake Keeper server with 20 secrets, next to the official
//! Python SDK reading the same 20 records from the same server in the same run.
//!
//! - Init mode: time from process start to all 20 files written and exit (target < 100 ms).
//! - Refresh mode: steady-state resident memory while refreshing every second (target < 8 MiB;
//!   the seed budgets 64 MiB per pod), with the KSM configuration from a Kubernetes Secret and
//!   again from GCP Secret Manager (the cloud client in the measured process).
//!
//! Run with `cargo bench -p injector-sidecar --bench delivery`. The Python baseline needs the
//! venv of `cargo xtask prereqs` (`~/.cache/bulwark-venv`); without it the baseline is skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bulwark_sidecar_spec::{Auth, FileMode, Format, RecordRef, Secret, SidecarSpec, Source};
use bulwark_test_util::binary::Running;
use bulwark_test_util::cloud::FakeGcp;
use bulwark_test_util::keeper::{FakeKeeper, Field, Record};

const EXE: &str = env!("CARGO_BIN_EXE_injector-sidecar");
const SECRETS: usize = 20;
const INIT_RUNS: usize = 15;

fn main() {
    let keeper = FakeKeeper::start().unwrap();
    let mut uids = Vec::new();
    for i in 0..SECRETS {
        let record = Record::login(
            &format!("service-{i}"),
            &format!("user-{i}"),
            &format!("password-{i}-{}", "x".repeat(24)),
        )
        .custom(Field::labeled("text", "host", [format!("db-{i}.internal")]))
        .custom(Field::labeled("text", "port", ["5432"]));
        uids.push(record.uid().to_owned());
        keeper.set_record(record).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("secrets");
    std::fs::create_dir(&mount).unwrap();
    let m = mount.to_str().unwrap().to_owned();
    let spec = SidecarSpec {
        version: 1,
        mount_path: m.clone(),
        auth: Auth::Secret,
        secrets: uids
            .iter()
            .enumerate()
            .map(|(i, uid)| Secret {
                path: format!(
                    "{m}/service-{i}.{}",
                    if i % 2 == 0 { "json" } else { "env" }
                ),
                source: Source::Record {
                    record: RecordRef {
                        folder: Vec::new(),
                        name: uid.clone(),
                    },
                    fields: Vec::new(),
                },
                format: if i % 2 == 0 {
                    Format::Json
                } else {
                    Format::Env
                },
                template: None,
                env_prefix: None,
                mode: None,
            })
            .collect(),
        folders: Vec::new(),
        refresh_interval: "1s".parse().unwrap(),
        fail_on_error: true,
        strict_lookup: false,
        file_mode: FileMode::OWNER_READ,
        signal: None,
        ca_cert_file: Some(keeper.write_ca(dir.path()).unwrap().display().to_string()),
        health_port: 9102,
    };
    let config = keeper.bound_config().unwrap().to_string();
    let env = [
        ("BULWARK_INJECT_SPEC", spec.to_json()),
        ("BULWARK_INJECT_KSM_CONFIG", config.clone()),
        (
            "BULWARK_INJECTOR_SIDECAR_HEALTH__LISTEN",
            "127.0.0.1:0".to_owned(),
        ),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    println!(
        "sidecar benchmark: {SECRETS} secrets (one batched request), fake Keeper on {}",
        keeper.hostname()
    );

    // Init mode: start to exit with every file written.
    let mut times = Vec::new();
    for _ in 0..INIT_RUNS {
        let started = Instant::now();
        let status = command(EXE, &["--mode", "init", "--log-level", "warn"], &env)
            .status()
            .unwrap();
        times.push(started.elapsed());
        assert!(status.success());
    }
    assert_eq!(
        std::fs::read_dir(&mount)
            .unwrap()
            .filter(|e| !e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".."))
            .count(),
        SECRETS
    );
    let init = median(&mut times);

    // The official Python SDK: process start to the same 20 records read.
    let python = python();
    let sdk_config = dir.path().join("ksm-config.json");
    std::fs::write(&sdk_config, &config).unwrap();
    let ca = dir.path().join("fake-keeper-ca.pem");
    let baseline = python.as_ref().map(|python| {
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let out = Command::new(python)
                .args(["-c", SDK_FETCH, sdk_config.to_str().unwrap(), "0"])
                .env("REQUESTS_CA_BUNDLE", &ca)
                .stderr(Stdio::null())
                .output()
                .unwrap();
            times.push(started.elapsed());
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                SECRETS.to_string()
            );
        }
        median(&mut times)
    });
    match baseline {
        Some(sdk) => println!(
            "init mode: start to {SECRETS} files written {:.1} ms (median of {INIT_RUNS}); official Python SDK reading them {:.1} ms; ratio {:.2} (target < 100 ms: {})",
            ms(init),
            ms(sdk),
            init.as_secs_f64() / sdk.as_secs_f64(),
            verdict(init < Duration::from_millis(100))
        ),
        None => println!(
            "init mode: start to {SECRETS} files written {:.1} ms (median of {INIT_RUNS}); Python SDK baseline skipped (no venv) (target < 100 ms: {})",
            ms(init),
            verdict(init < Duration::from_millis(100))
        ),
    }

    // Refresh mode: resident memory while refreshing every second.
    let (steady, peak, anon, file, refreshes) = refresh_rss(&keeper, &env);
    let sdk_rss = python.as_ref().map(|python| {
        let mut child = Command::new(python)
            .args(["-c", SDK_FETCH, sdk_config.to_str().unwrap(), "5"])
            .env("REQUESTS_CA_BUNDLE", &ca)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let rss = status_kib(child.id(), "VmRSS");
        let _ = child.kill();
        let _ = child.wait();
        rss
    });
    let mib = |kib: u64| kib as f64 / 1024.0;
    let secret_steady = steady;
    match sdk_rss {
        Some(sdk) => println!(
            "refresh mode: steady RSS {:.1} MiB (peak {:.1} MiB; heap and stacks {:.1} MiB, mapped code {:.1} MiB) over {refreshes} refreshes of {SECRETS} secrets; official Python SDK after one read {:.1} MiB; ratio {:.2} (target < 8 MiB: {})",
            mib(steady),
            mib(peak),
            mib(anon),
            mib(file),
            mib(sdk),
            steady as f64 / sdk as f64,
            verdict(steady < 8 * 1024)
        ),
        None => println!(
            "refresh mode: steady RSS {:.1} MiB (peak {:.1} MiB; heap and stacks {:.1} MiB, mapped code {:.1} MiB) over {refreshes} refreshes; Python SDK baseline skipped (target < 8 MiB: {})",
            mib(steady),
            mib(peak),
            mib(anon),
            mib(file),
            verdict(steady < 8 * 1024)
        ),
    }

    // The same with the KSM configuration stored in GCP Secret Manager, so that the cloud
    // client (TLS to the store, the metadata token) has run in the measured process.
    let gcp = FakeGcp::start().unwrap();
    gcp.add_version("projects/bench/secrets/ksm", config.as_bytes());
    let cas = dir.path().join("cas.pem");
    std::fs::write(&cas, format!("{}\n{}", keeper.ca_pem(), gcp.ca_pem())).unwrap();
    let mut cloud = spec.clone();
    cloud.auth = Auth::GcpSecretManager {
        secret_id: "projects/bench/secrets/ksm".to_owned(),
    };
    cloud.ca_cert_file = Some(cas.display().to_string());
    let cloud_env = [
        ("BULWARK_INJECT_SPEC", cloud.to_json()),
        (
            "BULWARK_INJECTOR_SIDECAR_HEALTH__LISTEN",
            "127.0.0.1:0".to_owned(),
        ),
        ("GCE_METADATA_HOST", gcp.metadata_host()),
        ("BULWARK_GCP_SECRET_MANAGER_URL", gcp.secret_manager_url()),
    ];
    let cloud_env: Vec<(&str, &str)> = cloud_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (steady, peak, _, _, refreshes) = refresh_rss(&keeper, &cloud_env);
    println!(
        "refresh mode, KSM configuration from GCP Secret Manager: steady RSS {:.1} MiB (peak {:.1} MiB) over {refreshes} refreshes; against the Kubernetes Secret run above {:.2} (target < 8 MiB: {})",
        mib(steady),
        mib(peak),
        steady as f64 / secret_steady as f64,
        verdict(steady < 8 * 1024)
    );
}

/// Runs the sidecar in refresh mode (every second) with `env` and samples its memory:
/// (steady RSS, peak RSS, anonymous, file-backed) in KiB, and the refreshes it made.
fn refresh_rss(keeper: &FakeKeeper, env: &[(&str, &str)]) -> (u64, u64, u64, u64, usize) {
    let mut sidecar = Running::start(
        Path::new(EXE),
        &[
            "--mode",
            "sidecar",
            "--log-level",
            "warn,bulwark_health=info",
        ],
        env,
    )
    .unwrap();
    let _ = sidecar.health_addr().unwrap();
    let requests_before = keeper.requests("get_secret");
    std::thread::sleep(Duration::from_secs(3));
    let mut steady = 0u64;
    let sample_until = Instant::now() + Duration::from_secs(8);
    while Instant::now() < sample_until {
        steady = steady.max(status_kib(sidecar.pid(), "VmRSS"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = status_kib(sidecar.pid(), "VmHWM");
    let (anon, file) = (
        status_kib(sidecar.pid(), "RssAnon"),
        status_kib(sidecar.pid(), "RssFile"),
    );
    let (own, libraries) = mapped_kib(sidecar.pid());
    let refreshes = keeper.requests("get_secret") - requests_before;
    sidecar.terminate(Duration::from_secs(5)).unwrap();
    eprintln!(
        "  mapped code: the executable {:.1} MiB, shared libraries {:.1} MiB",
        own as f64 / 1024.0,
        libraries as f64 / 1024.0
    );
    (steady, peak, anon, file, refreshes)
}

/// Reads every record with the official SDK, prints how many, then sleeps `argv[2]` seconds.
const SDK_FETCH: &str = "
import sys, time
from keeper_secrets_manager_core import SecretsManager
from keeper_secrets_manager_core.storage import FileKeyValueStorage
sm = SecretsManager(config=FileKeyValueStorage(sys.argv[1]))
records = sm.get_secrets()
print(len(records), flush=True)
time.sleep(float(sys.argv[2]))
";

fn command(exe: &str, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn python() -> Option<PathBuf> {
    let venv = std::env::home_dir()?.join(".cache/bulwark-venv/bin/python3");
    let ok = Command::new(&venv)
        .args(["-c", "import keeper_secrets_manager_core"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(venv)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// The resident KiB of `pid`'s file mappings: of its own executable, and of shared libraries
/// (the C library and the loader of a dynamically linked build; a static musl image has none).
fn mapped_kib(pid: u32) -> (u64, u64) {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let (mut own, mut libraries) = (0, 0);
    let mut current: Option<bool> = None;
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields
            .first()
            .is_some_and(|f| f.contains('-') && f.len() > 8)
        {
            current = fields
                .get(5)
                .filter(|p| p.starts_with('/'))
                .map(|p| Path::new(p) == exe);
        } else if let (Some(is_own), ["Rss:", kib, ..]) = (current, fields.as_slice()) {
            let kib: u64 = kib.parse().unwrap_or(0);
            if is_own {
                own += kib;
            } else {
                libraries += kib;
            }
        }
    }
    (own, libraries)
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}
