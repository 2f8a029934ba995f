//! Process-level tests of `archiver`: the CLI contract, selection errors, password
//! resolution and the dry-run plan, using the seed's config file.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod pipeline;

use std::path::Path;

use bulwark_test_util::binary::{self, run_to_exit};

const EXE: &str = env!("CARGO_BIN_EXE_archiver");
/// Relative to the package root, where cargo runs tests (and the binaries they start).
const SEED_CONFIG: &str = "../../libs/archive/tests/data/seed-config.yaml";
const LISTEN: (&str, &str) = ("BULWARK_ARCHIVER_HEALTH__LISTEN", "127.0.0.1:0");

#[test]
fn cli_contract() {
    let bad = std::fs::read_to_string(SEED_CONFIG)
        .unwrap()
        .replace("batch_size: 10000", "batch_size: 0");
    binary::check_cli_contract(Path::new(EXE), "archiver", &[], &bad, "defaults.batch_size");
}

#[test]
fn dry_run_prints_the_plan() {
    let (code, out) = run_to_exit(
        Path::new(EXE),
        &[
            "--config",
            SEED_CONFIG,
            "--dry-run",
            "--database",
            "production_db",
        ],
        &[("DB_PASSWORD", "not-printed-anywhere"), LISTEN],
    );
    // The seed's database is not reachable here: the plan has the settings and says why it
    // has no estimates, and the run reports that it could not ask.
    assert_eq!(code, Some(3), "{out}");
    let plan = out
        .lines()
        .find(|l| l.starts_with("{\"database\""))
        .unwrap();
    let plan: serde_json::Value = serde_json::from_str(plan).unwrap();
    assert_eq!(plan["table"], "audit_logs");
    assert_eq!(plan["retention_days"], 90);
    assert!(plan["error"].as_str().is_some(), "{plan}");
    assert!(plan.get("rows_due_estimate").is_none(), "{plan}");
    assert!(!out.contains("not-printed-anywhere"), "{out}");
}

#[test]
fn missing_password_and_unknown_names_exit_64() {
    let (code, out) = run_to_exit(
        Path::new(EXE),
        &["--config", SEED_CONFIG, "--dry-run"],
        &[LISTEN],
    );
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains(
            "environment variable DB_PASSWORD (field `databases[0].password_env`): is not set"
        ),
        "{out}"
    );

    let (code, out) = run_to_exit(
        Path::new(EXE),
        &["--config", SEED_CONFIG, "--dry-run", "--table", "nope"],
        &[("DB_PASSWORD", "x"), LISTEN],
    );
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("--table"), "{out}");
}
