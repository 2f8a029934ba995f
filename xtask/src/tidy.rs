//! Tidy checks: the repository's conventions, enforced by `cargo test` (rust-analyzer's model).
//!
//! Each check walks the repository and returns its violations as `path:line: rule`.
//! `tidy/tests.rs` runs every check on this repository, and each check's core on a small bad input
//! so that no check is one that cannot fail.
//! The Rust and TOML readers here are deliberately small: they understand the forms this workspace
//! writes, and report a form they do not understand rather than skip it.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    path::{Path, PathBuf},
};

use anyhow::Context;

/// A check over the whole repository.
pub(crate) type Check = fn(&Repo) -> anyhow::Result<Vec<Violation>>;

/// Every check, by name: `cargo xtask tidy` runs them all, and the tests run each on its own.
pub(crate) const CHECKS: &[(&str, Check)] = &[
    ("module_docs", module_docs),
    ("crate_names", crate_names),
    ("cargo_toml_shape", cargo_toml_shape),
    ("kube_layering", kube_layering),
    ("toolchain_matches_msrv", toolchain_matches_msrv),
    ("thin_main", thin_main),
    ("no_unwrap", no_unwrap),
    ("test_attrs_and_macros", test_attrs_and_macros),
    ("trailing_whitespace", trailing_whitespace),
    ("no_mod_rs", no_mod_rs),
];

/// The most lines a binary's `main.rs` may have: the binaries only wire libraries together.
const MAX_MAIN_LINES: usize = 150;

/// The crates that talk to the API server; only the crates in [`may_use_kube`] depend on them.
const KUBE_CLIENT_CRATES: &[&str] = &["kube", "kube-client", "kube-runtime"];

const KUBE_RULE: &str =
    "only bulwark-kube, bulwark-test-util and the binaries talk to the API server (STYLE.md 4)";

/// Folders the walk never enters: VCS data, build output and local tool installs.
const SKIPPED_DIRS: &[&str] = &[".git", "target", ".venv", "node_modules"];

/// The package keys every member inherits from `[workspace.package]`.
const INHERITED_PACKAGE_KEYS: &[&str] = &["version", "edition", "rust-version", "license"];

/// The keys a member may add to a workspace dependency.
const DEPENDENCY_KEYS: &[&str] = &["workspace", "features", "optional", "default-features"];

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

    /// The `.rs` files under `libs/`, `bins/` and `xtask/` with their text, except fuzz targets
    /// and generated code (marked `@generated` near the top, as rustfmt and cargo expect).
    fn rust_files(&self) -> anyhow::Result<Vec<(PathBuf, String)>> {
        let mut res = Vec::new();
        for path in &self.files {
            let ours = ["libs", "bins", "xtask"]
                .iter()
                .any(|dir| path.starts_with(dir));
            let fuzz = path.components().any(|c| c.as_os_str() == "fuzz");
            if !ours || fuzz || path.extension().is_none_or(|ext| ext != "rs") {
                continue;
            }
            let text = self.read(path)?;
            if text.lines().take(5).any(|line| line.contains("@generated")) {
                continue;
            }
            res.push((path.clone(), text));
        }
        Ok(res)
    }

    /// The workspace members: `libs/*`, `bins/*` and `xtask`, found by their `Cargo.toml`.
    fn members(&self) -> Vec<Member> {
        self.files
            .iter()
            .filter_map(|path| {
                let parts: Vec<&str> = path
                    .components()
                    .filter_map(|c| c.as_os_str().to_str())
                    .collect();
                let (expected_name, may_use_kube) = match parts.as_slice() {
                    ["libs", dir, "Cargo.toml"] => (format!("bulwark-{dir}"), may_use_kube(path)),
                    ["bins", dir, "Cargo.toml"] => (dir.to_string(), true),
                    ["xtask", "Cargo.toml"] => ("xtask".to_owned(), false),
                    _ => return None,
                };
                Some(Member {
                    manifest: path.clone(),
                    expected_name,
                    may_use_kube,
                })
            })
            .collect()
    }
}

#[derive(Debug)]
struct Member {
    manifest: PathBuf,
    expected_name: String,
    may_use_kube: bool,
}

