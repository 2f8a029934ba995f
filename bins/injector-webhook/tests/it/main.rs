//! Process-level tests of `injector-webhook`: the CLI contract, the service lifecycle,
//! admission over real HTTPS with certificate rotation, leader election and `explain`.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admission;
mod election;

use std::path::Path;

use bulwark_test_util::binary;
use bulwark_test_util::tls::TestCa;

const EXE: &str = env!("CARGO_BIN_EXE_injector-webhook");

/// A serving certificate for `localhost` written into `dir`, and the environment that points
/// the webhook at it and at free loopback ports.
fn env_for(dir: &Path, ca: &TestCa) -> Vec<(String, String)> {
    let (cert, key) = ca
        .issue(&["localhost", "127.0.0.1"])
        .unwrap()
        .write(dir)
        .unwrap();
    [
        (
            "BULWARK_INJECTOR_WEBHOOK_HEALTH__LISTEN",
            "127.0.0.1:0".to_owned(),
        ),
        (
            "BULWARK_INJECTOR_WEBHOOK_WEBHOOK__LISTEN",
            "127.0.0.1:0".to_owned(),
        ),
        (
            "BULWARK_INJECTOR_WEBHOOK_WEBHOOK__CERT_FILE",
            cert.display().to_string(),
        ),
        (
            "BULWARK_INJECTOR_WEBHOOK_WEBHOOK__KEY_FILE",
            key.display().to_string(),
        ),
        (
            "BULWARK_INJECTOR_WEBHOOK_WEBHOOK__CERT_RELOAD_INTERVAL",
            "1s".to_owned(),
        ),
        (
            "BULWARK_INJECTOR_WEBHOOK_WEBHOOK__SHUTDOWN_DELAY",
            "0s".to_owned(),
        ),
        (
            "BULWARK_INJECTOR_WEBHOOK_DEFAULTS__KSM_CONFIG",
            "keeper-auth".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn as_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn cli_contract() {
    binary::check_cli_contract(
        Path::new(EXE),
        "injector-webhook",
        &[],
        "defaults:\n  image_pull_policy: Sometimes\n",
        "defaults.image_pull_policy",
    );
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_for(dir.path(), &TestCa::new("test").unwrap());
    binary::check_service_lifecycle(Path::new(EXE), &[], &as_refs(&env));
}

#[test]
fn explain_prints_the_patch_and_the_mutated_pod() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("pod.yaml");
    std::fs::write(&manifest, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    keeper.security/inject: \"true\"\n    keeper.security/secret: db\n    keeper.security/ksm-config: keeper-auth\nspec:\n  containers:\n    - name: app\n      image: nginx\n").unwrap();
    let (code, out) = binary::run_to_exit(
        Path::new(EXE),
        &["explain", manifest.to_str().unwrap()],
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("outcome: injected")
            && out.contains("keeper-secrets-init")
            && out.contains("op: add"),
        "{out}"
    );
    let (code, out) = binary::run_to_exit(Path::new(EXE), &["explain", "/nonexistent.yaml"], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cannot read /nonexistent.yaml"), "{out}");

    // A denial is said once, not once more by the error chain.
    let denied = dir.path().join("denied.yaml");
    std::fs::write(&denied, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  annotations:\n    keeper.security/inject: \"true\"\n    keeper.security/secret: db\n    keeper.security/ksm-config: keeper-auth\n    keeper.security/init-only: perhaps\nspec:\n  containers:\n    - name: app\n      image: nginx\n").unwrap();
    let (code, out) =
        binary::run_to_exit(Path::new(EXE), &["explain", denied.to_str().unwrap()], &[]);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(
        out.matches("invalid value \\\"perhaps\\\"").count(),
        1,
        "{out}"
    );
}

#[test]
fn explain_on_a_terminal_prints_errors_as_text() {
    // `script` (util-linux) runs the command on a pseudo-terminal, as a person would.
    let (code, out) = binary::run_to_exit(
        Path::new("script"),
        &[
            "--quiet",
            "--return",
            "--command",
            &format!("{EXE} explain /nonexistent.yaml"),
            "/dev/null",
        ],
        &[],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cannot read /nonexistent.yaml"), "{out}");
    assert!(!out.contains("{\"ts\""), "JSON on a terminal: {out}");
}
