//! Every object serialises as the Kubernetes API spells it: k8s-openapi reads it back and
//! writes the same JSON, so a misspelt field (which k8s-openapi would drop) or a wrong shape
//! (which it would refuse) fails here.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::*;
use crate::plan::Plan;
use crate::{Defaults, fixtures::PodJson};

#[track_caller]
fn round_trips<T: Serialize + DeserializeOwned>(object: &impl Serialize) -> Value {
    let ours = serde_json::to_value(object).unwrap();
    let typed: T = serde_json::from_value(ours.clone()).expect("k8s-openapi reads it");
    assert_eq!(
        serde_json::to_value(typed).unwrap(),
        ours,
        "k8s-openapi reads it differently"
    );
    ours
}

fn security(kill: bool) -> SecurityContext {
    crate::plan::security_context((Some(1000), None), kill)
}

#[test]
fn volumes_are_volumes() {
    use k8s_openapi::api::core::v1::Volume as K8sVolume;
    let tmpfs = Volume {
        name: "keeper-secrets",
        source: VolumeSource::EmptyDir {
            medium: "Memory",
            size_limit: Some(Cow::Borrowed("16Mi")),
        },
    };
    assert_eq!(
        round_trips::<K8sVolume>(&tmpfs),
        json!({"name": "keeper-secrets", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
    );
    let items = || {
        [KeyToPath {
            key: "tls.crt".to_owned(),
            path: "ca.crt",
        }]
    };
    let secret = Volume {
        name: "ca",
        source: VolumeSource::Secret {
            secret_name: "corp-ca".to_owned(),
            items: items(),
        },
    };
    assert_eq!(
        round_trips::<K8sVolume>(&secret),
        json!({"name": "ca", "secret": {"secretName": "corp-ca", "items": [{"key": "tls.crt", "path": "ca.crt"}]}})
    );
    let config_map = Volume {
        name: "ca",
        source: VolumeSource::ConfigMap {
            name: "corp-ca".to_owned(),
            items: items(),
        },
    };
    assert_eq!(
        round_trips::<K8sVolume>(&config_map),
        json!({"name": "ca", "configMap": {"name": "corp-ca", "items": [{"key": "tls.crt", "path": "ca.crt"}]}})
    );
}

#[test]
fn security_contexts_and_resources_are_what_kubernetes_reads() {
    use k8s_openapi::api::core::v1::{ResourceRequirements, SecurityContext as K8sSecurity};
    let with_kill = round_trips::<K8sSecurity>(&security(true));
    assert_eq!(
        with_kill["capabilities"],
        json!({"add": ["KILL"], "drop": ["ALL"]})
    );
    let without = round_trips::<K8sSecurity>(&security(false));
    assert_eq!(without["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(without["runAsUser"], 1000);
    assert_eq!(without.get("runAsGroup"), None);
    let resources = Resources {
        limits: Quantities {
            cpu: None,
            memory: Some(Cow::Borrowed("128Mi")),
        },
        requests: Quantities {
            cpu: None,
            memory: None,
        },
    };
    assert_eq!(
        round_trips::<ResourceRequirements>(&resources),
        json!({"limits": {"memory": "128Mi"}})
    );
}

#[test]
fn the_keeper_containers_are_containers() {
    use k8s_openapi::api::core::v1::Container as K8sContainer;
    let defaults = Defaults {
        args: vec!["--log-level=debug".to_owned()],
        ..Defaults::default()
    };
    for annotations in [
        &[][..],
        &[("native-sidecar", "false"), ("ca-cert-secret", "corp-ca")],
        &[
            ("auth-method", "gcp-secret-manager"),
            ("gcp-secret-id", "projects/p/secrets/s"),
        ],
    ] {
        let mut pod = PodJson::deployment();
        for (k, v) in annotations {
            pod = pod.with_annotation(k, v);
        }
        if annotations.iter().any(|(k, _)| *k == "auth-method") {
            pod = pod.without_annotation("ksm-config");
        }
        let text = pod.json().to_string();
        let pod = crate::Pod::from_json(&text).unwrap();
        let request = crate::annotations::parse_pairs(
            pod.metadata
                .annotations
                .iter()
                .flatten()
                .map(|(k, v)| (&**k, &**v)),
        )
        .unwrap()
        .unwrap();
        let injector = crate::Injector::new(defaults.clone());
        let plan = Plan::new(pod.spec.as_ref().unwrap(), request, &injector).unwrap();
        let containers = plan.init_containers.iter().chain(&plan.sidecar);
        for container in containers {
            round_trips::<K8sContainer>(container);
        }
    }
}