/// Only `bulwark-kube`, the test harnesses and the binaries talk to the API server (STYLE.md 4).
fn may_use_kube(manifest: &Path) -> bool {
    ["libs/kube", "libs/test-util", "bins"]
        .iter()
        .any(|dir| manifest.starts_with(dir))
}

// Checks over the repository, each with a core function over one file's text.

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

fn crate_names(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let mut res = Vec::new();
    for member in repo.members() {
        let toml = Toml::parse(&repo.read(&member.manifest)?);
        res.extend(check_crate_name(
            &member.manifest,
            &toml,
            &member.expected_name,
        ));
    }
    Ok(res)
}

pub(crate) fn check_crate_name(path: &Path, toml: &Toml, expected: &str) -> Option<Violation> {
    let rule =
        format!("the package is named `{expected}` (libs/<d> is `bulwark-<d>`, bins/<d> is `<d>`)");
    match toml.get("package", "name") {
        Some(entry) if unquote(&entry.value) == expected => None,
        Some(entry) => Some(Violation::new(path, entry.line, rule)),
        None => Some(Violation::new(path, 1, rule)),
    }
}

fn cargo_toml_shape(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let mut res = Vec::new();
    for member in repo.members() {
        let toml = Toml::parse(&repo.read(&member.manifest)?);
        res.extend(check_manifest_shape(&member.manifest, &toml));
    }
    Ok(res)
}

/// A member inherits the workspace's package keys and lints, and takes every dependency from
/// `[workspace.dependencies]`, adding at most features (STYLE.md, Cargo hygiene).
pub(crate) fn check_manifest_shape(path: &Path, toml: &Toml) -> Vec<Violation> {
    let mut res = Vec::new();

    let package_line = toml.table_line("package").unwrap_or(1);
    for key in INHERITED_PACKAGE_KEYS {
        let rule = format!("`{key}` is inherited: `{key}.workspace = true`");
        let inherited = toml
            .get("package", &format!("{key}.workspace"))
            .map(|e| e.value == "true");
        let own = toml.get("package", key);
        match (inherited, own) {
            (Some(true), None) => {}
            (None, Some(entry)) if is_workspace_table(&entry.value) => {}
            (_, Some(entry)) => res.push(Violation::new(path, entry.line, rule)),
            (Some(false), None) | (None, None) => {
                res.push(Violation::new(path, package_line, rule))
            }
        }
    }

    let lints = toml.entries.iter().any(|e| {
        (e.table == "lints" && e.key == "workspace" && e.value == "true")
            || (e.table.is_empty() && e.key == "lints.workspace" && e.value == "true")
            || (e.table.is_empty() && e.key == "lints" && is_workspace_table(&e.value))
    });
    if !lints {
        let line = toml.table_line("lints").unwrap_or(1);
        res.push(Violation::new(
            path,
            line,
            "the crate uses the workspace lints: `[lints] workspace = true`",
        ));
    }

    for (line, table) in &toml.tables {
        if table.split('.').any(|part| dependency_kind(part).is_some())
            && dependency_kind(table).is_none()
        {
            res.push(Violation::new(
                path,
                *line,
                format!("`[{table}]`: declare the dependency on one line, `name.workspace = true`"),
            ));
        }
    }

    // Per dependency table and name: the line it starts at and whether it says `workspace = true`.
    let mut deps: BTreeMap<(&str, &str), (usize, bool)> = BTreeMap::new();
    for entry in toml
        .entries
        .iter()
        .filter(|e| dependency_kind(&e.table).is_some())
    {
        let (name, sub_key) = match entry.key.split_once('.') {
            Some((name, sub_key)) => (name, Some(sub_key)),
            None => (entry.key.as_str(), None),
        };
        let dep = deps
            .entry((entry.table.as_str(), name))
            .or_insert((entry.line, false));
        let fields = match sub_key {
            Some(sub_key) => vec![(sub_key.to_owned(), entry.value.clone())],
            None => match inline_table(&entry.value) {
                Some(fields) => fields,
                None => {
                    res.push(Violation::new(path, entry.line, from_workspace(name)));
                    dep.1 = true;
                    continue;
                }
            },
        };
        for (key, value) in fields {
            if key == "workspace" && value == "true" {
                dep.1 = true;
            } else if !DEPENDENCY_KEYS.contains(&key.as_str()) {
                res.push(Violation::new(
                    path,
                    entry.line,
                    format!(
                        "dependency `{name}` sets `{key}`: a member adds only {}",
                        DEPENDENCY_KEYS[1..].join(", ")
                    ),
                ));
            }
        }
    }
    for ((_, name), (line, workspace)) in deps {
        if !workspace {
            res.push(Violation::new(path, line, from_workspace(name)));
        }
    }

    res.sort_by_key(|v| v.line);
    res
}

