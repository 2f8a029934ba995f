//! Project automation, run as `cargo xtask <command>`.
//! See <https://github.com/matklad/cargo-xtask/>.
//!
//! `main` only parses the command line and dispatches: each task lives in its own file, so adding
//! one is a new module and one match arm.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "xtask is a terminal tool: its progress lines are its interface"
)]

mod build;
mod ci;
mod demo;
mod prereqs;
mod templates;
mod tidy;

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use xshell::Shell;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build [--arch A]...  release builds of the four binaries for static musl (x86_64, aarch64;
                       both by default), each checked to be static, with its size
  demo                 the local end-to-end run of every binary on embedded defaults
  ci [--skip-prereqs]  everything CI runs: prereqs, tidy, fmt, lint, templates, test,
                       fuzz, kustomize
  prereqs              install what the tests need when it is missing (rustfmt, clippy,
                       PostgreSQL, promtool, Go with Sprig, a Python venv with moto)
  tidy                 the repository conventions (also run by `cargo test`)
  graph                the workspace's crate graph, as ARCHITECTURE.md shows it
  fmt                  cargo fmt --all -- --check
  lint                 cargo clippy --workspace --all-targets --locked -- -D warnings
  test                 cargo test --workspace --locked --no-fail-fast
  fuzz                 build every fuzz target (stable, uninstrumented) and run it on its seeds
  kustomize            kubectl kustomize every folder under manifests/
  templates [--check]  render the template corpus with Go and Sprig into expected.json
                       (--check: fail unless the committed file is what Go prints)
";

/// Prints the error's chain of causes, one per line, without a backtrace: the failing command
/// has already printed its own output.
fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci::run(&shell()?, ci::Prereqs::Install),
        ["ci", "--skip-prereqs"] => ci::run(&shell()?, ci::Prereqs::Skip),
        ["demo"] => demo::run(&shell()?),
        ["build", rest @ ..] => {
            let arches = build_arches(rest)?;
            build::run(&shell()?, &arches)
        }
        ["prereqs"] => prereqs::install(&shell()?),
        ["tidy"] => tidy::run(project_root()),
        ["graph"] => tidy::print_graph(project_root()),
        ["fmt"] => ci::fmt(&shell()?),
        ["lint"] => ci::lint(&shell()?),
        ["test"] => ci::test(&shell()?),
        ["fuzz"] => ci::fuzz(&shell()?),
        ["kustomize"] => ci::kustomize(&shell()?),
        ["templates"] => templates::run(&shell()?, templates::Mode::Write),
        ["templates", "--check"] => templates::run(&shell()?, templates::Mode::Check),
        [] | ["help" | "-h" | "--help"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => anyhow::bail!("unknown command `{}`\n\n{USAGE}", args.join(" ")),
    }
}

/// The workspace root: xtask always lives directly in it.
/// `--arch A` (repeatable) of `cargo xtask build`; both architectures without it.
fn build_arches(args: &[&str]) -> anyhow::Result<Vec<build::Arch>> {
    let mut arches = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--arch" => {
                let name = rest.next().context("--arch needs x86_64 or aarch64")?;
                arches.push(build::Arch::parse(name)?);
            }
            other => anyhow::bail!("unknown argument `{other}` for build\n\n{USAGE}"),
        }
    }
    if arches.is_empty() {
        arches = vec![build::Arch::X86_64, build::Arch::Aarch64];
    }
    Ok(arches)
}

pub(crate) fn project_root() -> &'static Path {
    let xtask = Path::new(env!("CARGO_MANIFEST_DIR"));
    xtask.parent().unwrap_or(xtask)
}

/// A shell for the child processes, in the workspace root.
///
/// Builds go to `CARGO_TARGET_DIR`, or to `~/.cache/bulwark-target` when it is unset, so that a
/// fresh clone reuses earlier builds. The moto venv's `bin` comes first on `PATH`, because the
/// tests start `python3 -m moto.server`.
fn shell() -> anyhow::Result<Shell> {
    let sh = Shell::new().context("cannot set up a shell for child processes")?;
    sh.change_dir(project_root());
    let home = home_dir()?;
    if env_var("CARGO_TARGET_DIR").is_none() {
        sh.set_var("CARGO_TARGET_DIR", home.join(".cache/bulwark-target"));
    }
    let path = env_var("PATH").unwrap_or_default();
    let venv_bin = prereqs::venv_dir(&home).join("bin");
    let path = std::env::join_paths(std::iter::once(venv_bin).chain(std::env::split_paths(&path)))
        .context("cannot put the moto venv on PATH")?;
    sh.set_var("PATH", path);
    Ok(sh)
}

/// Reads one variable of xtask's own environment.
#[allow(
    clippy::disallowed_methods,
    reason = "xtask is a build tool: it reads PATH, HOME and CARGO_TARGET_DIR itself"
)]
fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|value| !value.is_empty())
}

fn home_dir() -> anyhow::Result<PathBuf> {
    env_var("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// Finds an executable on xtask's own `PATH`, as `command -v` does.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;

    let path = env_var("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
}
