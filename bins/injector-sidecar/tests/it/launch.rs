//! The keeper init container as the webhook writes it, started as the kubelet would start it:
//! its arguments, and its environment resolved from the pod (downward API references to the
//! spec annotation, the pod's name and namespace) and from the KSM configuration Secret. Only
//! the volumes are moved: the shared volume and the CA volume become directories of the test.

use std::path::Path;

use bulwark_test_util::binary;
use bulwark_test_util::keeper::{self, FakeKeeper};
use serde_json::{Value, json};

use super::{EXE, PASSWORD, assert_no_secrets};

/// The value of one of `container`'s environment variables as the kubelet resolves it.
fn resolve(pod: &Value, secret_config: &str, var: &Value) -> String {
    if let Some(value) = var["value"].as_str() {
        return value.to_owned();
    }
    if let Some(path) = var
        .pointer("/valueFrom/fieldRef/fieldPath")
        .and_then(Value::as_str)
    {
        if let Some(annotation) = path
            .strip_prefix("metadata.annotations['")
            .and_then(|rest| rest.strip_suffix("']"))
        {
            return pod["metadata"]["annotations"][annotation]
                .as_str()
                .unwrap_or_default()
                .to_owned();
        }
        return match path {
            "metadata.name" => "web-7d4b9c-x2x8k".to_owned(),
            "metadata.namespace" => "shop".to_owned(),
            other => panic!("a field the test does not resolve: {other}"),
        };
    }
    let secret = &var["valueFrom"]["secretKeyRef"];
    assert_eq!(secret["name"], "keeper-auth", "{var}");
    assert_eq!(secret["key"], "config", "{var}");
    secret_config.to_owned()
}

#[test]
fn the_webhook_s_init_container_delivers() {
    let keeper = FakeKeeper::start().unwrap();
    keeper
        .set_record(keeper::Record::login("db", "app", PASSWORD))
        .unwrap();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "web-7d4b9c-",
            "namespace": "shop",
            "annotations": {
                "keeper.security/inject": "true",
                "keeper.security/ksm-config": "keeper-auth",
                "keeper.security/secret": "db",
                "keeper.security/secret-password": "db/field/password:/keeper/secrets/db-password",
                "keeper.security/ca-cert-secret": "fake-keeper-ca"
            }
        },
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    });
    let text = pod.to_string();
    let injector = bulwark_inject::Injector::new(bulwark_inject::Defaults::default());
    let mutation = injector
        .inject(&bulwark_inject::Pod::from_json(&text).unwrap())
        .unwrap();
    let ops: json_patch::Patch = serde_json::from_slice(&mutation.patch.to_json()).unwrap();
    let mut patched = pod.clone();
    json_patch::patch(&mut patched, &ops).unwrap();
    let init = patched["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == bulwark_inject::INIT_CONTAINER)
        .unwrap()
        .clone();

    // The volumes: the tmpfs and the CA Secret's key, here as directories.
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let ca = dir.path().join("ca");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::create_dir(&ca).unwrap();
    std::fs::rename(keeper.write_ca(&ca).unwrap(), ca.join("ca.crt")).unwrap();
    let mounts: Vec<(String, String)> = init["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let to = if m["name"] == bulwark_inject::VOLUME {
                &secrets
            } else {
                &ca
            };
            (
                m["mountPath"].as_str().unwrap().to_owned(),
                to.display().to_string(),
            )
        })
        .collect();

    let config = keeper.token_config(&keeper.one_time_token()).to_string();
    let mut env: Vec<(String, String)> = init["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|var| {
            let mut value = resolve(&patched, &config, var);
            for (from, to) in &mounts {
                value = value.replace(from.as_str(), to);
            }
            (var["name"].as_str().unwrap().to_owned(), value)
        })
        .collect();
    env.push((
        "BULWARK_INJECTOR_SIDECAR_HEALTH__LISTEN".to_owned(),
        "127.0.0.1:0".to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let args: Vec<&str> = init["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();

    let (code, log) = binary::run_to_exit(Path::new(EXE), &args, &env);
    assert_eq!(code, Some(0), "{log}");
    assert_no_secrets(&log);
    let db: Value =
        serde_json::from_str(&std::fs::read_to_string(secrets.join("db.json")).unwrap()).unwrap();
    assert_eq!(db["password"], PASSWORD);
    assert_eq!(
        std::fs::read_to_string(secrets.join("db-password")).unwrap(),
        PASSWORD
    );
    assert!(
        log.contains("web-7d4b9c-x2x8k"),
        "the pod's name is not logged:\n{log}"
    );
}
