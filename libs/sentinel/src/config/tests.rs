//! Tests: the seed's ConfigMap and its development overlay load; bad values name the field.

use std::collections::HashMap;

use bulwark_config::Loader;

use super::{Config, StoreKind};

const SEED: &str = include_str!("../../tests/data/seed-config.yaml");

fn load(yaml: &str) -> Result<Config, String> {
    let env = HashMap::new();
    Loader::new(&env, "BULWARK_SENTINEL_")
        .load_str(yaml, "config.yaml")
        .map_err(|e| e.to_string())
}

#[test]
fn seed_config_loads_unchanged() {
    let c = load(SEED).unwrap();
    assert_eq!(c.loki.poll_interval.get().as_secs(), 30);
    assert_eq!(c.loki.lookback.get().as_secs(), 300);
    assert_eq!(c.web.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(c.web.base_path, "/kube-sentinel");
    assert_eq!(c.remediation.max_actions_per_hour, 50);
    assert_eq!(c.remediation.excluded_namespaces.len(), 5);
    assert_eq!(c.store.kind, StoreKind::Memory);
    assert_eq!(
        c.rules_file.unwrap().to_str(),
        Some("/etc/kube-sentinel/rules.yaml")
    );
}

#[test]
fn development_overlay_loads_with_defaults() {
    let overlay = "loki:\n  url: http://loki.monitoring:3100\n  poll_interval: 10s  # Faster polling for development\n  lookback: 2m\nremediation:\n  enabled: true\n  dry_run: true  # Dry run in development\n  max_actions_per_hour: 100\n";
    let c = load(overlay).unwrap();
    assert!(c.remediation.dry_run);
    assert_eq!(c.loki.query, super::Loki::default().query);
    assert_eq!(c.loki.poll_interval.get().as_secs(), 10);
}

#[test]
fn bad_values_name_the_field() {
    let e = load("loki:\n  poll_interval: 30\n").unwrap_err();
    assert!(
        e.starts_with("config.yaml:2:") && e.contains("loki.poll_interval"),
        "{e}"
    );
    let e = load("loki:\n  poll_interval: 1m\n  lookback: 30s\n").unwrap_err();
    assert!(e.contains("field `loki.lookback`"), "{e}");
    let e = load("web:\n  listen: eight\n").unwrap_err();
    assert!(
        e.contains("web.listen") && e.contains("expected HOST:PORT"),
        "{e}"
    );
    let e = load("store:\n  type: sqlite\n").unwrap_err();
    assert!(
        e.contains("store.type") && e.contains("memory") && e.contains("postgres"),
        "{e}"
    );
    let e = load("loki:\n  url: loki:3100\n").unwrap_err();
    assert!(e.contains("field `loki.url`"), "{e}");
}

#[test]
fn loki_access_is_checked() {
    let c = load("loki:\n  tenant_id: a|b\n  username: grafana\n  password_env: LOKI_PASSWORD\n  headers:\n    X-Extra: yes\n").unwrap();
    assert_eq!(c.loki.tenant_id.as_deref(), Some("a|b"));
    let c = load("loki:\n  url: http://loki-gateway.monitoring:3100\n  headers:\n    X-Scope-OrgID: multi-tenant\n").unwrap();
    assert_eq!(c.loki.headers["X-Scope-OrgID"], "multi-tenant");
    for (yaml, field, what) in [
        (
            "loki:\n  password: hunter2\n",
            "loki.password",
            "password_env",
        ),
        ("loki:\n  username: u\n", "loki.password_env", "needed"),
        ("loki:\n  password_env: P\n", "loki.username", "needed"),
        (
            "loki:\n  username: u\n  password_env: P\n  bearer_token_env: T\n",
            "loki.bearer_token_env",
            "combined",
        ),
        (
            "loki:\n  tenant_id: a\n  headers: {X-Scope-OrgID: b}\n",
            "loki.tenant_id",
            "one of them",
        ),
        (
            "loki:\n  headers: {\"Bad Name\": b}\n",
            "loki.headers.Bad Name",
            "header name",
        ),
        ("loki:\n  limit: 6000\n", "loki.limit", "5000"),
        ("loki:\n  overlap: 10m\n", "loki.overlap", "lookback"),
        ("web:\n  base_path: /x/\n", "web.base_path", "not end"),
        (
            "store:\n  max_errors: 0\n",
            "store.max_errors",
            "at least 1",
        ),
    ] {
        let e = load(yaml).unwrap_err();
        assert!(
            e.contains(&format!("field `{field}`")) && e.contains(what),
            "{yaml}: {e}"
        );
    }
}

#[test]
fn leader_election_takes_the_seeds_future_fields_and_needs_an_identity() {
    let yaml = "remediation:\n  leader_election:\n    enabled: true\n    lease_name: kube-sentinel-leader\n    lease_namespace: kube-sentinel\n";
    let e = load(yaml).unwrap_err();
    assert!(e.contains("remediation.leader_election.identity"), "{e}");
    let c = load(&format!("{yaml}    identity: sentinel-0\n")).unwrap();
    let le = &c.remediation.leader_election;
    assert_eq!(le.lease_namespace.as_deref(), Some("kube-sentinel"));
    assert_eq!(le.lease_duration.get().as_secs(), 15);
    let e = load(&format!("{yaml}    identity: s\n    renew_deadline: 20s\n")).unwrap_err();
    assert!(e.contains("renew_deadline"), "{e}");
}

#[test]
fn web_auth_takes_one_token_source() {
    let c = load("web:\n  auth:\n    token_file: /etc/sentinel/token\n").unwrap();
    assert!(!c.web.auth.public_reads, "reads are closed unless opened");
    let e = load("web:\n  auth:\n    token_file: /t\n    token_env: T\n").unwrap_err();
    assert!(e.contains("web.auth.token_env"), "{e}");
}

#[test]
fn the_manifests_config_is_the_seeds_with_authentication() {
    let shipped = load(include_str!(
        "../../../../manifests/sentinel/base/config.yaml"
    ))
    .unwrap();
    let mut seed = load(SEED).unwrap();
    assert_eq!(
        shipped.web.auth.token_file.as_deref(),
        Some(std::path::Path::new("/etc/kube-sentinel-token/token"))
    );
    seed.web.auth = shipped.web.auth.clone();
    assert_eq!(
        shipped, seed,
        "only web.auth differs from the seed's config.yaml"
    );
}
