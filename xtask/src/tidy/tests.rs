//! The tidy checks run on this repository, and each check's core on small inputs that break it.

use std::path::{Path, PathBuf};

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
    crate_names,
    cargo_toml_shape,
    kube_layering,
    toolchain_matches_msrv,
    thin_main,
    no_unwrap,
    test_attrs_and_macros,
    trailing_whitespace,
    no_mod_rs,
);

#[test]
fn every_check_runs_on_the_repository() {
    let names: Vec<&str> = CHECKS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, repo::NAMES);
}

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
fn module_doc_is_required() {
    assert_eq!(
        check_module_doc(path(), "//! Does one thing.\nfn f() {}\n"),
        None
    );
    let missing = check_module_doc(path(), "// Does one thing.\nfn f() {}\n").unwrap();
    assert_eq!(missing.line, 1);
    assert!(check_module_doc(path(), "").is_some());
    assert!(check_module_doc(path(), "\n//! Late.\n").is_some());
}

#[test]
fn crate_names_follow_the_folder() {
    let manifest = Path::new("libs/config/Cargo.toml");
    let good = Toml::parse("[package]\nname = \"bulwark-config\"\n");
    assert_eq!(check_crate_name(manifest, &good, "bulwark-config"), None);
    let bad = Toml::parse("[package]\nname = \"config\"\n");
    assert_eq!(
        check_crate_name(manifest, &bad, "bulwark-config")
            .unwrap()
            .line,
        2
    );
    let unnamed = Toml::parse("[lib]\nname = \"bulwark-config\"\n");
    assert_eq!(
        check_crate_name(manifest, &unnamed, "bulwark-config")
            .unwrap()
            .line,
        1
    );
}

const GOOD_MANIFEST: &str = r#"[package]
name = "bulwark-example"
description = "An example"
version.workspace = true
edition.workspace = true
rust-version = { workspace = true }
license.workspace = true
publish.workspace = true

[lib]
doctest = false

[dependencies]
bulwark-config.workspace = true
tokio = { workspace = true, features = [
    "rt",  # A comment inside the array.
    "macros",
] }
serde = { workspace = true, default-features = false, optional = true }
jiff.workspace = true
jiff.features = ["serde"]

[target.'cfg(unix)'.dependencies]
libc.workspace = true

[dev-dependencies]
bulwark-test-util.workspace = true

[lints]
workspace = true
"#;

#[test]
fn good_manifest_passes() {
    check_lines(
        &check_manifest_shape(Path::new("Cargo.toml"), &Toml::parse(GOOD_MANIFEST)),
        &[],
    );
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
baz.features = ["x"]
tokio.workspace = true

[dependencies.qux]
workspace = true

[dev-dependencies]
tempfile = { version = "3" }
"#;
    check_lines(
        &check_manifest_shape(Path::new("Cargo.toml"), &Toml::parse(bad)),
        &[
            (1, "`version` is inherited"),
            (1, "workspace lints"),
            (3, "`edition` is inherited"),
            (8, "dependency `serde` comes from [workspace.dependencies]"),
            (9, "dependency `foo` sets `path`"),
            (9, "dependency `foo` comes from [workspace.dependencies]"),
            (10, "dependency `bar` sets `version`"),
            (11, "dependency `baz` comes from [workspace.dependencies]"),
            (14, "`[dependencies.qux]`"),
            (18, "dependency `tempfile` sets `version`"),
            (
                18,
                "dependency `tempfile` comes from [workspace.dependencies]",
            ),
        ],
    );
}

/// A crate at `dir` (`libs/x` is `bulwark-x`) whose manifest is `[package]`, its name, then `deps`.
fn crate_deps(dir: &str, may_use_kube: bool, deps: &str) -> CrateDeps {
    let name = match dir.split_once('/') {
        Some(("libs", lib)) => format!("bulwark-{lib}"),
        _ => dir.rsplit('/').next().unwrap().to_owned(),
    };
    let toml = Toml::parse(&format!("[package]\nname = \"{name}\"\n{deps}"));
    let manifest = PathBuf::from(format!("{dir}/Cargo.toml"));
    CrateDeps {
        manifest,
        name,
        may_use_kube,
        deps: toml.dependencies(),
    }
}

