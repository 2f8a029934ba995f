//! The dependency graph, from `cargo metadata`: the kube layering (STYLE.md 4), and the bans
//! and licenses of `deny.toml`, checked over the resolved graph the way `cargo deny check bans
//! licenses` would (its advisories need the network, which CI does not have).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use anyhow::Context;
use cargo_metadata::{DependencyKind, MetadataCommand};
use toml::Value;

use super::{Repo, Violation};

/// The crates that talk to the API server.
const KUBE_CLIENT_CRATES: &[&str] = &["kube", "kube-client", "kube-runtime"];

const KUBE_RULE: &str =
    "only bulwark-kube, bulwark-test-util and the binaries may depend on kube (STYLE.md 4)";

/// One package of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
    /// The SPDX expression of its manifest, if any.
    pub(crate) license: Option<String>,
    /// A workspace member: its manifest, relative to the root.
    pub(crate) member: Option<String>,
}

/// The resolved dependency graph: packages, and for each the packages it depends on, with
/// whether the dependency is a dev-dependency only.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    pub(crate) packages: Vec<Package>,
    pub(crate) deps: Vec<Vec<(usize, bool)>>,
}

impl Graph {
    fn load(root: &Path) -> anyhow::Result<Graph> {
        let metadata = MetadataCommand::new()
            .manifest_path(root.join("Cargo.toml"))
            .other_options(vec!["--locked".to_owned()])
            .exec()
            .context("cargo metadata failed")?;
        let resolve = metadata
            .resolve
            .as_ref()
            .context("cargo metadata resolved no graph")?;
        let index: BTreeMap<_, _> = metadata
            .packages
            .iter()
            .enumerate()
            .map(|(i, p)| (&p.id, i))
            .collect();
        let members: BTreeSet<_> = metadata.workspace_members.iter().collect();
        let packages = metadata
            .packages
            .iter()
            .map(|p| Package {
                name: p.name.to_string(),
                version: p.version.to_string(),
                license: p.license.clone(),
                member: members.contains(&p.id).then(|| {
                    p.manifest_path
                        .strip_prefix(root)
                        .map_or_else(|_| p.manifest_path.to_string(), ToString::to_string)
                }),
            })
            .collect();
        let mut deps = vec![Vec::new(); metadata.packages.len()];
        for node in &resolve.nodes {
            let Some(&from) = index.get(&node.id) else {
                continue;
            };
            let package = &metadata.packages[from];
            for dep in &node.deps {
                let Some(&to) = index.get(&dep.pkg) else {
                    continue;
                };
                if !activated(package, &node.features, &dep.name) {
                    continue;
                }
                let dev_only = dep
                    .dep_kinds
                    .iter()
                    .all(|k| k.kind == DependencyKind::Development);
                deps[from].push((to, dev_only));
            }
        }
        Ok(Graph { packages, deps })
    }