fn from_workspace(name: &str) -> String {
    format!("dependency `{name}` comes from [workspace.dependencies]: `{name}.workspace = true`")
}

fn kube_layering(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let root = Toml::parse(&repo.read(Path::new("Cargo.toml"))?);
    // Workspace dependencies may rename a package (`k = { package = "kube" }`): resolve aliases.
    let aliases: BTreeMap<String, String> = root
        .entries
        .iter()
        .filter(|e| e.table == "workspace.dependencies")
        .filter_map(|e| {
            let alias = e.key.split('.').next()?;
            let package = inline_table(&e.value)?
                .into_iter()
                .find_map(|(key, value)| (key == "package").then(|| unquote(&value).to_owned()))?;
            Some((alias.to_owned(), package))
        })
        .collect();
    let mut crates = Vec::new();
    for member in repo.members() {
        let toml = Toml::parse(&repo.read(&member.manifest)?);
        let mut deps = toml.dependencies();
        for dep in &mut deps {
            if let Some(package) = aliases.get(&dep.name) {
                dep.name.clone_from(package);
            }
        }
        let name = toml
            .get("package", "name")
            .map_or(member.expected_name.clone(), |e| {
                unquote(&e.value).to_owned()
            });
        crates.push(CrateDeps {
            manifest: member.manifest,
            name,
            may_use_kube: member.may_use_kube,
            deps,
        });
    }
    Ok(check_kube_layering(&crates))
}

/// One workspace crate's dependencies, for [`check_kube_layering`].
#[derive(Debug)]
pub(crate) struct CrateDeps {
    pub(crate) manifest: PathBuf,
    pub(crate) name: String,
    pub(crate) may_use_kube: bool,
    pub(crate) deps: Vec<Dep>,
}

/// A crate that depends on a kube client crate, directly (any kind of dependency) or through
/// another workspace crate (normal and build dependencies), must be one of [`may_use_kube`].
pub(crate) fn check_kube_layering(crates: &[CrateDeps]) -> Vec<Violation> {
    let by_name: BTreeMap<&str, &CrateDeps> = crates.iter().map(|c| (c.name.as_str(), c)).collect();
    let mut res = Vec::new();
    for krate in crates.iter().filter(|c| !c.may_use_kube) {
        for dep in &krate.deps {
            let path = if KUBE_CLIENT_CRATES.contains(&dep.name.as_str()) {
                Some(dep.name.clone())
            } else if dep.kind != DepKind::Dev {
                kube_path(&dep.name, &by_name, &mut BTreeSet::new())
                    .map(|path| format!("{} -> {path}", dep.name))
            } else {
                None
            };
            if let Some(path) = path {
                res.push(Violation::new(
                    &krate.manifest,
                    dep.line,
                    format!(
                        "`{}` depends on the kube client ({path}): {KUBE_RULE}",
                        krate.name
                    ),
                ));
            }
        }
    }
    res
}

/// How the workspace crate `name` reaches a kube client crate through normal and build
/// dependencies, as `a -> b -> kube`.
fn kube_path<'a>(
    name: &'a str,
    by_name: &BTreeMap<&str, &'a CrateDeps>,
    seen: &mut BTreeSet<&'a str>,
) -> Option<String> {
    let krate = by_name.get(name)?;
    if !seen.insert(name) {
        return None;
    }
    krate
        .deps
        .iter()
        .filter(|dep| dep.kind != DepKind::Dev)
        .find_map(|dep| {
            if KUBE_CLIENT_CRATES.contains(&dep.name.as_str()) {
                Some(dep.name.clone())
            } else {
                kube_path(&dep.name, by_name, seen).map(|path| format!("{} -> {path}", dep.name))
            }
        })
}

