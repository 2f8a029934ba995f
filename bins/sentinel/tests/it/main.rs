//! Process-level tests of `sentinel`: the CLI contract and the service lifecycle with the
//! seed's config file.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bulwark_test_util::binary;

mod ingest;

const EXE: &str = env!("CARGO_BIN_EXE_sentinel");
const SEED_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../libs/sentinel/tests/data/seed-config.yaml"
);

#[test]
fn cli_contract() {
    binary::check_cli_contract(
        Path::new(EXE),
        "sentinel",
        &[],
        "loki:\n  poll_interval: 30\n",
        "loki.poll_interval",
    );
}

#[test]
fn serves_health_and_metrics_with_the_seed_config_then_stops_on_sigterm() {
    // The seed's rules_file is a ConfigMap path; the shipped rules stand in for it.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, bulwark_sentinel::rules::DEFAULT_RULES).unwrap();
    binary::check_service_lifecycle(
        Path::new(EXE),
        &["--config", SEED_CONFIG, "--rules", rules.to_str().unwrap()],
        &[("BULWARK_SENTINEL_WEB__LISTEN", "127.0.0.1:0")],
    );
}