#[test]
fn only_allowed_crates_reach_kube() {
    let crates = [
        crate_deps("libs/kube", true, "[dependencies]\nkube.workspace = true\n"),
        crate_deps(
            "libs/sentinel",
            false,
            "[dependencies]\nserde.workspace = true\nbulwark-remedy.workspace = true\n",
        ),
        crate_deps(
            "libs/remedy",
            false,
            "[dependencies]\nbulwark-kube.workspace = true\n",
        ),
        crate_deps(
            "libs/rules",
            false,
            "[dev-dependencies]\nkube-runtime.workspace = true\n",
        ),
        crate_deps(
            "libs/archive",
            false,
            "[dependencies]\nk8s-openapi.workspace = true\n\
             [dev-dependencies]\nbulwark-kube.workspace = true\n",
        ),
        crate_deps(
            "bins/sentinel",
            true,
            "[dependencies]\nkube.workspace = true\nbulwark-kube.workspace = true\n",
        ),
    ];
    let found: Vec<String> = check_kube_layering(&crates)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    let expected = [
        "libs/sentinel/Cargo.toml:5: `bulwark-sentinel` depends on the kube client \
         (bulwark-remedy -> bulwark-kube -> kube)",
        "libs/remedy/Cargo.toml:4: `bulwark-remedy` depends on the kube client \
         (bulwark-kube -> kube)",
        "libs/rules/Cargo.toml:4: `bulwark-rules` depends on the kube client (kube-runtime)",
    ];
    for (found, expected) in found.iter().zip(expected) {
        assert!(found.starts_with(expected), "{found}");
    }
}

#[test]
fn toolchain_matches_rust_version() {
    let path = Path::new("rust-toolchain.toml");
    let workspace =
        Toml::parse("[workspace.package]\nversion = \"0.1.0\"\nrust-version = \"1.95\"\n");
    let toolchain = |channel: &str| Toml::parse(&format!("[toolchain]\nchannel = \"{channel}\"\n"));
    assert_eq!(
        check_toolchain(path, &toolchain("1.95.0"), &workspace),
        None
    );
    assert_eq!(check_toolchain(path, &toolchain("1.95"), &workspace), None);
    let behind = check_toolchain(path, &toolchain("1.94.1"), &workspace).unwrap();
    assert_eq!((behind.line, behind.rule.contains("(1.94)")), (2, true));
    assert!(check_toolchain(path, &toolchain("stable"), &workspace).is_some());
    assert!(check_toolchain(path, &Toml::parse("[toolchain]\n"), &workspace).is_some());
}

#[test]
fn main_stays_thin() {
    let path = Path::new("bins/sentinel/src/main.rs");
    assert_eq!(check_thin_main(path, &"//! Main.\n".repeat(150)), None);
    assert_eq!(
        check_thin_main(path, &"//! Main.\n".repeat(151))
            .unwrap()
            .line,
        151
    );
}

#[test]
fn unwrap_only_in_tests() {
    let text = r##"//! Example.
fn f() -> u8 { x.unwrap() }
fn g() { let s = "x.unwrap()"; let r = r#"y.unwrap()"#; }
// z.unwrap()
/* w.unwrap() */
fn h() -> u8 { z.unwrap_or(1) }
#[cfg(test)]
mod tests {
    fn t() { let c = '}'; x.unwrap(); }

    #[test]
    fn u() { y.unwrap(); }
}
#[tokio::test(flavor = "multi_thread")]
async fn t2() {
    a.unwrap();
}
fn late<'a>(s: &'a str) -> &'a str { s.parse().unwrap() }
"##;
    let rule = "no `.unwrap()` outside tests";
    check_lines(&check_no_unwrap(path(), text), &[(2, rule), (18, rule)]);
}