fn toolchain_matches_msrv(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let toolchain_path = Path::new("rust-toolchain.toml");
    if !repo.files.iter().any(|file| file == toolchain_path) {
        return Ok(vec![Violation::new(
            toolchain_path,
            1,
            "the toolchain is pinned in rust-toolchain.toml",
        )]);
    }
    let toolchain = Toml::parse(&repo.read(toolchain_path)?);
    let workspace = Toml::parse(&repo.read(Path::new("Cargo.toml"))?);
    Ok(check_toolchain(toolchain_path, &toolchain, &workspace)
        .into_iter()
        .collect())
}

/// `rust-toolchain.toml`'s channel is the version `[workspace.package] rust-version` names, so
/// that the MSRV is what CI builds with (STYLE.md, Cargo hygiene).
pub(crate) fn check_toolchain(
    path: &Path,
    toolchain: &Toml,
    workspace: &Toml,
) -> Option<Violation> {
    let Some(channel) = toolchain.get("toolchain", "channel") else {
        return Some(Violation::new(
            path,
            1,
            "rust-toolchain.toml pins `[toolchain] channel`",
        ));
    };
    let Some(channel_version) = major_minor(unquote(&channel.value)) else {
        return Some(Violation::new(
            path,
            channel.line,
            "the toolchain channel is a version such as \"1.95.0\"",
        ));
    };
    let msrv = workspace
        .get("workspace.package", "rust-version")
        .and_then(|e| major_minor(unquote(&e.value)));
    match msrv {
        Some(msrv) if msrv == channel_version => None,
        Some(msrv) => Some(Violation::new(
            path,
            channel.line,
            format!(
                "the toolchain ({channel_version}) is [workspace.package] rust-version ({msrv})"
            ),
        )),
        None => Some(Violation::new(
            Path::new("Cargo.toml"),
            1,
            "[workspace.package] sets rust-version",
        )),
    }
}

fn major_minor(version: &str) -> Option<&str> {
    let mut parts = version.split('.');
    let major = parts.next()?;
    let minor = parts.next()?;
    let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (numeric(major) && numeric(minor)).then(|| &version[..major.len() + 1 + minor.len()])
}

