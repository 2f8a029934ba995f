//! Tests: the shipped manifest's config loads; leader election settings are checked.

use std::collections::HashMap;

use bulwark_config::Loader;

use super::Config;

const MANIFEST_CONFIG: &str =
    include_str!("../../../../manifests/injector-webhook/base/config.yaml");

fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, String> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Loader::new(&env, "BULWARK_INJECTOR_WEBHOOK_")
        .load_str(yaml, "config.yaml")
        .map_err(|e| e.to_string())
}

#[test]
fn the_manifest_config_loads() {
    let c = load(MANIFEST_CONFIG, &[]).unwrap();
    assert_eq!(c.webhook.listen.to_string(), "0.0.0.0:8443");
    assert_eq!(
        c.webhook.cert_file.to_str(),
        Some("/etc/webhook/certs/tls.crt")
    );
    assert!(c.defaults.native_sidecar);
    assert!(!c.leader_election.enabled);
}

#[test]
fn leader_election_needs_the_downward_api_values() {
    let on = [("BULWARK_INJECTOR_WEBHOOK_LEADER_ELECTION__ENABLED", "true")];
    let e = load(MANIFEST_CONFIG, &on).unwrap_err();
    assert!(e.contains("field `leader_election.namespace`"), "{e}");
    let c = load(
        MANIFEST_CONFIG,
        &[
            on[0],
            (
                "BULWARK_INJECTOR_WEBHOOK_LEADER_ELECTION__NAMESPACE",
                "bulwark-system",
            ),
            (
                "BULWARK_INJECTOR_WEBHOOK_LEADER_ELECTION__IDENTITY",
                "injector-webhook-7d9f-abcde",
            ),
        ],
    )
    .unwrap();
    assert_eq!(
        c.leader_election.identity.as_deref(),
        Some("injector-webhook-7d9f-abcde")
    );
    let e = load(
        "leader_election:\n  enabled: true\n  namespace: a\n  identity: b\n  lease_duration: 5s\n",
        &[],
    )
    .unwrap_err();
    assert!(e.contains("field `leader_election.lease_duration`"), "{e}");
}

#[test]
fn the_leader_label_must_be_a_label_key() {
    let config = |label: &str| {
        load(
            &format!(
                "leader_election:\n  enabled: true\n  namespace: a\n  identity: b\n  pod_label: {label:?}\n"
            ),
            &[],
        )
    };
    for good in [
        "keeper.security/webhook-leader",
        "leader",
        "a.b-c/x_y.z",
        "L9",
    ] {
        assert_eq!(config(good).unwrap().leader_election.pod_label, good);
    }
    for bad in [
        "",
        "-leader",
        "leader-",
        "Keeper.security/leader",
        "a/b/c",
        "x/",
        "/x",
        "a..b/x",
        &"x".repeat(64),
    ] {
        let e = config(bad).unwrap_err();
        assert!(
            e.contains("field `leader_election.pod_label`") && e.contains("is not a label key"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn defaults_errors_are_prefixed() {
    let e = load("defaults:\n  refresh_interval: 1s\n", &[]).unwrap_err();
    assert!(e.contains("field `defaults.refresh_interval`"), "{e}");
}