#[test]
fn cfg_test_modules_are_found() {
    let code =
        code_lines("#[cfg(test)]\nmod fixtures;\nmod real;\n#[cfg(test)]\nmod inline {\n}\n");
    assert_eq!(cfg_test_mod_decls(&code), ["fixtures"]);
    assert_eq!(
        child_module_path(Path::new("libs/a/src/foo.rs"), "fixtures"),
        Path::new("libs/a/src/foo/fixtures.rs")
    );
    assert_eq!(
        child_module_path(Path::new("libs/a/src/lib.rs"), "fixtures"),
        Path::new("libs/a/src/fixtures.rs")
    );
    assert!(is_test_path(Path::new("libs/a/src/foo/tests.rs")));
    assert!(is_test_path(Path::new("libs/a/tests/it/main.rs")));
    assert!(!is_test_path(Path::new("libs/a/src/testing.rs")));
}

#[test]
fn test_attributes_and_leftover_macros() {
    let text = r#"//! Example.
#[test]
#[should_panic]
fn a() {}
#[ignore]
#[ignore = ""]
#[ignore = "needs a cluster"]
#[cfg_attr(miri, ignore)]
fn b() { todo!() }
fn c() { dbg!(x); unimplemented!() }
fn d() { my_dbg!(x); let s = "todo!()"; } // dbg!(y)
#[clap(ignore_case = true)]
"#;
    check_lines(
        &check_test_attrs_and_macros(path(), text),
        &[
            (3, "no `#[should_panic]`"),
            (5, "`#[ignore]` says why"),
            (6, "`#[ignore]` says why"),
            (8, "`#[ignore]` says why"),
            (9, "no `todo!`"),
            (10, "no `unimplemented!`"),
            (10, "no `dbg!`"),
        ],
    );
}

#[test]
fn trailing_whitespace_is_found() {
    let rule = "no trailing whitespace";
    check_lines(
        &check_trailing_whitespace(path(), "a \nb\n\tc\t\n\n"),
        &[(1, rule), (3, rule)],
    );
}

#[test]
fn mod_rs_is_found() {
    let files = [
        PathBuf::from("libs/a/src/foo.rs"),
        PathBuf::from("libs/a/src/bar/mod.rs"),
    ];
    check_lines(&check_no_mod_rs(&files), &[(1, "no `mod.rs`")]);
    assert_eq!(
        check_no_mod_rs(&files)[0].path,
        Path::new("libs/a/src/bar/mod.rs")
    );
}