fn thin_main(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let mut res = Vec::new();
    for path in &repo.files {
        let parts: Vec<&str> = path
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        if let ["bins", _, "src", "main.rs"] = parts.as_slice() {
            res.extend(check_thin_main(path, &repo.read(path)?));
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

fn no_unwrap(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let files: Vec<(PathBuf, String)> = repo
        .rust_files()?
        .into_iter()
        .filter(|(path, _)| {
            (path.starts_with("libs") || path.starts_with("bins"))
                && !path.starts_with("libs/test-util")
                && !is_test_path(path)
        })
        .collect();
    // Files declared as `#[cfg(test)] mod name;` are test code, and so is everything below them.
    let test_modules: Vec<PathBuf> = files
        .iter()
        .flat_map(|(path, text)| {
            cfg_test_mod_decls(&code_lines(text))
                .into_iter()
                .map(|name| child_module_path(path, &name))
        })
        .collect();
    let is_test_module = |path: &Path| {
        test_modules
            .iter()
            .any(|module| path == module || path.starts_with(module.with_extension("")))
    };
    Ok(files
        .iter()
        .filter(|(path, _)| !is_test_module(path))
        .flat_map(|(path, text)| check_no_unwrap(path, text))
        .collect())
}

/// Paths that hold only tests, benchmarks and examples.
fn is_test_path(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "tests.rs")
        || path.components().any(|c| {
            ["tests", "benches", "examples"]
                .iter()
                .any(|dir| c.as_os_str() == *dir)
        })
}

pub(crate) fn check_no_unwrap(path: &Path, text: &str) -> Vec<Violation> {
    let code = code_lines(text);
    let test = test_lines(&code);
    code.iter()
        .zip(test)
        .enumerate()
        .filter(|(_, (line, test))| !test && line.contains(".unwrap()"))
        .map(|(idx, _)| {
            Violation::new(
                path,
                idx + 1,
                "no `.unwrap()` outside tests: return an error with context instead",
            )
        })
        .collect()
}

fn test_attrs_and_macros(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(repo
        .rust_files()?
        .iter()
        .flat_map(|(path, text)| check_test_attrs_and_macros(path, text))
        .collect())
}

/// No `#[should_panic]` (assert on the `Err`), `#[ignore]` says why, and no leftover `todo!`,
/// `unimplemented!` or `dbg!` (STYLE.md, Tests).
pub(crate) fn check_test_attrs_and_macros(path: &Path, text: &str) -> Vec<Violation> {
    let mut res = Vec::new();
    let original: Vec<&str> = text.lines().collect();
    for (idx, line) in code_lines(text).iter().enumerate() {
        if !token_positions(line, "should_panic").is_empty() {
            res.push(Violation::new(
                path,
                idx + 1,
                "no `#[should_panic]`: return or assert on the `Err` instead",
            ));
        }
        for mac in ["todo!", "unimplemented!", "dbg!"] {
            if !token_positions(line, mac).is_empty() {
                res.push(Violation::new(
                    path,
                    idx + 1,
                    format!("no `{mac}` in committed code"),
                ));
            }
        }
        if line.trim_start().starts_with("#[") {
            let original = original.get(idx).copied().unwrap_or_default();
            for col in token_positions(line, "ignore") {
                if !ignore_has_reason(original, col + "ignore".len()) {
                    res.push(Violation::new(
                        path,
                        idx + 1,
                        "`#[ignore]` says why: `#[ignore = \"needs ...\"]`",
                    ));
                }
            }
        }
    }
    res
}

/// Whether `line`, after the `ignore` that ends at char `col`, continues with `= "<reason>"`.
fn ignore_has_reason(line: &str, col: usize) -> bool {
    let rest: String = line.chars().skip(col).collect();
    let Some(rest) = rest.trim_start().strip_prefix('=') else {
        return false;
    };
    let Some(rest) = rest.trim_start().strip_prefix('"') else {
        return false;
    };
    rest.split('"')
        .next()
        .is_some_and(|reason| !reason.trim().is_empty())
}

fn trailing_whitespace(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let mut res = Vec::new();
    for path in &repo.files {
        let checked = path
            .extension()
            .and_then(|ext| ext.to_str())
            .is_some_and(|ext| ["rs", "toml", "md", "yaml", "yml"].contains(&ext));
        // Fixtures under tests/data are copied verbatim from elsewhere (the seeds' configs).
        let fixture = path
            .components()
            .zip(path.components().skip(1))
            .any(|(a, b)| a.as_os_str() == "tests" && b.as_os_str() == "data");
        if checked && !fixture {
            res.extend(check_trailing_whitespace(path, &repo.read(path)?));
        }
    }
    Ok(res)
}

pub(crate) fn check_trailing_whitespace(path: &Path, text: &str) -> Vec<Violation> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.ends_with([' ', '\t']))
        .map(|(idx, _)| Violation::new(path, idx + 1, "no trailing whitespace"))
        .collect()
}

fn no_mod_rs(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(check_no_mod_rs(&repo.files))
}

pub(crate) fn check_no_mod_rs(files: &[PathBuf]) -> Vec<Violation> {
    files
        .iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "mod.rs"))
        .map(|path| {
            Violation::new(
                path,
                1,
                "no `mod.rs`: name the module `foo.rs` beside its folder `foo/`",
            )
        })
        .collect()
}

// A small Rust reader: enough to tell code from comments, strings and tests.

