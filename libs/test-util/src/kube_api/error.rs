//! API failures and the `meta/v1` `Status` objects that carry them to clients.
//!
//! Every failure the fake reports over HTTP goes through [`Error::to_status`],
//! so clients see the same `code`, `reason` and `details` that a real API server sends
//! and kube-rs turns them into `kube::Error::Api` with the right fields.

use serde_json::{Map, Value, json};

use super::resources::GroupResource;

/// A failed API request, or a test hook given an object the fake cannot store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The named object does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        resource: GroupResource,
        name: String,
    },
    /// The URL names no resource the fake serves.
    #[error("the server could not find the requested resource")]
    UnknownResource,
    /// A create named an object that already exists.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        resource: GroupResource,
        name: String,
    },
    /// A resourceVersion or uid precondition did not hold.
    #[error("operation cannot be fulfilled on {resource} \"{name}\": {message}")]
    Conflict {
        resource: GroupResource,
        name: String,
        message: String,
    },
    /// The request was malformed: bad JSON, bad selector, mismatched names.
    #[error("{0}")]
    BadRequest(String),
    /// The object failed validation.
    #[error("{kind} \"{name}\" is invalid: {message}")]
    Invalid {
        kind: String,
        name: String,
        message: String,
    },
    /// A patch parsed but could not be applied, such as a failed JSON patch `test` operation.
    #[error("{0}")]
    Unprocessable(String),
    /// The resource does not support this HTTP method.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    /// The request body has a content type the endpoint does not accept.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: {accepted}"
    )]
    UnsupportedMediaType { accepted: &'static str },
    /// A watch asked for a resourceVersion older than the retained history.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: u64, oldest: u64 },
    /// The request body exceeded the size limit.
    #[error("the request body is larger than {limit} bytes")]
    RequestEntityTooLarge { limit: usize },
    /// The request carried no bearer token, or the wrong one.
    #[error("unauthorized")]
    Unauthorized,
    /// A failure injected by the test through a [`Fault`](super::Fault).
    #[error("injected failure with code {code}")]
    Injected { code: u16 },
    /// A test hook was given an object of a kind the fake does not serve.
    #[error("no served resource has apiVersion {api_version:?} and kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
}

impl Error {
    /// The HTTP status code, which is also the `code` field of the `Status`.
    pub fn code(&self) -> u16 {
        match self {
            Error::NotFound { .. } | Error::UnknownResource | Error::UnknownKind { .. } => 404,
            Error::AlreadyExists { .. } | Error::Conflict { .. } => 409,
            Error::BadRequest(_) => 400,
            Error::Invalid { .. } | Error::Unprocessable(_) => 422,
            Error::MethodNotAllowed => 405,
            Error::UnsupportedMediaType { .. } => 415,
            Error::Expired { .. } => 410,
            Error::RequestEntityTooLarge { .. } => 413,
            Error::Unauthorized => 401,
            Error::Injected { code } => *code,
        }
    }

    /// The machine-readable `reason` Kubernetes sends with this failure, empty when it sends none.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Injected { code } => reason_for_code(*code),
            // A too-old resourceVersion is `Expired` in Kubernetes, not `Gone`,
            // although both carry code 410.
            Error::Expired { .. } => "Expired",
            Error::AlreadyExists { .. } => "AlreadyExists",
            other => reason_for_code(other.code()),
        }
    }

    /// Renders the failure as the `Status` object a real API server would send.
    pub fn to_status(&self) -> Value {
        let mut status = Map::new();
        status.insert("kind".into(), "Status".into());
        status.insert("apiVersion".into(), "v1".into());
        status.insert("metadata".into(), json!({}));
        status.insert("status".into(), "Failure".into());
        status.insert("message".into(), self.to_string().into());
        let reason = self.reason();
        if !reason.is_empty() {
            status.insert("reason".into(), reason.into());
        }
        if let Some(details) = self.details() {
            status.insert("details".into(), details);
        }
        status.insert("code".into(), self.code().into());
        Value::Object(status)
    }

    fn details(&self) -> Option<Value> {
        match self {
            Error::NotFound { resource, name }
            | Error::AlreadyExists { resource, name }
            | Error::Conflict { resource, name, .. } => {
                Some(json!({"name": name, "group": resource.group, "kind": resource.plural}))
            }
            Error::Invalid { kind, name, .. } => Some(json!({"name": name, "kind": kind})),
            _ => None,
        }
    }
}

/// The reason Kubernetes pairs with each status code, as in apimachinery's `StatusReason` constants.
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}
