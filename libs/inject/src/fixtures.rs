//! Test fixtures: pods as the API server hands them to a webhook, built up with small steps
//! (`PodJson::deployment().with_annotation("signal", "SIGHUP")`).

use serde_json::{Map, Value, json};

use crate::annotations::PREFIX;

/// A pod as JSON, the form the webhook receives and the patch applies to.
#[derive(Debug, Clone)]
pub(crate) struct PodJson(pub(crate) Value);

impl PodJson {
    /// A pod created by a ReplicaSet: `generateName`, no `name` and no `uid` yet, one app
    /// container, and the minimal injection annotations.
    pub(crate) fn deployment() -> Self {
        PodJson(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "web-7d4b9c5f6-",
                "namespace": "shop",
                "labels": {"app": "web", "pod-template-hash": "7d4b9c5f6"},
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c5f6",
                    "uid": "9c1f6f9e-3c7b-4b4e-9d7a-1f2e3d4c5b6a", "controller": true,
                    "blockOwnerDeletion": true
                }],
                "annotations": {
                    "keeper.security/inject": "true",
                    "keeper.security/ksm-config": "keeper-auth",
                    "keeper.security/secret": "database-credentials"
                }
            },
            "spec": {
                "containers": [{
                    "name": "app",
                    "image": "registry.example.com/web:1.4.2",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"limits": {"memory": "256Mi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "imagePullPolicy": "IfNotPresent"
                }],
                "restartPolicy": "Always",
                "serviceAccountName": "web",
                "dnsPolicy": "ClusterFirst"
            }
        }))
    }

    /// A bare pod with a name and no annotations map at all.
    pub(crate) fn bare() -> Self {
        PodJson(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "debug", "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}]}
        }))
    }

    /// Sets an annotation, creating the map if needed; a key without `/` gets the prefix.
    pub(crate) fn with_annotation(mut self, key: &str, value: &str) -> Self {
        let key = if key.contains('/') {
            key.to_owned()
        } else {
            format!("{PREFIX}{key}")
        };
        self.object("/metadata")
            .entry("annotations")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("annotations are a map")
            .insert(key, Value::String(value.to_owned()));
        self
    }

    /// Removes an annotation.
    pub(crate) fn without_annotation(mut self, key: &str) -> Self {
        let key = if key.contains('/') {
            key.to_owned()
        } else {
            format!("{PREFIX}{key}")
        };
        self.object("/metadata/annotations").remove(&key);
        self
    }

    /// Sets `value` at the JSON pointer `at`, whose parent must exist.
    pub(crate) fn with(mut self, at: &str, value: Value) -> Self {
        let (parent, last) = at.rsplit_once('/').expect("a pointer with a parent");
        match self.0.pointer_mut(parent).expect("the parent exists") {
            Value::Object(map) => {
                map.insert(last.to_owned(), value);
            }
            Value::Array(items) if last == "-" => items.push(value),
            other => panic!("cannot set {at} in {other}"),
        }
        self
    }

    /// Adds a container.
    pub(crate) fn with_container(self, container: Value) -> Self {
        self.push("/spec", "containers", container)
    }

    /// Adds an init container, creating the list if needed.
    pub(crate) fn with_init_container(self, container: Value) -> Self {
        self.push("/spec", "initContainers", container)
    }

    /// Adds a volume, creating the list if needed.
    pub(crate) fn with_volume(self, volume: Value) -> Self {
        self.push("/spec", "volumes", volume)
    }

    pub(crate) fn json(&self) -> &Value {
        &self.0
    }

    fn push(mut self, parent: &str, list: &str, item: Value) -> Self {
        self.object(parent)
            .entry(list)
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("a list")
            .push(item);
        self
    }

    fn object(&mut self, at: &str) -> &mut Map<String, Value> {
        self.0
            .pointer_mut(at)
            .and_then(Value::as_object_mut)
            .expect("an object")
    }
}
