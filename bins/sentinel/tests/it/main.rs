//! Process-level tests of `sentinel`: the CLI contract and the service lifecycle with the
//! seed's config file.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use bulwark_test_util::binary;
use bulwark_test_util::kube_api::FakeKube;

mod dashboard;
mod ingest;
mod remediate;

const EXE: &str = env!("CARGO_BIN_EXE_sentinel");
/// Relative to the package root, where cargo runs tests (and the binaries they start).
const SEED_CONFIG: &str = "../../libs/sentinel/tests/data/seed-config.yaml";

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

#[tokio::test(flavor = "multi_thread")]
async fn serves_health_and_metrics_with_the_seed_config_then_stops_on_sigterm() {
    // The seed's rules_file is a ConfigMap path; the shipped rules stand in for it. The seed
    // enables remediation, which needs an API server: the fake one, through a kubeconfig.
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, bulwark_sentinel::rules::DEFAULT_RULES).unwrap();
    let kube = FakeKube::start().await.unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path(), "kube-sentinel").unwrap();
    let kubeconfig = kubeconfig.to_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        binary::check_service_lifecycle(
            Path::new(EXE),
            &["--config", SEED_CONFIG, "--rules", rules.to_str().unwrap()],
            &[
                ("BULWARK_SENTINEL_WEB__LISTEN", "127.0.0.1:0"),
                ("BULWARK_SENTINEL_KUBERNETES__IN_CLUSTER", "false"),
                ("BULWARK_SENTINEL_KUBERNETES__KUBECONFIG", &kubeconfig),
            ],
        );
    })
    .await
    .unwrap();
}

#[test]
fn remediation_enabled_without_an_api_server_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, bulwark_sentinel::rules::DEFAULT_RULES).unwrap();
    let (code, out) = binary::run_to_exit(
        Path::new(EXE),
        &["--config", SEED_CONFIG, "--rules", rules.to_str().unwrap()],
        &[
            ("BULWARK_SENTINEL_WEB__LISTEN", "127.0.0.1:0"),
            ("BULWARK_SENTINEL_KUBERNETES__IN_CLUSTER", "false"),
            (
                "BULWARK_SENTINEL_KUBERNETES__KUBECONFIG",
                "/nonexistent/kubeconfig",
            ),
        ],
    );
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("remediation is enabled but the Kubernetes API is out of reach")
            && out.contains("/nonexistent/kubeconfig"),
        "{out}"
    );
}
