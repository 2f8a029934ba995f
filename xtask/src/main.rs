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

mod args;
mod build;
mod ci;
mod demo;
mod image;
mod manifests;
mod oci;
mod prereqs;
mod release;
mod sbom;
mod sign;
mod stamp;
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
  image [--arch A]... [--bin B]... [--out DIR]
                       an OCI image layout per binary (DIR/<binary>, DIR defaults to
                       <target>/oci): an image per architecture and the multi-arch index
  sbom [--arch A]... [--bin B]... [--out DIR]
                       a CycloneDX 1.5 SBOM per binary and architecture, attached to its image
  keygen DIR           a cosign key pair, DIR/cosign.key (COSIGN_PASSWORD) and DIR/cosign.pub
  sign --key FILE [--bin B]... [--out DIR]
                       cosign signatures for every image, index and SBOM
  verify --key FILE [--bin B]... [--out DIR]
                       check every blob, and a signature by the public key FILE on each
  push [--bin B]... [--out DIR] [--with-signatures]
                       copy the layouts to BULWARK_REGISTRY with skopeo, keeping digests
  release [--arch A]... [--bin B]... [--out DIR] [--key FILE] [--push] [--dry-run]
                       build, image, sbom, sign, verify and run each binary; a closing table.
                       Without --key, a new key pair in DIR/key. --push copies the layouts to
                       BULWARK_REGISTRY with skopeo. --dry-run prints the plan.
  demo                 the local end-to-end run of every binary on embedded defaults
  ci [--skip-prereqs]  everything CI runs: prereqs, tidy, fmt, lint, templates, test,
                       release (x86_64, with its tests), fuzz, kustomize
  prereqs              install what the tests need when it is missing (rustfmt, clippy,
                       PostgreSQL, promtool, Go with Sprig, skopeo, umoci, a Python venv
                       with moto, actionlint)
  tidy                 the repository conventions (also run by `cargo test`)
  graph                the workspace's crate graph, as ARCHITECTURE.md shows it
  fmt                  cargo fmt --all -- --check
  lint                 cargo clippy --workspace --all-targets --locked -- -D warnings, and
                       actionlint on .github/workflows
  test                 cargo test --workspace --locked --no-fail-fast
  release-test         the release for x86_64, then xtask/tests/release.rs on what it made
  fuzz                 build every fuzz target (stable, uninstrumented) and run it on its seeds
  kustomize            render and validate manifests/ (bases, overlays, components),
                       run the alert tests, check the metric names
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
            let args = args::parse(rest, &["--arch"])?;
            build::run(&shell()?, &args.arches)
        }
        ["image", rest @ ..] => {
            let args = args::parse(rest, &["--arch", "--bin", "--out"])?;
            let sh = shell()?;
            let stamp = stamp::Stamp::read(&sh)?;
            image::run(&sh, &args.arches, &args.binaries, &args.out(&sh), &stamp).map(drop)
        }
        ["sbom", rest @ ..] => {
            let args = args::parse(rest, &["--arch", "--bin", "--out"])?;
            let sh = shell()?;
            let stamp = stamp::Stamp::read(&sh)?;
            sbom::run(&sh, &args.arches, &args.binaries, &args.out(&sh), &stamp)
        }
        ["keygen", dir] => sign::keygen(Path::new(dir)),
        ["sign", rest @ ..] => {
            let args = args::parse(rest, &["--key", "--bin", "--out"])?;
            let sh = shell()?;
            let stamp = stamp::Stamp::read(&sh)?;
            sign::run(&args.key()?, &args.binaries, &args.out(&sh), &stamp)
        }
        ["verify", rest @ ..] => {
            let args = args::parse(rest, &["--key", "--bin", "--out"])?;
            let sh = shell()?;
            let stamp = stamp::Stamp::read(&sh)?;
            sign::verify(&args.key()?, &args.binaries, &args.out(&sh), &stamp)
        }
        ["push", rest @ ..] => {
            let args = args::parse(rest, &["--bin", "--out", "--with-signatures"])?;
            let sh = shell()?;
            let stamp = stamp::Stamp::read(&sh)?;
            let out = args.out(&sh);
            release::push(&sh, &args.binaries, &out, &stamp, args.with_signatures)
        }
        ["release", rest @ ..] => {
            let args = args::parse(
                rest,
                &["--arch", "--bin", "--out", "--key", "--push", "--dry-run"],
            )?;
            release::run(&shell()?, &args)
        }
        ["prereqs"] => prereqs::install(&shell()?),
        ["tidy"] => tidy::run(project_root()),
        ["graph"] => tidy::print_graph(project_root()),
        ["fmt"] => ci::fmt(&shell()?),
        ["lint"] => ci::lint(&shell()?),
        ["test"] => ci::test(&shell()?),
        ["fuzz"] => ci::fuzz(&shell()?),
        ["release-test"] => ci::release(&shell()?),
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
///
/// `cargo run` gives xtask its manifest directory at run time; the compile-time value is only
/// the fallback, because clones at different paths sharing one target directory reuse each
/// other's xtask binary (cargo's fingerprints are relative to the workspace), which would then
/// work in a clone that may no longer exist.
pub(crate) fn project_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let xtask = env_var("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
        xtask.parent().map_or(xtask.clone(), Path::to_path_buf)
    })
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

pub(crate) fn home_dir() -> anyhow::Result<PathBuf> {
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

/// A size in MiB with one decimal, as the progress lines and tables print it.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}