/// `text`'s lines with comments blanked and the insides of string and character literals
/// blanked (their quotes stay), so that checks see code only. Every line keeps its length in
/// chars, so columns match the original text.
pub(crate) fn code_lines(text: &str) -> Vec<String> {
    #[derive(Clone, Copy)]
    enum State {
        Code,
        LineComment,
        BlockComment(usize),
        Str,
        RawStr(usize),
    }

    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut state = State::Code;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let mut step = 1;
        match state {
            State::Code => match c {
                '/' if next == Some('/') => {
                    state = State::LineComment;
                    out.push(' ');
                }
                '/' if next == Some('*') => {
                    state = State::BlockComment(1);
                    out.push_str("  ");
                    step = 2;
                }
                '"' => {
                    state = State::Str;
                    out.push('"');
                }
                'r' if raw_string_hashes(&chars, i).is_some() => {
                    let hashes = raw_string_hashes(&chars, i).unwrap_or_default();
                    state = State::RawStr(hashes);
                    out.extend(chars[i..i + hashes + 2].iter());
                    step = hashes + 2;
                }
                '\'' => match char_literal_len(&chars, i) {
                    Some(len) => {
                        out.push('\'');
                        out.extend(std::iter::repeat_n(' ', len - 2));
                        out.push('\'');
                        step = len;
                    }
                    None => out.push('\''),
                },
                _ => out.push(c),
            },
            State::LineComment => {
                if c == '\n' {
                    state = State::Code;
                }
                out.push(blank(c));
            }
            State::BlockComment(depth) => {
                if c == '*' && next == Some('/') {
                    state = if depth == 1 {
                        State::Code
                    } else {
                        State::BlockComment(depth - 1)
                    };
                    out.push_str("  ");
                    step = 2;
                } else if c == '/' && next == Some('*') {
                    state = State::BlockComment(depth + 1);
                    out.push_str("  ");
                    step = 2;
                } else {
                    out.push(blank(c));
                }
            }
            State::Str => match c {
                '\\' => {
                    out.push(' ');
                    if let Some(next) = next {
                        out.push(blank(next));
                        step = 2;
                    }
                }
                '"' => {
                    state = State::Code;
                    out.push('"');
                }
                _ => out.push(blank(c)),
            },
            State::RawStr(hashes) => {
                let closes = c == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#'));
                if closes {
                    state = State::Code;
                    out.push('"');
                    out.extend(std::iter::repeat_n('#', hashes));
                    step = hashes + 1;
                } else {
                    out.push(blank(c));
                }
            }
        }
        i += step;
    }
    out.lines().map(str::to_owned).collect()
}

/// At `r` of `r"`, `r#"`, `br##"`...: the number of `#`s. `None` when `r` is part of an
/// identifier or a raw identifier (`r#type`).
fn raw_string_hashes(chars: &[char], i: usize) -> Option<usize> {
    let ident = |idx: Option<usize>| {
        idx.and_then(|idx| chars.get(idx))
            .is_some_and(|c| is_ident_char(*c))
    };
    let prefix_ok = match i.checked_sub(1).map(|idx| chars[idx]) {
        Some('b' | 'c') => !ident(i.checked_sub(2)),
        Some(_) => !ident(i.checked_sub(1)),
        None => true,
    };
    if !prefix_ok {
        return None;
    }
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    (chars.get(i + 1 + hashes) == Some(&'"')).then_some(hashes)
}

