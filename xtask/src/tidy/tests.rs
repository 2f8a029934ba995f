//! The tidy checks run on this repository, and each check's core on small inputs that break it.

use std::path::Path;

use super::deps::{Graph, Package, Policy, check_dependency_policy, check_kube_layering};
use super::manifests::{Manifest, check_crate_name, check_manifest_shape, check_toolchain};
use super::*;

/// Runs one check on this repository and fails with every violation as `path:line: rule`.
fn check_repo(name: &str) {
    let (_, check) = CHECKS.iter().find(|(n, _)| *n == name).unwrap();
    let repo = Repo::load(crate::project_root()).unwrap();
    let violations = check(&repo).unwrap();
    let list: Vec<String> = violations.iter().map(ToString::to_string).collect();
    assert!(
        list.is_empty(),
        "tidy::{name}: {} violations\n{}\n",
        list.len(),
        list.join("\n")
    );
}

macro_rules! repo_checks {
    ($($name:ident),* $(,)?) => {
        /// One test per check, so that `cargo test` names the rule that broke.
        mod repo {
            pub(super) const NAMES: &[&str] = &[$(stringify!($name)),*];
            $(
                #[test]
                fn $name() {
                    super::check_repo(stringify!($name));
                }
            )*
        }
    };
}

repo_checks!(
    module_docs,
    thin_main,
    file_size,
    no_should_panic,
    fixture_paths,
    trailing_whitespace,
    crate_names,
    manifest_shape,
    toolchain_matches_msrv,
    kube_layering,
    dependency_policy,
    crate_graph_documented,
);

#[test]
fn every_check_runs_on_the_repository() {
    let names: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, repo::NAMES);
}

/// Checks the violations' lines and that each rule mentions what is expected.
#[track_caller]
fn check_lines(violations: &[Violation], expected: &[(usize, &str)]) {
    let actual: Vec<(usize, &str)> = violations
        .iter()
        .map(|v| (v.line, v.rule.as_str()))
        .collect();
    assert_eq!(actual.len(), expected.len(), "{actual:#?}");
    for ((line, rule), (expected_line, expected_rule)) in actual.iter().zip(expected) {
        assert_eq!(line, expected_line, "{actual:#?}");
        assert!(
            rule.contains(expected_rule),
            "`{rule}` does not mention `{expected_rule}`"
        );
    }
}

fn path() -> &'static Path {
    Path::new("libs/example/src/lib.rs")
}

#[test]
fn violations_print_path_line_and_rule() {
    let violation = Violation::new(path(), 7, "no trailing whitespace");
    assert_eq!(
        violation.to_string(),
        "libs/example/src/lib.rs:7: no trailing whitespace"
    );
}

#[test]
fn text_checks() {
    assert_eq!(
        check_module_doc(path(), "//! Does one thing.\nfn f() {}\n"),
        None
    );
    assert_eq!(
        check_module_doc(path(), "// Does one thing.\n")
            .unwrap()
            .line,
        1
    );
    assert!(check_module_doc(path(), "\n//! Late.\n").is_some());

    let main = Path::new("bins/x/src/main.rs");
    assert_eq!(check_thin_main(main, &"\n".repeat(MAX_MAIN_LINES)), None);
    assert_eq!(
        check_thin_main(main, &"\n".repeat(MAX_MAIN_LINES + 1))
            .unwrap()
            .line,
        MAX_MAIN_LINES + 1
    );
    assert_eq!(
        check_file_size(path(), &"x\n".repeat(MAX_SOURCE_LINES)),
        None
    );
    assert!(check_file_size(path(), &"x\n".repeat(MAX_SOURCE_LINES + 1)).is_some());

    check_lines(
        &check_no_should_panic(
            path(),
            "#[test]\n    #[should_panic(expected = \"x\")]\nfn t() {}\n// #[should_panic] in a comment\n",
        ),
        &[(2, "no #[should_panic]")],
    );
    check_lines(
        &check_fixture_paths(
            path(),
            concat!(
                "// env!(\"CARGO_MANIFEST",
                "_DIR\") in a comment\nlet d = env!(\"CARGO_MANIFEST",
                "_DIR\");\n"
            ),
        ),
        &[(2, "no compile-time CARGO_MANIFEST_DIR")],
    );
    assert!(
        check_fixture_paths(
            Path::new("libs/log/build.rs"),
            concat!("env!(\"CARGO_MANIFEST", "_DIR\")")
        )
        .is_empty()
    );
    check_lines(
        &check_trailing_whitespace(path(), "a\nb \nc\t\n"),
        &[(2, "trailing"), (3, "trailing")],
    );
}

