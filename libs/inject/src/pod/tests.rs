//! The borrowed pod reads the same values as k8s-openapi's `Pod` from the same JSON.

use std::borrow::Cow;

use k8s_openapi::api::core::v1 as k8s;
use serde_json::json;

use super::Pod;

/// A pod that sets every field the borrowed model reads, some with JSON escapes.
fn full() -> String {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web-0", "generateName": "web-", "namespace": "shop",
            "labels": {"app": "web"},
            "annotations": {"keeper.security/inject": "true", "note": "a \"quoted\" value"}
        },
        "spec": {
            "containers": [{
                "name": "app", "image": "web:1",
                "volumeMounts": [{"name": "data", "mountPath": "/var/lib/data", "readOnly": true}],
                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                "securityContext": {"runAsUser": 1000, "readOnlyRootFilesystem": true}
            }, {"name": "proxy\"q", "image": "envoy"}],
            "initContainers": [{"name": "migrate", "image": "web:1", "securityContext": {}}],
            "volumes": [
                {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
                {"name": "config", "configMap": {"name": "web"}}
            ],
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000, "runAsNonRoot": true},
            "shareProcessNamespace": true,
            "os": {"name": "linux"},
            "nodeSelector": {"kubernetes.io/os": "linux", "pool": "gp\"u"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{
                    "matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}],
                    "matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]
                }, {}]
            }}}
        }
    })
    .to_string()
}

#[test]
fn reads_what_k8s_openapi_reads() {
    let text = full();
    let ours = Pod::from_json(&text).unwrap();
    let theirs: k8s::Pod = serde_json::from_str(&text).unwrap();
    assert_eq!(
        ours.metadata.name.as_deref(),
        theirs.metadata.name.as_deref()
    );
    assert_eq!(
        ours.metadata.generate_name.as_deref(),
        theirs.metadata.generate_name.as_deref()
    );
    let annotations = ours.metadata.annotations.as_ref().map(|a| {
        a.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
    assert_eq!(annotations, theirs.metadata.annotations);
    assert!(
        ours.metadata
            .annotations
            .iter()
            .flatten()
            .any(|(k, _)| matches!(k.0, Cow::Borrowed(_))),
        "annotation keys without escapes are borrowed"
    );
    let (ours, theirs) = (ours.spec.unwrap(), theirs.spec.unwrap());
    let init = theirs.init_containers.as_deref().unwrap_or_default();
    let our_init = ours.init_containers.as_deref().unwrap_or_default();
    assert_eq!(ours.containers.len(), theirs.containers.len());
    assert_eq!(our_init.len(), init.len());
    for (o, t) in ours
        .containers
        .iter()
        .zip(&theirs.containers)
        .chain(our_init.iter().zip(init))
    {
        assert_eq!(o.name, t.name);
        let mounts = |m: Option<&Vec<k8s::VolumeMount>>| {
            m.map(|m| {
                m.iter()
                    .map(|m| (m.name.clone(), m.mount_path.clone()))
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(
            o.volume_mounts.as_ref().map(|m| m
                .iter()
                .map(|m| (m.name.to_string(), m.mount_path.to_string()))
                .collect::<Vec<_>>()),
            mounts(t.volume_mounts.as_ref())
        );
        assert_eq!(
            o.ports
                .as_ref()
                .map(|p| p.iter().map(|p| p.container_port).collect::<Vec<_>>()),
            t.ports
                .as_ref()
                .map(|p| p.iter().map(|p| p.container_port).collect::<Vec<_>>())
        );
        assert_eq!(
            o.security_context.as_ref().map(|s| s.run_as_user),
            t.security_context.as_ref().map(|s| s.run_as_user)
        );
    }
    let volumes = theirs.volumes.unwrap();
    let our_volumes = ours.volumes.unwrap();
    assert_eq!(our_volumes.len(), volumes.len());
    for (o, t) in our_volumes.iter().zip(&volumes) {
        assert_eq!(o.name, t.name);
        assert_eq!(
            o.empty_dir
                .as_ref()
                .map(|e| e.medium.as_deref().map(str::to_owned)),
            t.empty_dir.as_ref().map(|e| e.medium.clone())
        );
    }
    let security = theirs.security_context.unwrap();
    let our_security = ours.security_context.unwrap();
    assert_eq!(our_security.run_as_user, security.run_as_user);
    assert_eq!(our_security.fs_group, security.fs_group);
    assert_eq!(ours.share_process_namespace, theirs.share_process_namespace);
    assert_eq!(
        ours.os.map(|o| o.name.into_owned()),
        theirs.os.map(|o| o.name)
    );
    assert_eq!(
        ours.node_selector.map(|s| s
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()),
        theirs.node_selector
    );
    let terms = |t: &k8s::NodeSelector| {
        t.node_selector_terms
            .iter()
            .map(|t| {
                t.match_expressions.as_ref().map(|e| {
                    e.iter()
                        .map(|e| (e.key.clone(), e.operator.clone(), e.values.clone()))
                        .collect::<Vec<_>>()
                })
            })
            .collect::<Vec<_>>()
    };
    let theirs_terms = theirs
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .map(|t| terms(&t));
    let ours_terms = ours
        .affinity
        .and_then(|a| a.node_affinity)
        .and_then(|n| n.required_during_scheduling_ignored_during_execution)
        .map(|t| {
            t.node_selector_terms
                .iter()
                .map(|t| {
                    t.match_expressions.as_ref().map(|e| {
                        e.iter()
                            .map(|e| {
                                (
                                    e.key.to_string(),
                                    e.operator.to_string(),
                                    e.values
                                        .as_ref()
                                        .map(|v| v.iter().map(|v| v.to_string()).collect()),
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect::<Vec<_>>()
        });
    assert_eq!(ours_terms, theirs_terms);
}

#[test]
fn names_are_borrowed_unless_escaped() {
    let text = full();
    let pod = Pod::from_json(&text).unwrap();
    let containers = &pod.spec.as_ref().unwrap().containers;
    assert!(matches!(containers[0].name, Cow::Borrowed("app")));
    assert!(matches!(&containers[1].name, Cow::Owned(name) if name == "proxy\"q"));
}

#[test]
fn fields_we_read_must_have_their_shape() {
    for (bad, what) in [
        (
            json!({"spec": {"containers": "nope"}}),
            "invalid type: string",
        ),
        (
            json!({"spec": {"containers": [{"image": "x"}]}}),
            "missing field `name`",
        ),
        (
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}}),
            "invalid type: string",
        ),
        (
            json!({"metadata": {"annotations": {"a": 1}}}),
            "invalid type: integer",
        ),
    ] {
        let text = bad.to_string();
        let error = Pod::from_json(&text).unwrap_err().to_string();
        assert!(error.starts_with(what), "{bad}: {error}");
    }
}

#[test]
fn absent_and_null_fields_are_none() {
    let text = json!({"metadata": {"name": "x", "annotations": null}, "spec": {"containers": [{"name": "a"}], "volumes": null}}).to_string();
    let pod = Pod::from_json(&text).unwrap();
    assert_eq!(pod.metadata.annotations, None);
    let spec = pod.spec.unwrap();
    assert_eq!(spec.volumes, None);
    assert_eq!(spec.init_containers, None);
    assert_eq!(Pod::from_json("{}").unwrap(), Pod::default());
}
