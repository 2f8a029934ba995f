//! Tests for offline explanation.

use serde_json::Value;

use super::{Error, Show, explain};

fn defaults() -> bulwark_inject::Defaults {
    bulwark_inject::Defaults {
        ksm_config: Some("keeper-auth".into()),
        ..Default::default()
    }
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      managedFields:
        - manager: kubectl
          operation: Update
      annotations:
        keeper.security/inject: "true"
        keeper.security/secret: db-credentials
    spec:
      containers:
        - name: app
          image: nginx
---
apiVersion: v1
kind: Pod
metadata:
  name: plain
spec:
  containers:
    - name: app
      image: nginx
"#;

#[test]
fn explains_workload_templates_and_pods() {
    let yaml = explain(DEPLOYMENT, "app.yaml", &defaults(), Show::Everything).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&yaml).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["source"], "Deployment/web");
    assert_eq!(docs[0]["outcome"], "injected");
    let patch = docs[0]["patch"].as_array().unwrap();
    assert_eq!(
        patch[0]["path"],
        "/metadata/annotations/keeper.security~1injected"
    );
    assert_eq!(patch[0]["value"], "true", "{yaml}");
    assert!(!yaml.contains("RawValue"), "{yaml}");
    assert_eq!(
        docs[0]["pod"]["metadata"]["annotations"]["keeper.security/injected"],
        "true"
    );
    let containers = docs[0]["pod"]["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(containers[0]["name"], "keeper-secrets-init");
    // The pod and its outcome come first; the spec is YAML, not a JSON string.
    let first: Vec<&str> = yaml.lines().take(5).collect();
    assert_eq!(
        first,
        [
            "---",
            "source: Deployment/web",
            "namespace: shop",
            "document: 1",
            "outcome: injected"
        ],
        "{yaml}"
    );
    assert_eq!(
        docs[0]["spec"]["secrets"][0]["source"]["record"]["name"],
        "db-credentials"
    );
    assert_eq!(docs[0]["spec"]["mountPath"], "/keeper/secrets");
    assert!(
        docs[0]["pod"]["metadata"].get("managedFields").is_none(),
        "{yaml}"
    );
    assert_eq!(docs[1]["source"], "Pod/plain");
    assert!(docs[1].get("spec").is_none(), "{yaml}");
    assert!(
        docs[1]["outcome"]
            .as_str()
            .unwrap()
            .starts_with("not requested")
    );
}

#[test]
fn the_spec_alone_is_what_the_keeper_containers_read() {
    let everything = explain(DEPLOYMENT, "app.yaml", &defaults(), Show::Everything).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&everything).unwrap();
    let specs = explain(DEPLOYMENT, "app.yaml", &defaults(), Show::Spec).unwrap();
    // One line per injected pod (the plain Pod is not injected).
    assert_eq!(specs.lines().count(), 1, "{specs}");
    assert_eq!(
        specs.trim_end(),
        docs[0]["pod"]["metadata"]["annotations"]["keeper.security/sidecar-spec"]
    );
    let spec = bulwark_inject::SidecarSpec::from_json(specs.trim_end()).unwrap();
    assert_eq!(spec.mount_path, "/keeper/secrets");
}

#[test]
fn errors_name_the_document() {
    let bad = DEPLOYMENT.replace(
        "db-credentials",
        "db-credentials\n        keeper.security/init-only: perhaps",
    );
    let e = explain(&bad, "app.yaml", &defaults(), Show::Everything).unwrap_err();
    assert!(matches!(e, Error::Denied { index: 1, .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with("app.yaml: document 1 (Deployment/web) is denied"),
        "{e}"
    );
    let e = explain(
        "kind: ConfigMap\ndata: {}\n",
        "cm.yaml",
        &defaults(),
        Show::Everything,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("document 1 (ConfigMap) has no pod template"),
        "{e}"
    );
    assert!(matches!(
        explain("a: [", "x.yaml", &defaults(), Show::Everything),
        Err(Error::Parse { .. })
    ));
}
