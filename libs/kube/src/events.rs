//! Kubernetes Events (`events.k8s.io/v1`) about objects we act on, deduplicated into series
//! by kube-runtime's recorder.
//!
//! Event notes are visible to anyone who can list events in the namespace: never put a secret
//! value, a record title or a log line's raw text into one.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, Recorder, Reporter};

use crate::{Error, Result};

pub use kube::runtime::events::EventType;

/// Publishes events as one controller instance.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// A recorder reporting as `controller` (the binary name) and `instance` (the pod name).
    pub fn new(client: kube::Client, controller: &str, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: controller.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Records that `action` happened to `object` for `reason` (both CamelCase, bounded sets).
    pub async fn publish(
        &self,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: Option<String>,
    ) -> Result<()> {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note,
            action: action.to_owned(),
            secondary: None,
        };
        self.recorder
            .publish(&event, object)
            .await
            .map_err(Error::Api)
    }
}
