//! Tidy checks: the repository's conventions that no existing tool checks, enforced by
//! `cargo test` and CI (rust-analyzer's model).
//!
//! Each check returns its violations as `path:line: rule`; `tidy/tests.rs` runs every check on
//! this repository, and each check's core on a small bad input, so that no check is one that
//! cannot fail. What clippy checks is clippy's (the workspace lints deny `unwrap`, `dbg!`,
//! `todo!`, `mod.rs` and a bare `#[ignore]`); manifests are read with the `toml` crate and the
//! dependency graph with `cargo metadata`.
//!
//! The checks: text (`//!` headers, thin `main.rs`, source files under 700 lines, no
//! `#[should_panic]`, no trailing whitespace), manifests (`tidy/manifests.rs`: crate names,
//! workspace inheritance, the toolchain) and dependencies (`tidy/deps.rs`: the kube layering,
//! and the bans and licenses of `deny.toml`).

use std::{
    fmt,
    path::{Path, PathBuf},
};

use anyhow::Context;

mod deps;
mod manifests;

/// A check over the whole repository.
pub(crate) type Check = fn(&Repo) -> anyhow::Result<Vec<Violation>>;

/// Every check, by name: `cargo xtask tidy` runs them all, and the tests run each on its own.
pub(crate) const CHECKS: &[(&str, Check)] = &[
    ("module_docs", module_docs),
    ("thin_main", thin_main),
    ("file_size", file_size),
    ("no_should_panic", no_should_panic),
    ("fixture_paths", fixture_paths),
    ("trailing_whitespace", trailing_whitespace),
    ("crate_names", manifests::crate_names),
    ("manifest_shape", manifests::manifest_shape),
    ("toolchain_matches_msrv", manifests::toolchain_matches_msrv),
    ("kube_layering", deps::kube_layering),
    ("dependency_policy", deps::dependency_policy),
    ("crate_graph_documented", deps::crate_graph_documented),
];

pub(crate) use deps::print_graph;

/// The most lines a binary's `main.rs` may have: the binaries only wire libraries together.
const MAX_MAIN_LINES: usize = 150;

/// The most lines a source file may have, outside tests, benchmarks and fixtures: past it, a
/// file holds more than one idea, and is cut along its seams.
const MAX_SOURCE_LINES: usize = 700;

/// Folders the walk never enters: VCS data, build output and local tool installs.
const SKIPPED_DIRS: &[&str] = &[".git", "target", ".venv", "node_modules"];

/// Runs every check on the repository at `root` and prints the violations.
pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let repo = Repo::load(root)?;
    let mut n_violations = 0;
    for (name, check) in CHECKS {
        let violations = check(&repo).with_context(|| format!("tidy check `{name}` cannot run"))?;
        for violation in &violations {
            eprintln!("{violation} [tidy::{name}]");
        }
        n_violations += violations.len();
    }
    if n_violations > 0 {
        anyhow::bail!("{n_violations} tidy violations");
    }
    eprintln!("{} tidy checks passed", CHECKS.len());
    Ok(())
}

/// One broken rule, at a line of a file (relative to the repository root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub(crate) path: PathBuf,
    pub(crate) line: usize,
    pub(crate) rule: String,
}

impl Violation {
    fn new(path: &Path, line: usize, rule: impl Into<String>) -> Violation {
        Violation {
            path: path.to_path_buf(),
            line,
            rule: rule.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path.display(), self.line, self.rule)
    }
}

/// The repository's files, listed once for all checks.
#[derive(Debug)]
pub(crate) struct Repo {
    root: PathBuf,
    /// Every file outside [`SKIPPED_DIRS`], relative to `root`, sorted.
    files: Vec<PathBuf>,
}

impl Repo {
    pub(crate) fn load(root: &Path) -> anyhow::Result<Repo> {
        let mut files = Vec::new();
        let mut todo = vec![PathBuf::new()];
        while let Some(dir) = todo.pop() {
            let abs = root.join(&dir);
            let entries = std::fs::read_dir(&abs)
                .with_context(|| format!("cannot list {}", abs.display()))?;
            for entry in entries {
                let entry = entry.with_context(|| format!("cannot list {}", abs.display()))?;
                let rel = dir.join(entry.file_name());
                let file_type = entry
                    .file_type()
                    .with_context(|| format!("cannot stat {}", rel.display()))?;
                if file_type.is_dir() {
                    if !SKIPPED_DIRS
                        .iter()
                        .any(|skipped| entry.file_name() == *skipped)
                    {
                        todo.push(rel);
                    }
                } else if file_type.is_file() {
                    files.push(rel);
                }
            }
        }
        files.sort();
        Ok(Repo {
            root: root.to_path_buf(),
            files,
        })
    }

    fn read(&self, rel: &Path) -> anyhow::Result<String> {
        std::fs::read_to_string(self.root.join(rel))
            .with_context(|| format!("cannot read {}", rel.display()))
    }

