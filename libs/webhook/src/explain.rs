//! `injector-webhook explain FILE`: what the webhook would do to each pod in a manifest,
//! offline. Accepts Pods and workloads with a pod template (Deployment, StatefulSet,
//! DaemonSet, ReplicaSet, Job, CronJob), in YAML or JSON, several documents per file.

use bulwark_inject::{Defaults, Outcome};
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
    #[error("{origin}: document {index} ({name}) is denied: {source}")]
    Denied {
        origin: String,
        index: usize,
        name: String,
        #[source]
        source: bulwark_inject::Error,
    },
}

/// Explains every document of `text` (read from `origin`) and returns YAML: per pod its
/// source, the outcome, warnings, the JSON patch and the patched pod.
pub fn explain(text: &str, origin: &str, defaults: &Defaults) -> Result<String, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| Error::Parse {
        origin: origin.to_owned(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
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
        let explained =
            bulwark_inject::explain(&pod, defaults).map_err(|source| Error::Denied {
                origin: origin.to_owned(),
                index,
                name: format!("{kind}/{name}"),
                source,
            })?;
        let outcome = match explained.mutation.outcome {
            Outcome::Injected => "injected",
            Outcome::AlreadyInjected => "already injected: nothing to do",
            Outcome::NotRequested => "not requested: no keeper.security/inject annotation",
        };
        out.push(json!({
            "source": format!("{kind}/{name}"),
            "outcome": outcome,
            "warnings": explained.mutation.warnings,
            "patch": explained.mutation.patch,
            "pod": explained.pod,
        }));
    }
    let mut yaml = String::new();
    for doc in out {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&doc).map_err(|e| Error::Parse {
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