#[test]
fn the_tests_paths_are_exempt_from_the_size_limit() {
    for exempt in [
        "libs/a/src/x/tests.rs",
        "libs/a/tests/it/main.rs",
        "bins/b/benches/x.rs",
        "libs/webhook/fuzz/fuzz_targets/admission.rs",
        "libs/inject/src/fixtures.rs",
        "libs/test-util/src/kube_api/store.rs",
    ] {
        assert!(is_test_path(Path::new(exempt)), "{exempt}");
    }
    assert!(!is_test_path(Path::new("libs/a/src/tester.rs")));
}

fn manifest(text: &str) -> Manifest {
    Manifest::parse(Path::new("libs/example/Cargo.toml"), text).unwrap()
}

#[test]
fn crate_names_follow_the_folder() {
    let good = manifest("[package]\nname = \"bulwark-config\"\n");
    assert!(check_crate_name(&good, "bulwark-config").is_none());
    let bad = manifest("[package]\nname = \"config\"\n");
    assert_eq!(check_crate_name(&bad, "bulwark-config").unwrap().line, 2);
}

const GOOD_MANIFEST: &str = r#"[package]
name = "bulwark-example"
description = "An example"
version.workspace = true
edition.workspace = true
rust-version = { workspace = true }
license.workspace = true
publish.workspace = true

[dependencies]
bulwark-config.workspace = true
tokio = { workspace = true, features = [
    "rt",  # A comment inside the array.
    "macros",
] }
serde = { workspace = true, default-features = false, optional = true }

[target.'cfg(unix)'.dependencies]
libc.workspace = true

[dev-dependencies]
bulwark-example = { path = ".", features = ["all"] }

[lints]
workspace = true
"#;

#[test]
fn a_manifest_that_inherits_everything_passes() {
    check_lines(&check_manifest_shape(&manifest(GOOD_MANIFEST)), &[]);
}

#[test]
fn manifest_shape_is_enforced() {
    let bad = r#"[package]
name = "bulwark-example"
edition = "2021"
rust-version.workspace = true
license.workspace = true

[dependencies]
serde = "1"
foo = { path = "../foo" }
bar = { workspace = true, version = "1" }
tokio.workspace = true

[target.'cfg(unix)'.dependencies]
libc = "0.2"
"#;
    check_lines(
        &check_manifest_shape(&manifest(bad)),
        &[
            (1, "`version` is inherited"),
            (3, "`edition` is inherited"),
            (1, "workspace lints"),
            (10, "dependency `bar` sets `version`"),
            (9, "dependency `foo` comes from [workspace.dependencies]"),
            (8, "dependency `serde` comes from [workspace.dependencies]"),
            (14, "dependency `libc` comes from [workspace.dependencies]"),
        ],
    );
}

#[test]
fn the_toolchain_is_the_msrv() {
    let workspace = Manifest::parse(
        Path::new("Cargo.toml"),
        "[workspace.package]\nrust-version = \"1.95\"\n",
    )
    .unwrap();
    let toolchain = |channel: &str| {
        Manifest::parse(
            Path::new("rust-toolchain.toml"),
            &format!("[toolchain]\nchannel = \"{channel}\"\n"),
        )
        .unwrap()
    };
    assert!(check_toolchain(&toolchain("1.95.0"), &workspace).is_none());
    assert_eq!(
        check_toolchain(&toolchain("1.94.1"), &workspace)
            .unwrap()
            .line,
        2
    );
    assert!(check_toolchain(&toolchain("stable"), &workspace).is_some());
}

fn package(name: &str, license: Option<&str>, member: Option<&str>) -> Package {
    Package {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        license: license.map(str::to_owned),
        member: member.map(str::to_owned),
    }
}

/// `packages` and the edges `(from, to, dev-only)` between them, by index.
fn graph(packages: Vec<Package>, edges: &[(usize, usize, bool)]) -> Graph {
    let mut deps = vec![Vec::new(); packages.len()];
    for &(from, to, dev) in edges {
        deps[from].push((to, dev));
    }
    Graph { packages, deps }
}

