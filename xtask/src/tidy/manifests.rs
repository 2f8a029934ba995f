//! The manifests' conventions: crate names, what members inherit from the workspace, and the
//! toolchain that CI builds with (STYLE.md, Cargo hygiene). Manifests are read with `toml`;
//! a violation names the line of the key it is about.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::{Repo, Violation};

/// The package keys every member inherits from `[workspace.package]`.
const INHERITED_PACKAGE_KEYS: &[&str] = &["version", "edition", "rust-version", "license"];

/// The keys a member may add to a workspace dependency.
const DEPENDENCY_KEYS: &[&str] = &["workspace", "features", "optional", "default-features"];

/// The dependency tables of a manifest.
const DEPENDENCY_TABLES: &[&str] = &["dependencies", "dev-dependencies", "build-dependencies"];

/// A member's manifest, parsed, with its text for line numbers.
pub(crate) struct Manifest {
    pub(crate) path: PathBuf,
    text: String,
    table: Table,
}

impl Manifest {
    pub(crate) fn parse(path: &Path, text: &str) -> anyhow::Result<Manifest> {
        let table = text
            .parse::<Table>()
            .map_err(|e| anyhow::anyhow!("{}: not TOML: {e}", path.display()))?;
        Ok(Manifest {
            path: path.to_path_buf(),
            text: text.to_owned(),
            table,
        })
    }

    /// The line of the first `key` at the start of a line, after table `[header]` when given.
    fn line_of(&self, header: Option<&str>, key: &str) -> usize {
        let start = header
            .and_then(|h| self.text.lines().position(|l| l.trim() == format!("[{h}]")))
            .unwrap_or(0);
        self.text
            .lines()
            .enumerate()
            .skip(start)
            .find(|(_, l)| {
                let l = l.trim_start();
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.starts_with([' ', '=', '.']))
            })
            .map_or(start + 1, |(i, _)| i + 1)
    }
}

/// The workspace members: `libs/*`, `bins/*` and `xtask`, with the name each must have.
fn members(repo: &Repo) -> anyhow::Result<Vec<(Manifest, String)>> {
    let mut res = Vec::new();
    for path in &repo.files {
        let parts: Vec<&str> = path
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        let expected = match parts.as_slice() {
            ["libs", dir, "Cargo.toml"] => format!("bulwark-{dir}"),
            ["bins", dir, "Cargo.toml"] => (*dir).to_owned(),
            ["xtask", "Cargo.toml"] => "xtask".to_owned(),
            _ => continue,
        };
        res.push((Manifest::parse(path, &repo.read(path)?)?, expected));
    }
    Ok(res)
}

pub(super) fn crate_names(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(members(repo)?
        .iter()
        .filter_map(|(manifest, expected)| check_crate_name(manifest, expected))
        .collect())
}

pub(crate) fn check_crate_name(manifest: &Manifest, expected: &str) -> Option<Violation> {
    let name = manifest
        .table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str);
    (name != Some(expected)).then(|| {
        Violation::new(
            &manifest.path,
            manifest.line_of(Some("package"), "name"),
            format!(
                "the package is named `{expected}` (libs/<d> is `bulwark-<d>`, bins/<d> is `<d>`)"
            ),
        )
    })
}

pub(super) fn manifest_shape(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(members(repo)?
        .iter()
        .flat_map(|(manifest, _)| check_manifest_shape(manifest))
        .collect())
}

