//! `cargo xtask demo`: the local end-to-end run on embedded defaults, with no cluster.
//!
//! It builds the four binaries and runs each the way Kubernetes would: the long-running ones
//! start on their defaults, answer `/health`, `/ready` and `/metrics`, and stop on SIGTERM;
//! the archiver plans a run of the seed's configuration. It grows as each binary's issue lands.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bulwark_test_util::binary::{Running, http_get, run_to_exit};
use xshell::{Shell, cmd};

use crate::project_root;

/// A long-running binary and the variable that moves its health server to a free port.
const SERVICES: &[(&str, &str, &[&str])] = &[
    (
        "injector-webhook",
        "BULWARK_INJECTOR_WEBHOOK_HEALTH__LISTEN",
        &[],
    ),
    (
        "injector-sidecar",
        "BULWARK_INJECTOR_SIDECAR_HEALTH__LISTEN",
        &[],
    ),
    (
        "sentinel",
        "BULWARK_SENTINEL_WEB__LISTEN",
        &["--config", "libs/sentinel/tests/data/seed-config.yaml"],
    ),
];

pub(crate) fn run(sh: &Shell) -> anyhow::Result<()> {
    println!("==> building the binaries");
    cmd!(sh, "cargo build --locked --bins")
        .run()
        .context("cannot build the binaries")?;
    let bin_dir = target_dir(sh).join("debug");
    for (name, listen_var, args) in SERVICES {
        service(&bin_dir.join(name), name, listen_var, args)?;
    }
    archiver(&bin_dir.join("archiver"))?;
    println!("==> demo finished: every binary started, answered and stopped cleanly");
    Ok(())
}

fn target_dir(sh: &Shell) -> PathBuf {
    sh.var("CARGO_TARGET_DIR")
        .map_or_else(|_| project_root().join("target"), PathBuf::from)
}

fn service(exe: &Path, name: &str, listen_var: &str, args: &[&str]) -> anyhow::Result<()> {
    println!("==> {name} {}", args.join(" "));
    let mut bin = Running::start(exe, args, &[(listen_var, "127.0.0.1:0")])
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let addr = bin.health_addr().map_err(anyhow::Error::msg)?;
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
    let (code, out) = run_to_exit(
        exe,
        &["--config", config, "--dry-run", "--log-format", "text"],
        &env,
    );
    for line in out.lines() {
        println!("    {line}");
    }
    anyhow::ensure!(code == Some(0), "archiver --dry-run exited with {code:?}");
    Ok(())
}