/// At a `'`: the length in chars of the character literal that starts there, or `None` for a
/// lifetime or label.
fn char_literal_len(chars: &[char], i: usize) -> Option<usize> {
    match chars.get(i + 1)? {
        '\\' => {
            let end = (i + 3..chars.len()).find(|idx| chars[*idx] == '\'')?;
            Some(end - i + 1)
        }
        '\'' | '\n' => None,
        _ => (chars.get(i + 2) == Some(&'\'')).then_some(3),
    }
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The char positions where `token` occurs in `line` as a whole word.
fn token_positions(line: &str, token: &str) -> Vec<usize> {
    let chars: Vec<char> = line.chars().collect();
    let token: Vec<char> = token.chars().collect();
    (0..chars.len())
        .filter(|&i| chars[i..].starts_with(&token))
        .filter(|&i| i == 0 || !is_ident_char(chars[i - 1]))
        .filter(|&i| {
            token.last() == Some(&'!')
                || chars
                    .get(i + token.len())
                    .is_none_or(|c| !is_ident_char(*c))
        })
        .collect()
}

/// For each line of `code` (from [`code_lines`]): whether it is test-only code, that is an item
/// under `#[cfg(test)]`, `#[test]` or `#[<runtime>::test]`, or anything in a `#![cfg(test)]` file.
fn test_lines(code: &[String]) -> Vec<bool> {
    if code
        .iter()
        .any(|line| line.trim_start().starts_with("#![cfg(test)]"))
    {
        return vec![true; code.len()];
    }
    let mut res = vec![false; code.len()];
    let mut i = 0;
    while i < code.len() {
        if is_test_attr(code[i].trim_start()) {
            let end = item_end(code, i);
            res[i..=end].fill(true);
            i = end + 1;
        } else {
            i += 1;
        }
    }
    res
}

fn is_test_attr(line: &str) -> bool {
    let Some(attr) = line.strip_prefix("#[") else {
        return false;
    };
    let path = attr.split(['(', ']']).next().unwrap_or_default().trim();
    line.starts_with("#[cfg(test)]") || path == "test" || path.ends_with("::test")
}

/// The last line of the item whose attributes start at line `start`: its closing brace, or the
/// `;` that ends it.
fn item_end(code: &[String], start: usize) -> usize {
    let (mut braces, mut parens) = (0i64, 0i64);
    for (idx, line) in code.iter().enumerate().skip(start) {
        for c in line.chars() {
            match c {
                '{' => braces += 1,
                '}' => {
                    braces -= 1;
                    if braces <= 0 {
                        return idx;
                    }
                }
                '(' | '[' => parens += 1,
                ')' | ']' => parens -= 1,
                ';' if braces == 0 && parens == 0 => return idx,
                _ => {}
            }
        }
    }
    code.len().saturating_sub(1)
}

/// The names of modules declared `#[cfg(test)] mod name;`.
fn cfg_test_mod_decls(code: &[String]) -> Vec<String> {
    let mut res = Vec::new();
    for (idx, line) in code.iter().enumerate() {
        if !line.trim_start().starts_with("#[cfg(test)]") {
            continue;
        }
        let item = code[idx..=item_end(code, idx)].join(" ");
        for pos in token_positions(&item, "mod") {
            let rest: String = item.chars().skip(pos + 3).collect();
            let rest = rest.trim_start();
            let name: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
            if !name.is_empty() && rest[name.len()..].trim_start().starts_with(';') {
                res.push(name);
            }
        }
    }
    res
}

/// The file of module `name` declared in `parent` (no `mod.rs`, as [`check_no_mod_rs`] ensures).
fn child_module_path(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.parent().unwrap_or(Path::new(""));
    let crate_root = dir.ends_with("src/bin")
        || parent
            .file_name()
            .is_some_and(|file| file == "lib.rs" || file == "main.rs" || file == "build.rs");
    match parent.file_stem() {
        Some(stem) if !crate_root => dir.join(stem).join(format!("{name}.rs")),
        _ => dir.join(format!("{name}.rs")),
    }
}

// A small TOML reader: enough for Cargo.toml and rust-toolchain.toml.

/// A TOML file as its tables and `key = value` entries, with line numbers.
#[derive(Debug, Default)]
pub(crate) struct Toml {
    /// Table headers (`[dependencies]` is `dependencies`), with their lines.
    pub(crate) tables: Vec<(usize, String)>,
    pub(crate) entries: Vec<TomlEntry>,
}

/// One `key = value`: dotted keys stay dotted (`tokio.workspace`), and the value is its raw text
/// (a multi-line array is joined into one line).
#[derive(Debug)]
pub(crate) struct TomlEntry {
    pub(crate) line: usize,
    pub(crate) table: String,
    pub(crate) key: String,
    pub(crate) value: String,
}

/// A dependency of a workspace member, with the table that declares it.
#[derive(Debug)]
pub(crate) struct Dep {
    pub(crate) name: String,
    pub(crate) kind: DepKind,
    pub(crate) line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DepKind {
    Normal,
    Dev,
    Build,
}

impl Toml {
    pub(crate) fn parse(text: &str) -> Toml {
        let mut res = Toml::default();
        let mut table = String::new();
        // An entry whose value (an array or inline table) goes on past its first line.
        let mut pending: Option<(usize, String, String)> = None;
        for (idx, line) in text.lines().enumerate() {
            let line = strip_toml_comment(line).trim();
            if let Some((start, key, mut value)) = pending.take() {
                value.push(' ');
                value.push_str(line);
                if bracket_depth(&value) > 0 {
                    pending = Some((start, key, value));
                } else {
                    res.entries.push(TomlEntry {
                        line: start,
                        table: table.clone(),
                        key,
                        value,
                    });
                }
                continue;
            }
            if line.starts_with('[') {
                table = normalize_key(line.trim_start_matches('[').trim_end_matches(']'));
                res.tables.push((idx + 1, table.clone()));
            } else if let Some((key, value)) = line.split_once('=') {
                let (key, value) = (normalize_key(key), value.trim().to_owned());
                if bracket_depth(&value) > 0 {
                    pending = Some((idx + 1, key, value));
                } else {
                    res.entries.push(TomlEntry {
                        line: idx + 1,
                        table: table.clone(),
                        key,
                        value,
                    });
                }
            }
        }
        res
    }

    pub(crate) fn get(&self, table: &str, key: &str) -> Option<&TomlEntry> {
        self.entries
            .iter()
            .find(|e| e.table == table && e.key == key)
    }

    fn table_line(&self, table: &str) -> Option<usize> {
        self.tables
            .iter()
            .find(|(_, name)| name == table)
            .map(|(line, _)| *line)
    }

    /// Every dependency in `[dependencies]`, `[dev-dependencies]`, `[build-dependencies]` and
    /// their `[target.'cfg(..)'.*]` forms, once per table.
    pub(crate) fn dependencies(&self) -> Vec<Dep> {
        let mut seen = BTreeSet::new();
        self.entries
            .iter()
            .filter_map(|e| {
                let kind = dependency_kind(&e.table)?;
                let name = e.key.split('.').next()?;
                seen.insert((&e.table, name)).then(|| Dep {
                    name: name.to_owned(),
                    kind,
                    line: e.line,
                })
            })
            .collect()
    }
}

/// The kind of dependencies a table holds: `dependencies`, `target.'cfg(unix)'.dev-dependencies`...
fn dependency_kind(table: &str) -> Option<DepKind> {
    match table.rsplit('.').next()? {
        "dependencies" => Some(DepKind::Normal),
        "dev-dependencies" => Some(DepKind::Dev),
        "build-dependencies" => Some(DepKind::Build),
        _ => None,
    }
}

/// `a . "b"` is `a.b`.
fn normalize_key(key: &str) -> String {
    key.split('.')
        .map(|part| part.trim().trim_matches('"'))
        .collect::<Vec<_>>()
        .join(".")
}

fn unquote(value: &str) -> &str {
    value.trim().trim_matches(['"', '\''])
}

/// `line` without its `#` comment, if any.
fn strip_toml_comment(line: &str) -> &str {
    let mut quote = None;
    let mut escaped = false;
    for (idx, c) in line.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), _) if c == q && !escaped => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..idx],
            _ => {}
        }
        escaped = false;
    }
    line
}

