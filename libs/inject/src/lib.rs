//! The Keeper injector's domain: `keeper.security/*` annotations in, a JSON patch and a
//! [`SidecarSpec`] out.
//!
//! [`Injector::inject`] is what the webhook calls for each admitted pod: it reads the
//! annotations into an [`InjectionRequest`] ([`annotations::parse_pairs`]), plans what the pod
//! gets ([`plan::Plan`]: annotations, volumes, mounts and the keeper containers, typed as
//! [`objects`]) and writes that as a list of typed JSON Patch operations ([`Patch`]), which
//! the webhook serialises once into its response. The injector keeps the JSON of the values
//! that repeat from pod to pod (the keeper containers, the spec; [`memo`]).
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
pub mod memo;
mod mutate;
mod notation;
pub mod objects;
pub mod patch;
pub mod plan;
pub mod pod;
mod quantity;

#[cfg(test)]
mod fixtures;

pub use annotations::{INJECT, INJECTED, InjectionRequest};
pub use bulwark_sidecar_spec::{self as spec, SidecarSpec};
pub use defaults::{Defaults, Resources};
pub use error::{Error, Result};
pub use mutate::{Mutation, Outcome, mutate};
pub use patch::{Operation, Patch};
pub use pod::Pod;

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

/// Admission with one set of [`Defaults`], as the webhook runs it for its lifetime: pure but
/// for the JSON it keeps of values that repeat from pod to pod ([`memo`]), which is the same
/// whether kept or made again.
#[derive(Debug)]
pub struct Injector {
    defaults: Defaults,
    containers: memo::JsonMemo<plan::KeeperKey>,
    specs: memo::JsonMemo<SidecarSpec>,
}

impl Injector {
    /// An injector with `defaults`.
    pub fn new(defaults: Defaults) -> Self {
        Self {
            defaults,
            containers: memo::JsonMemo::new(),
            specs: memo::JsonMemo::new(),
        }
    }

    /// The defaults it injects with.
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// Admits one pod: an empty mutation unless it asks for injection and is not injected
    /// yet, an error (a denial) when its annotations are invalid.
    pub fn inject(&self, pod: &Pod<'_>) -> Result<Mutation<'_>> {
        let Some(annotations) = pod.metadata.annotations.as_ref() else {
            return Ok(Mutation::empty(Outcome::NotRequested, Vec::new()));
        };
        if !annotations.contains_key(INJECT) {
            return Ok(Mutation::empty(Outcome::NotRequested, Vec::new()));
        }
        let pairs = || annotations.iter().map(|(k, v)| (&**k, &**v));
        // An injected pod is left alone before its annotations are read again, so that a pod
        // admitted under older rules is not denied when it is re-submitted or reinvoked.
        if mutate::injected(pod).is_some() {
            return match annotations::parse_pairs(pairs()) {
                Ok(Some(request)) => mutate(pod, request, self),
                _ => Ok(Mutation::empty(Outcome::AlreadyInjected, Vec::new())),
            };
        }
        match annotations::parse_pairs(pairs())? {
            Some(request) => mutate(pod, request, self),
            None => Ok(Mutation::empty(Outcome::NotRequested, Vec::new())),
        }
    }
}
