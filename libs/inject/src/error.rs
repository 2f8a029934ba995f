//! The one error type of this crate: why a pod cannot be injected as its annotations ask.
//!
//! Every message names what was wrong (the annotation, or the part of the pod) and what was
//! expected, because the webhook returns it verbatim to whoever applied the pod.

/// Why a pod is denied, or why a spec or patch cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An annotation's value is not of the expected form, or a required annotation is missing.
    #[error("{annotation}: {message}")]
    Invalid {
        /// The full annotation key, e.g. `keeper.security/refresh-interval`.
        annotation: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// An annotation asks for something that must not happen during admission.
    #[error("{annotation}: not supported: {reason}")]
    Unsupported {
        /// The full annotation key.
        annotation: String,
        /// Why, and what to use instead.
        reason: &'static str,
    },
    /// The pod already holds something that injection needs for itself.
    #[error("pod conflicts with injection: {0}")]
    Conflict(String),
    /// The object is not a pod that can be mutated.
    #[error("invalid pod: {0}")]
    Pod(String),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A bounded, snake_case label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid_annotation",
            Error::Unsupported { .. } => "unsupported_annotation",
            Error::Conflict(_) => "pod_conflict",
            Error::Pod(_) => "invalid_pod",
        }
    }

    /// An [`Error::Invalid`] for `annotation` (a full key).
    pub(crate) fn invalid(annotation: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            annotation: annotation.into(),
            message: message.into(),
        }
    }
}