/// How many `[` and `{` are still open at the end of `value`, outside strings.
fn bracket_depth(value: &str) -> i64 {
    split_top_level(value, None).1
}

/// `{ workspace = true, features = ["a"] }` as its `(key, value)` pairs; `None` for any other
/// value.
fn inline_table(value: &str) -> Option<Vec<(String, String)>> {
    let inner = value.trim().strip_prefix('{')?.strip_suffix('}')?;
    let (parts, _) = split_top_level(inner, Some(','));
    parts
        .iter()
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            let (key, value) = part.split_once('=')?;
            Some((normalize_key(key), value.trim().to_owned()))
        })
        .collect()
}

fn is_workspace_table(value: &str) -> bool {
    inline_table(value)
        .is_some_and(|fields| fields.iter().any(|(k, v)| k == "workspace" && v == "true"))
}

/// Splits `text` at `separator` outside strings and brackets, and returns the bracket depth left
/// open at its end.
fn split_top_level(text: &str, separator: Option<char>) -> (Vec<&str>, i64) {
    let (mut parts, mut start, mut depth) = (Vec::new(), 0, 0i64);
    let (mut quote, mut escaped) = (None, false);
    for (idx, c) in text.char_indices() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (Some(q), _) if c == q && !escaped => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, _) if Some(c) == separator && depth == 0 => {
                parts.push(&text[start..idx]);
                start = idx + c.len_utf8();
            }
            _ => {}
        }
        escaped = false;
    }
    parts.push(&text[start..]);
    (parts, depth)
}

#[cfg(test)]
mod tests;