/// Whether `value` is `{ workspace = true }` (or a table saying so).
fn is_workspace(value: Option<&Value>) -> bool {
    value
        .and_then(|v| v.get("workspace"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// A member inherits the workspace's package keys and lints, and takes every dependency from
/// `[workspace.dependencies]`, adding at most features; only `bulwark-test-util` names itself,
/// to turn on its own features in its tests.
pub(crate) fn check_manifest_shape(manifest: &Manifest) -> Vec<Violation> {
    let mut res = Vec::new();
    let package = manifest.table.get("package");
    for key in INHERITED_PACKAGE_KEYS {
        if !is_workspace(package.and_then(|p| p.get(*key))) {
            res.push(Violation::new(
                &manifest.path,
                manifest.line_of(Some("package"), key),
                format!("`{key}` is inherited: `{key}.workspace = true`"),
            ));
        }
    }
    if !is_workspace(manifest.table.get("lints")) {
        res.push(Violation::new(
            &manifest.path,
            manifest.line_of(Some("lints"), "workspace"),
            "the crate uses the workspace lints: `[lints] workspace = true`",
        ));
    }
    let own_name = package.and_then(|p| p.get("name")).and_then(Value::as_str);
    // `[dependencies]` and the like, and `[target.'cfg(..)'.dependencies]`.
    let targets = manifest
        .table
        .get("target")
        .and_then(Value::as_table)
        .into_iter()
        .flat_map(Table::values);
    let scopes = std::iter::once(&manifest.table).chain(targets.filter_map(Value::as_table));
    for (scope, kind) in scopes.flat_map(|scope| DEPENDENCY_TABLES.iter().map(move |k| (scope, *k)))
    {
        let Some(deps) = scope.get(kind).and_then(Value::as_table) else {
            continue;
        };
        for (name, spec) in deps {
            let line = manifest.line_of(None, name);
            let itself = Some(name.as_str()) == own_name && kind == "dev-dependencies";
            if itself {
                continue;
            }
            if !is_workspace(Some(spec)) {
                res.push(Violation::new(
                    &manifest.path,
                    line,
                    format!(
                        "dependency `{name}` comes from [workspace.dependencies]: `{name}.workspace = true`"
                    ),
                ));
                continue;
            }
            for key in spec.as_table().into_iter().flat_map(Table::keys) {
                if !DEPENDENCY_KEYS.contains(&key.as_str()) {
                    res.push(Violation::new(
                        &manifest.path,
                        line,
                        format!(
                            "dependency `{name}` sets `{key}`: a member adds only {}",
                            DEPENDENCY_KEYS[1..].join(", ")
                        ),
                    ));
                }
            }
        }
    }
    res
}

pub(super) fn toolchain_matches_msrv(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let path = Path::new("rust-toolchain.toml");
    if !repo.files.iter().any(|file| file == path) {
        return Ok(vec![Violation::new(
            path,
            1,
            "the toolchain is pinned in rust-toolchain.toml",
        )]);
    }
    let toolchain = Manifest::parse(path, &repo.read(path)?)?;
    let workspace = Manifest::parse(
        Path::new("Cargo.toml"),
        &repo.read(Path::new("Cargo.toml"))?,
    )?;
    Ok(check_toolchain(&toolchain, &workspace)
        .into_iter()
        .collect())
}

/// `rust-toolchain.toml`'s channel is the version `[workspace.package] rust-version` names, so
/// that the MSRV is what CI builds with.
pub(crate) fn check_toolchain(toolchain: &Manifest, workspace: &Manifest) -> Option<Violation> {
    let channel_line = toolchain.line_of(Some("toolchain"), "channel");
    let Some(channel) = toolchain
        .table
        .get("toolchain")
        .and_then(|t| t.get("channel"))
        .and_then(Value::as_str)
    else {
        return Some(Violation::new(
            &toolchain.path,
            1,
            "rust-toolchain.toml pins `[toolchain] channel`",
        ));
    };
    let Some(channel) = major_minor(channel) else {
        return Some(Violation::new(
            &toolchain.path,
            channel_line,
            "the toolchain channel is a version such as \"1.95.0\"",
        ));
    };
    let msrv = workspace
        .table
        .get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("rust-version"))
        .and_then(Value::as_str)
        .and_then(major_minor);
    match msrv {
        Some(msrv) if msrv == channel => None,
        Some(msrv) => Some(Violation::new(
            &toolchain.path,
            channel_line,
            format!("the toolchain ({channel}) is [workspace.package] rust-version ({msrv})"),
        )),
        None => Some(Violation::new(
            &workspace.path,
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
