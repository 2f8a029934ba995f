//! `injector-webhook explain FILE`: what the webhook would do to each pod in a manifest,
//! offline. Accepts Pods and workloads with a pod template (Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job, CronJob), in YAML or JSON, several documents per file.

use bulwark_inject::SidecarSpec;
use bulwark_inject::{Defaults, Injector, Mutation, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Why a manifest could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{origin}: not YAML or JSON: {message}")]
    Parse { origin: String, message: String },
    #[error(
        "{origin}: document {index} ({kind}) has no pod template; expected a Pod or a workload with spec.template"
    )]
    NoPod {
        origin: String,
        index: usize,
        kind: String,
    },
    // The reason is part of the message, and not a `source` too: a chain would print it twice.
    #[error("{origin}: document {index} ({name}) is denied: {reason}")]
    Denied {
        origin: String,
        index: usize,
        name: String,
        reason: PodError,
    },
    #[error("{origin}: cannot write the explanation: {message}")]
    Write { origin: String, message: String },
}

/// Why one pod could not be explained.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The webhook would deny it.
    #[error(transparent)]
    Denied(#[from] bulwark_inject::Error),
    /// The patch does not apply to the pod it was made for: a bug.
    #[error("the patch does not apply (a bug in the webhook): {0}")]
    Patch(String),
}

/// A pod as `explain` shows it: the mutation and the pod with the patch applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained<'a> {
    pub mutation: Mutation<'a>,
    /// The pod after the patch, as JSON.
    pub pod: Value,
}

/// Admits the pod `object` (an AdmissionReview's `request.object`, or a manifest's pod) as the
/// webhook would, and applies the patch with the `json-patch` crate, as the API server would.
pub fn explain_pod<'a>(object: &Value, injector: &'a Injector) -> Result<Explained<'a>, PodError> {
    let invalid = |message: String| PodError::Denied(bulwark_inject::Error::Pod(message));
    if !object.get("metadata").is_some_and(Value::is_object) {
        return Err(invalid("expected an object with metadata".to_owned()));
    }
    // A manifest has not been through the API server: check it as a whole Pod first.
    k8s_openapi::api::core::v1::Pod::deserialize(object).map_err(|e| invalid(e.to_string()))?;
    let pod = bulwark_inject::Pod::deserialize(object).map_err(|e| invalid(e.to_string()))?;
    let mutation = injector.inject(&pod)?;
    let patch: json_patch::Patch = serde_json::from_slice(&mutation.patch.to_json())
        .map_err(|e| PodError::Patch(e.to_string()))?;
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).map_err(|e| PodError::Patch(e.to_string()))?;
    Ok(Explained {
        mutation,
        pod: patched,
    })
}

/// One pod's explanation, in the order a reader wants it: which pod, what happens to it,
/// what the keeper containers will deliver, then the patch and the whole pod.
#[derive(Debug, Serialize)]
struct Shown<'a> {
    /// `Kind/name` of the document.
    source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    /// The document's position in the file, from 1.
    document: usize,
    outcome: &'static str,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    /// What the keeper containers deliver (the `keeper.security/sidecar-spec` annotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    spec: Option<&'a SidecarSpec>,
    /// The patch as JSON values (its raw JSON pieces would not print as YAML).
    patch: Value,
    /// The pod after the patch, without `managedFields` and `status`.
    pod: Value,
}

/// What `explain` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Per pod, YAML: its source and outcome first, then warnings, the spec the keeper
    /// containers get, the JSON patch and the patched pod.
    Everything,
    /// Per injected pod, one line: the spec as JSON, exactly what the keeper containers read
    /// from `BULWARK_INJECT_SPEC` (for running the sidecar by hand).
    Spec,
}

/// Explains every document of `text` (read from `origin`), as `show` says.
pub fn explain(text: &str, origin: &str, defaults: &Defaults, show: Show) -> Result<String, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Error::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let injector = Injector::new(defaults.clone());
    let mut yaml = String::new();
    for (index, doc) in docs.into_iter().enumerate().filter(|(_, d)| !d.is_null()) {
        let index = index + 1;
        let kind = doc["kind"].as_str().unwrap_or("object").to_owned();
        let name = doc["metadata"]["name"]
            .as_str()
            .or(doc["metadata"]["generateName"].as_str())
            .unwrap_or("")
            .to_owned();
        let pod = pod_of(&doc).ok_or_else(|| Error::NoPod {
            origin: origin.to_owned(),
            index,
            kind: kind.clone(),
        })?;
        let explained = explain_pod(&pod, &injector).map_err(|reason| Error::Denied {
            origin: origin.to_owned(),
            index,
            name: format!("{kind}/{name}"),
            reason,
        })?;
        if show == Show::Spec {
            // The annotation the keeper containers read, as the patch wrote it.
            if let Some(spec) = explained.pod["metadata"]["annotations"]
                [bulwark_inject::spec::SPEC_ANNOTATION]
                .as_str()
            {
                yaml.push_str(spec);
                yaml.push('\n');
            }
            continue;
        }
        let outcome = match explained.mutation.outcome {
            Outcome::Injected => "injected",
            Outcome::AlreadyInjected => "already injected: nothing to do",
            Outcome::NotRequested => "not requested: no keeper.security/inject annotation",
        };
        let mut pod = explained.pod;
        if let Some(metadata) = pod.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("managedFields");
        }
        if let Some(pod) = pod.as_object_mut() {
            pod.remove("status");
        }
        let shown = Shown {
            source: format!("{kind}/{name}"),
            namespace: doc["metadata"]["namespace"].as_str(),
            document: index,
            outcome,
            warnings: &explained.mutation.warnings,
            spec: explained.mutation.spec.as_ref(),
            patch: serde_json::from_slice(&explained.mutation.patch.to_json()).map_err(|e| {
                Error::Write {
                    origin: origin.to_owned(),
                    message: format!("the patch is not JSON (a bug in the webhook): {e}"),
                }
            })?,
            pod,
        };
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&shown).map_err(|e| Error::Write {
            origin: origin.to_owned(),
            message: e.to_string(),
        })?);
    }
    Ok(yaml)
}

/// The pod a document stands for: itself, or its pod template.
fn pod_of(doc: &Value) -> Option<Value> {
    let template = match doc["kind"].as_str()? {
        "Pod" => return Some(doc.clone()),
        "CronJob" => &doc["spec"]["jobTemplate"]["spec"]["template"],
        _ => &doc["spec"]["template"],
    };
    template.is_object().then(|| {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
        pod["metadata"] = template
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| json!({}));
        pod["spec"] = template.get("spec").cloned().unwrap_or_else(|| json!({}));
        pod
    })
}

#[cfg(test)]
mod tests;