#[test]
fn code_lines_blank_comments_and_literals() {
    let text = r####"let a = "x // y"; // comment
let b = r#"raw "quoted" str"#; let c = '"'; let d = '\'';
let e: &'static str = br##"bytes"##; /* a /* nested */ comment
still comment */ let f = '{';
let g = "multi
line"; r#type"####;
    let code = code_lines(text);
    assert_eq!(code.len(), text.lines().count());
    for (code, original) in code.iter().zip(text.lines()) {
        assert_eq!(code.chars().count(), original.chars().count(), "{code:?}");
    }
    assert_eq!(code[0].trim_end(), r#"let a = "      ";"#);
    assert_eq!(
        code[1],
        r##"let b = r#"                "#; let c = ' '; let d = '  ';"##
    );
    assert_eq!(
        code[2].trim_end(),
        r###"let e: &'static str = br##"     "##;"###
    );
    assert_eq!(code[3].trim(), "let f = ' ';");
    assert_eq!(code[4], r#"let g = "     "#);
    assert_eq!(code[5], r#"    "; r#type"#);
}

#[test]
fn toml_reader_handles_cargo_forms() {
    let toml = Toml::parse(
        r#"# A comment.
[package]
name = "x" # Trailing comment.
keywords = [
  "a#b",
]

[ target . "cfg(unix)" . dependencies ]
"libc" = { workspace = true, features = ["extra_traits"] }
"#,
    );
    assert_eq!(unquote(&toml.get("package", "name").unwrap().value), "x");
    let keywords = toml.get("package", "keywords").unwrap();
    assert_eq!(
        (keywords.line, keywords.value.as_str()),
        (4, r#"[ "a#b", ]"#)
    );
    let deps = toml.dependencies();
    assert_eq!(deps.len(), 1);
    assert_eq!(
        (deps[0].name.as_str(), deps[0].kind, deps[0].line),
        ("libc", DepKind::Normal, 9)
    );
    assert_eq!(
        inline_table(
            &toml
                .get("target.cfg(unix).dependencies", "libc")
                .unwrap()
                .value
        )
        .unwrap(),
        [
            ("workspace".to_owned(), "true".to_owned()),
            ("features".to_owned(), r#"["extra_traits"]"#.to_owned())
        ]
    );
}

/// Every check, run through its repository walk on a small bad repository, finds exactly the one
/// violation planted for it, and nothing in the places tidy skips.
#[test]
fn every_check_fails_on_a_bad_repository() {
    let root = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
    let thin_main_limit = "//! Main.\n".repeat(MAX_MAIN_LINES + 1);
    let files = [
        (
            "Cargo.toml",
            "[workspace.package]\nrust-version = \"1.95\"\n\
             [workspace.dependencies]\nk = { package = \"kube\", version = \"5\" }\n",
        ),
        ("rust-toolchain.toml", "[toolchain]\nchannel = \"1.94.0\"\n"),
        (
            "libs/domain/Cargo.toml",
            "[package]\nname = \"domain\"\nversion.workspace = true\nedition.workspace = true\n\
             rust-version.workspace = true\nlicense.workspace = true\n\n\
             [dependencies]\nk.workspace = true\n",
        ),
        (
            "libs/domain/src/lib.rs",
            "pub fn f() -> u8 { X.unwrap() } \n#[cfg(test)]\nmod fixtures;\n#[ignore]\nfn g() {}\n",
        ),
        (
            "libs/domain/src/fixtures.rs",
            "//! Fixtures.\nfn g() { Y.unwrap(); }\n",
        ),
        ("libs/domain/src/bad/mod.rs", "//! Bad.\n"),
        ("libs/domain/tests/data/seed.yaml", "key: value \n"),
        (
            "libs/domain/fuzz/fuzz_targets/parse.rs",
            "fn main() { dbg!(1); }\n",
        ),
        (
            "bins/app/Cargo.toml",
            "[package]\nname = \"app\"\nversion.workspace = true\nedition.workspace = true\n\
             rust-version.workspace = true\nlicense.workspace = true\n\n\
             [dependencies]\nk.workspace = true\n\n[lints]\nworkspace = true\n",
        ),
        ("bins/app/src/main.rs", thin_main_limit.as_str()),
        ("target/debug/build/out.rs", "fn main() { todo!() } \n"),
    ];
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let repo = Repo::load(&root);
    let found: Vec<(&str, String)> = CHECKS
        .iter()
        .flat_map(|(name, check)| {
            let violations = check(repo.as_ref().unwrap()).unwrap();
            violations
                .into_iter()
                .map(|v| (*name, format!("{}:{}", v.path.display(), v.line)))
        })
        .collect();
    std::fs::remove_dir_all(&root).unwrap();
    let expected = [
        ("module_docs", "libs/domain/src/lib.rs:1"),
        ("crate_names", "libs/domain/Cargo.toml:2"),
        ("cargo_toml_shape", "libs/domain/Cargo.toml:1"),
        ("kube_layering", "libs/domain/Cargo.toml:9"),
        ("toolchain_matches_msrv", "rust-toolchain.toml:2"),
        ("thin_main", "bins/app/src/main.rs:151"),
        ("no_unwrap", "libs/domain/src/lib.rs:1"),
        ("test_attrs_and_macros", "libs/domain/src/lib.rs:4"),
        ("trailing_whitespace", "libs/domain/src/lib.rs:1"),
        ("no_mod_rs", "libs/domain/src/bad/mod.rs:1"),
    ];
    let expected: Vec<(&str, String)> = expected
        .iter()
        .map(|(name, at)| (*name, (*at).to_owned()))
        .collect();
    assert_eq!(found, expected);
}