    /// The `.rs` files under `libs/`, `bins/` and `xtask/` with their text.
    fn rust_files(&self) -> anyhow::Result<Vec<(PathBuf, String)>> {
        let mut res = Vec::new();
        for path in &self.files {
            let ours = ["libs", "bins", "xtask"]
                .iter()
                .any(|dir| path.starts_with(dir));
            if ours && path.extension().is_some_and(|ext| ext == "rs") {
                res.push((path.clone(), self.read(path)?));
            }
        }
        Ok(res)
    }
}

/// Whether `path` holds only tests, benchmarks, fuzz targets or fixtures.
fn is_test_path(path: &Path) -> bool {
    path.components().any(|c| {
        matches!(
            c.as_os_str().to_str(),
            Some("tests" | "benches" | "fuzz" | "fixtures.rs" | "tests.rs")
        )
    }) || path.starts_with("libs/test-util")
}

fn module_docs(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(repo
        .rust_files()?
        .iter()
        .filter_map(|(path, text)| check_module_doc(path, text))
        .collect())
}

pub(crate) fn check_module_doc(path: &Path, text: &str) -> Option<Violation> {
    (!text.starts_with("//!")).then(|| {
        Violation::new(
            path,
            1,
            "a Rust file starts with a `//!` comment saying what it is for",
        )
    })
}

fn thin_main(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let mut res = Vec::new();
    for (path, text) in repo.rust_files()? {
        let parts: Vec<&str> = path
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        if let ["bins", _, "src", "main.rs"] = parts.as_slice() {
            res.extend(check_thin_main(&path, &text));
        }
    }
    Ok(res)
}

pub(crate) fn check_thin_main(path: &Path, text: &str) -> Option<Violation> {
    (text.lines().count() > MAX_MAIN_LINES).then(|| {
        Violation::new(
            path,
            MAX_MAIN_LINES + 1,
            format!("main.rs stays thin (at most {MAX_MAIN_LINES} lines): move logic into libs/"),
        )
    })
}

fn file_size(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(repo
        .rust_files()?
        .iter()
        .filter(|(path, _)| !is_test_path(path))
        .filter_map(|(path, text)| check_file_size(path, text))
        .collect())
}

pub(crate) fn check_file_size(path: &Path, text: &str) -> Option<Violation> {
    (text.lines().count() > MAX_SOURCE_LINES).then(|| {
        Violation::new(
            path,
            MAX_SOURCE_LINES + 1,
            format!(
                "a source file has at most {MAX_SOURCE_LINES} lines outside tests and fixtures: cut it along its seams"
            ),
        )
    })
}

fn no_should_panic(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(repo
        .rust_files()?
        .iter()
        .flat_map(|(path, text)| check_no_should_panic(path, text))
        .collect())
}

fn fixture_paths(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(repo
        .rust_files()?
        .iter()
        .flat_map(|(path, text)| check_fixture_paths(path, text))
        .collect())
}

/// No `env!("CARGO_MANIFEST_DIR")` outside build scripts and xtask's root lookup: the value is
/// compiled in, and clones at different paths that share a target directory reuse each other's
/// test binaries (cargo's fingerprints are relative to the workspace), which then read files in
/// a clone that may be gone or older. Tests read fixtures relative to the package root, where
/// cargo runs them, or embed them with `include_str!`.
pub(crate) fn check_fixture_paths(path: &Path, text: &str) -> Vec<Violation> {
    if path.ends_with("build.rs") || path == Path::new("xtask/src/main.rs") {
        return Vec::new();
    }
    let needle = concat!("env!(\"CARGO_MANIFEST", "_DIR\")");
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.contains(needle) && !line.trim_start().starts_with("//"))
        .map(|(i, _)| {
            Violation::new(
                path,
                i + 1,
                "no compile-time CARGO_MANIFEST_DIR: read fixtures relative to the package root \
                 (cargo runs tests there) or include_str! them",
            )
        })
        .collect()
}

/// No `#[should_panic]`: a test asserts on the `Err` it expects (STYLE.md, Tests).
pub(crate) fn check_no_should_panic(path: &Path, text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.trim_start().starts_with("#[should_panic"))
        .map(|(i, _)| {
            Violation::new(
                path,
                i + 1,
                "no #[should_panic]: return or match the error and assert on it",
            )
        })
        .collect()
}

fn trailing_whitespace(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let mut res = Vec::new();
    for path in &repo.files {
        let text_file = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["rs", "toml", "md", "yaml", "yml", "json", "sh"].contains(&e))
            || path.starts_with(".ci");
        if text_file {
            res.extend(check_trailing_whitespace(path, &repo.read(path)?));
        }
    }
    Ok(res)
}

pub(crate) fn check_trailing_whitespace(path: &Path, text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.ends_with([' ', '\t']))
        .map(|(i, _)| Violation::new(path, i + 1, "no trailing whitespace"))
        .collect()
}

#[cfg(test)]
mod tests;