#[test]
fn only_some_crates_reach_kube() {
    let g = graph(
        vec![
            package("bulwark-sentinel", None, Some("libs/sentinel/Cargo.toml")),
            package("bulwark-kube", None, Some("libs/kube/Cargo.toml")),
            package("kube", Some("Apache-2.0"), None),
            package("bulwark-agent", None, Some("libs/agent/Cargo.toml")),
            package("sentinel", None, Some("bins/sentinel/Cargo.toml")),
        ],
        &[(0, 1, false), (1, 2, false), (3, 1, true), (4, 1, false)],
    );
    check_lines(
        &check_kube_layering(&g),
        &[(1, "bulwark-sentinel -> bulwark-kube -> kube")],
    );
    // A dev-dependency of a dev-dependency does not count; a direct one does.
    let g = graph(
        vec![
            package("bulwark-agent", None, Some("libs/agent/Cargo.toml")),
            package("kube", Some("Apache-2.0"), None),
        ],
        &[(0, 1, true)],
    );
    check_lines(&check_kube_layering(&g), &[(1, "bulwark-agent -> kube")]);
}

#[test]
fn banned_crates_and_licenses_are_refused() {
    let policy = Policy::parse(
        r#"
[licenses]
allow = ["MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "ISC"]
[[licenses.clarify]]
crate = "ring"
expression = "Apache-2.0 AND ISC"
license-files = []
[bans]
deny = [{ crate = "reqwest", reason = "a second TLS stack" }, "openssl"]
"#,
    )
    .unwrap();
    let g = graph(
        vec![
            package("bulwark-storage", None, Some("libs/storage/Cargo.toml")),
            package("object_store", Some("MIT OR Apache-2.0"), None),
            package("reqwest", Some("MIT OR Apache-2.0"), None),
            package("ring", None, None),
            package("wasi", Some("Apache-2.0 WITH LLVM-exception OR MIT"), None),
            package("gpl-thing", Some("GPL-3.0-only"), None),
            package("unknown", None, None),
            package("old-style", Some("MIT/Apache-2.0"), None),
            package("openssl", Some("Apache-2.0"), None),
            // Locked but reached by nothing: not checked.
            package("unreached", Some("GPL-3.0-only"), None),
        ],
        &[
            (0, 1, false),
            (1, 2, false),
            (0, 3, false),
            (0, 4, false),
            (0, 5, false),
            (0, 6, false),
            (0, 7, false),
            (0, 8, false),
        ],
    );
    check_lines(
        &check_dependency_policy(&policy, &g),
        &[
            (
                1,
                "`reqwest` 1.0.0 is banned by deny.toml (bulwark-storage -> object_store -> reqwest): a second TLS stack",
            ),
            (1, "`gpl-thing` 1.0.0 is licensed GPL-3.0-only"),
            (1, "`unknown` 1.0.0 states no license"),
            (1, "`openssl` 1.0.0 is banned by deny.toml"),
        ],
    );
}

#[test]
fn wrappers_alone_may_depend_on_a_banned_crate() {
    let policy = Policy::parse(
        r#"
[licenses]
allow = ["MIT"]
[bans]
deny = [{ crate = "sigstore", reason = "release tooling", wrappers = ["xtask"] }]
"#,
    )
    .unwrap();
    let g = graph(
        vec![
            package("xtask", None, Some("xtask/Cargo.toml")),
            package("sigstore", Some("MIT"), None),
            package("sentinel", None, Some("bins/sentinel/Cargo.toml")),
        ],
        &[(0, 1, false)],
    );
    check_lines(&check_dependency_policy(&policy, &g), &[]);
    let g = graph(
        vec![
            package("xtask", None, Some("xtask/Cargo.toml")),
            package("sigstore", Some("MIT"), None),
            package("sentinel", None, Some("bins/sentinel/Cargo.toml")),
        ],
        &[(0, 1, false), (2, 1, false)],
    );
    check_lines(
        &check_dependency_policy(&policy, &g),
        &[(
            1,
            "`sigstore` 1.0.0 is banned by deny.toml (xtask -> sigstore): release tooling (only xtask may depend on it, not sentinel)",
        )],
    );
}

#[test]
fn the_documented_graph_is_the_real_one() {
    let g = graph(
        vec![
            package("bulwark-b", None, Some("libs/b/Cargo.toml")),
            package("bulwark-a", None, Some("libs/a/Cargo.toml")),
            package("serde", Some("MIT"), None),
        ],
        &[(0, 1, false), (0, 2, false), (1, 0, true)],
    );
    let shown = super::deps::crate_graph(&g);
    assert_eq!(
        shown,
        "bulwark-a             (none)\nbulwark-b             bulwark-a\n"
    );
    let doc = format!("# A\n\n### The crate graph\n\ntext\n\n```\n{shown}```\n");
    let path = Path::new("ARCHITECTURE.md");
    assert!(super::deps::check_graph_documented(path, &doc, &shown).is_none());
    let stale = doc.replace("(none)", "bulwark-b");
    assert_eq!(
        super::deps::check_graph_documented(path, &stale, &shown)
            .unwrap()
            .line,
        8
    );
}