    /// The shortest path of normal and build dependencies (and dev-dependencies of the start
    /// when `dev`) from `from` to a package other than `from` that `target` accepts, as
    /// package names.
    fn path(&self, from: usize, dev: bool, target: impl Fn(&Package) -> bool) -> Option<Vec<&str>> {
        let mut parent: BTreeMap<usize, usize> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        while let Some(at) = queue.pop_front() {
            if at != from && target(&self.packages[at]) {
                let mut path = vec![self.packages[at].name.as_str()];
                let mut step = at;
                while let Some(&up) = parent.get(&step) {
                    path.push(&self.packages[up].name);
                    step = up;
                }
                path.reverse();
                return Some(path);
            }
            for &(next, dev_only) in &self.deps[at] {
                if (dev_only && !(dev && at == from)) || next == from || parent.contains_key(&next)
                {
                    continue;
                }
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
        None
    }
}

/// Whether the dependency that `package` calls `extern_name` is built with the `features`
/// the resolve enabled. `cargo metadata` also lists optional dependencies that only a weak
/// feature (`dep?/feature`) names, which are not built (rust-lang/cargo#10801); `cargo tree`
/// leaves them out, and so do we.
fn activated(
    package: &cargo_metadata::Package,
    features: &[cargo_metadata::FeatureName],
    extern_name: &str,
) -> bool {
    let declared: Vec<_> = package
        .dependencies
        .iter()
        .filter(|d| d.rename.as_deref().unwrap_or(&d.name).replace('-', "_") == extern_name)
        .collect();
    if declared.is_empty() || declared.iter().any(|d| !d.optional) {
        return true;
    }
    declared.iter().any(|d| {
        let name = d.rename.as_deref().unwrap_or(&d.name);
        features.iter().any(|enabled| {
            enabled.as_str() == name
                || package.features.get(enabled.as_str()).is_some_and(|list| {
                    list.iter().any(|item| {
                        item.strip_prefix("dep:") == Some(name)
                            || item.split_once('/').is_some_and(|(dep, _)| dep == name)
                    })
                })
        })
    })
}

/// The workspace's crates and, for each, the workspace crates it depends on (normal and build
/// dependencies), one line per crate, sorted: the graph ARCHITECTURE.md shows.
pub(crate) fn crate_graph(graph: &Graph) -> String {
    let mut lines: Vec<String> = graph
        .packages
        .iter()
        .enumerate()
        .filter(|(_, p)| p.member.is_some())
        .map(|(i, p)| {
            let mut deps: Vec<&str> = graph.deps[i]
                .iter()
                .filter(|&&(to, dev_only)| !dev_only && graph.packages[to].member.is_some())
                .map(|&(to, _)| graph.packages[to].name.as_str())
                .collect();
            deps.sort_unstable();
            deps.dedup();
            let deps = if deps.is_empty() {
                "(none)".to_owned()
            } else {
                deps.join(", ")
            };
            format!("{:<21} {deps}", p.name)
        })
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

pub(super) fn crate_graph_documented(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let graph = crate_graph(&Graph::load(&repo.root)?);
    let path = Path::new("ARCHITECTURE.md");
    Ok(check_graph_documented(path, &repo.read(path)?, &graph)
        .into_iter()
        .collect())
}

/// ARCHITECTURE.md shows the crate graph as it is, in the first fenced block after
/// `### The crate graph` (`cargo xtask graph` prints it).
pub(crate) fn check_graph_documented(path: &Path, text: &str, graph: &str) -> Option<Violation> {
    let rule = "ARCHITECTURE.md shows the crate graph as it is: paste `cargo xtask graph` under `### The crate graph`";
    let Some(heading) = text.lines().position(|l| l == "### The crate graph") else {
        return Some(Violation::new(path, 1, rule));
    };
    let lines: Vec<&str> = text.lines().collect();
    let open = (heading..lines.len()).find(|&i| lines[i].starts_with("```"))?;
    let close = (open + 1..lines.len()).find(|&i| lines[i].starts_with("```"))?;
    let shown = lines[open + 1..close]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect::<String>();
    (shown != graph).then(|| Violation::new(path, open + 2, rule))
}

/// Prints the crate graph for ARCHITECTURE.md.
pub(crate) fn print_graph(root: &Path) -> anyhow::Result<()> {
    print!("{}", crate_graph(&Graph::load(root)?));
    Ok(())
}

/// Whether the member with `manifest` may depend on kube.
fn may_use_kube(manifest: &str) -> bool {
    ["libs/kube/", "libs/test-util/", "bins/"]
        .iter()
        .any(|dir| manifest.starts_with(dir))
}

/// Runtime crates that wire a binary's pieces and so may reach the API server, but only
/// through `bulwark-kube` (never depending on kube themselves): sentinel's remediation engine.
fn reaches_kube_through_bulwark_kube(manifest: &str) -> bool {
    manifest.starts_with("libs/sentinel-service/")
}

pub(super) fn kube_layering(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    Ok(check_kube_layering(&Graph::load(&repo.root)?))
}

/// A member that reaches a kube client crate, directly (a dev-dependency included) or through
/// normal and build dependencies, must be one that may.
pub(crate) fn check_kube_layering(graph: &Graph) -> Vec<Violation> {
    let mut res = Vec::new();
    for (i, package) in graph.packages.iter().enumerate() {
        let Some(manifest) = &package.member else {
            continue;
        };
        if may_use_kube(manifest) {
            continue;
        }
        let is_kube = |p: &Package| KUBE_CLIENT_CRATES.contains(&p.name.as_str());
        let direct = graph.deps[i]
            .iter()
            .map(|&(to, _)| &graph.packages[to])
            .find(|p| is_kube(p))
            .map(|p| vec![package.name.as_str(), p.name.as_str()]);
        let indirect = || {
            if reaches_kube_through_bulwark_kube(manifest) {
                None
            } else {
                graph.path(i, false, is_kube)
            }
        };
        if let Some(path) = direct.or_else(indirect) {
            res.push(Violation::new(
                Path::new(manifest),
                1,
                format!(
                    "`{}` depends on the kube client ({}): {KUBE_RULE}",
                    package.name,
                    path.join(" -> ")
                ),
            ));
        }
    }
    res
}

/// What `deny.toml` allows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Banned crates, why, and the crates allowed to depend on them directly (cargo-deny's
    /// `wrappers`).
    pub(crate) bans: BTreeMap<String, (String, Vec<String>)>,
    /// License identifiers allowed, such as `MIT` or `Apache-2.0 WITH LLVM-exception`.
    pub(crate) allow: BTreeSet<String>,
    /// License expressions given for crates whose manifests say none or say it wrongly.
    pub(crate) clarify: BTreeMap<String, String>,
}

impl Policy {
    pub(crate) fn parse(text: &str) -> anyhow::Result<Policy> {
        let deny: toml::Table = text.parse().context("deny.toml is not TOML")?;
        let list = |table: &str, key: &str| -> Vec<Value> {
            deny.get(table)
                .and_then(|t| t.get(key))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let str_of = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let bans = list("bans", "deny")
            .iter()
            .filter_map(|entry| match entry {
                Value::String(name) => Some((name.clone(), (String::new(), Vec::new()))),
                entry => {
                    let wrappers = entry
                        .get("wrappers")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|w| w.as_str().map(str::to_owned))
                        .collect();
                    Some((
                        str_of(entry, "crate")?,
                        (str_of(entry, "reason").unwrap_or_default(), wrappers),
                    ))
                }
            })
            .collect();
        let allow = list("licenses", "allow")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        let clarify = list("licenses", "clarify")
            .iter()
            .filter_map(|entry| Some((str_of(entry, "crate")?, str_of(entry, "expression")?)))
            .collect();
        Ok(Policy {
            bans,
            allow,
            clarify,
        })
    }
}

pub(super) fn dependency_policy(repo: &Repo) -> anyhow::Result<Vec<Violation>> {
    let policy = Policy::parse(&repo.read(Path::new("deny.toml"))?)?;
    let graph = Graph::load(&repo.root)?;
    let lock = repo.read(Path::new("Cargo.lock"))?;
    let mut res = check_dependency_policy(&policy, &graph);
    // Point at the package in Cargo.lock.
    for violation in &mut res {
        if let Some(name) = violation.rule.split('`').nth(1)
            && let Some(line) = lock.lines().position(|l| l == format!("name = \"{name}\""))
        {
            violation.line = line + 1;
        }
    }
    Ok(res)
}

/// No banned crate anywhere in the graph, and every crate that is not ours under a license
/// expression that the allowed licenses satisfy.
pub(crate) fn check_dependency_policy(policy: &Policy, graph: &Graph) -> Vec<Violation> {
    let lock = Path::new("Cargo.lock");
    let mut res = Vec::new();
    let members: Vec<usize> = (0..graph.packages.len())
        .filter(|&i| graph.packages[i].member.is_some())
        .collect();
    // Only what a workspace member reaches counts (Cargo.lock also holds packages that only
    // features we do not enable would bring).
    let mut reached: BTreeSet<usize> = members.iter().copied().collect();
    let mut queue: VecDeque<usize> = members.iter().copied().collect();
    while let Some(at) = queue.pop_front() {
        for &(next, dev_only) in &graph.deps[at] {
            if (!dev_only || graph.packages[at].member.is_some()) && reached.insert(next) {
                queue.push_back(next);
            }
        }
    }
    for (index, package) in graph.packages.iter().enumerate() {
        if !reached.contains(&index) {
            continue;
        }
        if let Some((reason, wrappers)) = policy.bans.get(&package.name) {
            let offenders: Vec<&str> = reached
                .iter()
                .filter(|&&i| graph.deps[i].iter().any(|&(d, _)| d == index))
                .map(|&i| graph.packages[i].name.as_str())
                .filter(|name| !wrappers.iter().any(|w| w == name))
                .collect();
            if !offenders.is_empty() {
                let via = members
                    .iter()
                    .find_map(|&m| graph.path(m, true, |p| p.name == package.name))
                    .map(|path| format!(" ({})", path.join(" -> ")))
                    .unwrap_or_default();
                let allowed = if wrappers.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (only {} may depend on it, not {})",
                        wrappers.join(", "),
                        offenders.join(", ")
                    )
                };
                res.push(Violation::new(
                    lock,
                    1,
                    format!(
                        "`{}` {} is banned by deny.toml{via}: {reason}{allowed}",
                        package.name, package.version
                    ),
                ));
            }
        }
        if package.member.is_some() {
            continue;
        }
        let expression = policy
            .clarify
            .get(&package.name)
            .or(package.license.as_ref());
        let Some(expression) = expression else {
            res.push(Violation::new(
                lock,
                1,
                format!(
                    "`{}` {} states no license: clarify it in deny.toml",
                    package.name, package.version
                ),
            ));
            continue;
        };
        match spdx::Expression::parse_mode(expression, spdx::ParseMode::LAX) {
            Ok(parsed) => {
                if !parsed.evaluate(|req| policy.allow.contains(&req.to_string())) {
                    res.push(Violation::new(
                        lock,
                        1,
                        format!(
                            "`{}` {} is licensed {expression}, which deny.toml does not allow",
                            package.name, package.version
                        ),
                    ));
                }
            }
            Err(error) => res.push(Violation::new(
                lock,
                1,
                format!(
                    "`{}` {} has an unreadable license expression {expression:?}: {error}",
                    package.name, package.version
                ),
            )),
        }
    }
    res
}
