//! The Keeper injector's domain: `keeper.security/*` annotations in, a JSON patch and a
//! [`SidecarSpec`] out.
//!
//! [`inject`] is what the webhook calls for each admitted pod: it reads the annotations
//! ([`annotations::parse`]), and [`mutate`] computes the patch that adds the tmpfs volume,
//! the init container, the sidecar and the mounts.
//! [`explain`] does the same for a pod given as JSON and also returns the patched pod, for
//! `injector-webhook explain`.
//!
//! **Architecture Invariant:** pure. No IO, no async runtime, no `kube`: nothing here calls
//! Keeper or the API server, so admission has no side effects and dry-run behaves identically.
//! Secret values never pass through this crate.
//!
//! The names of what is added (`keeper-secrets`, `/keeper/secrets`, `keeper-secrets-init`,
//! `keeper-secrets-sidecar`) are upstream's, so that users' ArgoCD `ignoreDifferences` keep
//! working.

pub mod annotations;
mod defaults;
mod error;
pub mod fuzzing;
pub mod json;
mod mutate;
mod notation;
pub mod patch;
pub mod pod;
mod quantity;
pub mod spec;

#[cfg(test)]
mod fixtures;

use serde::Deserialize;
use serde_json::Value;

pub use annotations::{INJECT, INJECTED, InjectionRequest};
pub use defaults::{Defaults, Resources};
pub use error::{Error, Result};
pub use mutate::{Mutation, Outcome, mutate};
pub use patch::{Operation, Patch};
pub use pod::Pod;
pub use spec::SidecarSpec;

/// The shared tmpfs volume.
pub const VOLUME: &str = "keeper-secrets";

/// Where the shared volume is mounted in every container; every output path lies under it.
pub const MOUNT_PATH: &str = "/keeper/secrets";

/// The init container that fetches secrets before the application starts.
pub const INIT_CONTAINER: &str = "keeper-secrets-init";

/// The sidecar that refreshes secrets.
pub const SIDECAR_CONTAINER: &str = "keeper-secrets-sidecar";

/// The volume of extra CA certificates (`keeper.security/ca-cert-*`).
pub const CA_VOLUME: &str = "keeper-ca-cert";

/// Where [`CA_VOLUME`] is mounted in the keeper containers.
pub const CA_MOUNT_PATH: &str = "/keeper/ca";

/// The name of the sidecar's health and metrics port.
pub const METRICS_PORT_NAME: &str = "keeper-metrics";

/// A pod as `explain` shows it: the mutation and the pod with the patch applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub mutation: Mutation,
    /// The pod after the patch, as JSON.
    pub pod: Value,
}

/// Admission with one set of [`Defaults`], as the webhook runs it: what the keeper containers
/// take from the defaults alone is written once, when the injector is made, instead of for
/// every pod.
#[derive(Debug, Clone)]
pub struct Injector {
    defaults: Defaults,
    fragments: mutate::Fragments,
}

impl Injector {
    /// An injector with `defaults`.
    pub fn new(defaults: Defaults) -> Self {
        let fragments = mutate::Fragments::of(&defaults);
        Self {
            defaults,
            fragments,
        }
    }

    /// Admits one pod: an empty mutation unless it asks for injection and is not injected
    /// yet, an error (a denial) when its annotations are invalid.
    pub fn inject(&self, pod: &Pod<'_>) -> Result<Mutation> {
        let Some(annotations) = pod.metadata.annotations.as_ref() else {
            return Ok(Mutation::empty(Outcome::NotRequested, Vec::new()));
        };
        if !annotations.contains_key(INJECT) {
            return Ok(Mutation::empty(Outcome::NotRequested, Vec::new()));
        }
        let mutate = |request| mutate::mutate_with(pod, request, &self.defaults, &self.fragments);
        let pairs = || annotations.iter().map(|(k, v)| (&**k, &**v));
        // An injected pod is left alone before its annotations are read again, so that a pod
        // admitted under older rules is not denied when it is re-submitted or reinvoked.
        if mutate::injected(pod).is_some() {
            return match annotations::parse_pairs(pairs()) {
                Ok(Some(request)) => mutate(request),
                _ => Ok(Mutation::empty(Outcome::AlreadyInjected, Vec::new())),
            };
        }
        match annotations::parse_pairs(pairs())? {
            Some(request) => mutate(request),
            None => Ok(Mutation::empty(Outcome::NotRequested, Vec::new())),
        }
    }
}

/// Admits one pod with `defaults`: [`Injector::inject`] for a single pod.
pub fn inject(pod: &Pod<'_>, defaults: &Defaults) -> Result<Mutation> {
    Injector::new(defaults.clone()).inject(pod)
}

/// Admits a pod given as JSON (an AdmissionReview's `request.object`, or a manifest) and
/// returns the mutation together with the patched pod.
pub fn explain(object: &Value, defaults: &Defaults) -> Result<Explained> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        return Err(Error::Pod("expected an object with metadata".to_owned()));
    }
    // A manifest has not been through the API server: check it as a whole Pod first.
    k8s_openapi::api::core::v1::Pod::deserialize(object).map_err(|e| Error::Pod(e.to_string()))?;
    let pod = Pod::deserialize(object).map_err(|e| Error::Pod(e.to_string()))?;
    let mutation = inject(&pod, defaults)?;
    let mut patched = object.clone();
    patch::apply(&mut patched, &mutation.patch.operations()?)?;
    Ok(Explained {
        mutation,
        pod: patched,
    })
}
