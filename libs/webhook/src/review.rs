//! The `admission.k8s.io/v1` AdmissionReview codec: the request the API server sends, the
//! response it expects. Pure; malformed input is an error naming what was wrong, never a panic.

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

/// The only AdmissionReview version we speak (`admissionReviewVersions: [v1]`).
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// The parts of an admission request that the webhook uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Echoed in the response so the API server can match it.
    pub uid: String,
    /// `group/version/kind` of the object, such as `/v1/Pod`.
    pub kind: String,
    pub operation: String,
    pub namespace: Option<String>,
    /// Dry-run requests are admitted exactly like real ones: admission has no side effects.
    pub dry_run: bool,
    /// The object being admitted; absent for DELETE.
    pub object: Option<Value>,
}

impl Request {
    /// True for the requests we mutate: CREATE of a core/v1 Pod.
    pub fn is_pod_create(&self) -> bool {
        self.kind == "/v1/Pod" && self.operation == "CREATE"
    }
}

/// Why a body is not an AdmissionReview we can answer; the message goes into the HTTP 400 body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error(
        "expected apiVersion {API_VERSION:?} and kind \"AdmissionReview\", got {api_version:?} and {kind:?}"
    )]
    Version { api_version: String, kind: String },
    #[error("the AdmissionReview has no request")]
    NoRequest,
    #[error("the AdmissionReview request has no uid")]
    NoUid,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Review {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<RawRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRequest {
    #[serde(default)]
    uid: String,
    #[serde(default)]
    kind: GroupVersionKind,
    #[serde(default)]
    operation: String,
    namespace: Option<String>,
    #[serde(default)]
    dry_run: Option<bool>,
    object: Option<Value>,
}

#[derive(Deserialize, Default)]
struct GroupVersionKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    kind: String,
}

/// Parses an AdmissionReview body.
pub fn parse(body: &[u8]) -> Result<Request, Error> {
    let review: Review = serde_json::from_slice(body).map_err(|e| Error::Json(e.to_string()))?;
    if review.api_version != API_VERSION || review.kind != "AdmissionReview" {
        return Err(Error::Version {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let raw = review.request.ok_or(Error::NoRequest)?;
    if raw.uid.is_empty() {
        return Err(Error::NoUid);
    }
    let gvk = raw.kind;
    Ok(Request {
        uid: raw.uid,
        kind: format!("{}/{}/{}", gvk.group, gvk.version, gvk.kind),
        operation: raw.operation,
        namespace: raw.namespace,
        dry_run: raw.dry_run.unwrap_or(false),
        object: raw.object.filter(|o| !o.is_null()),
    })
}

/// An allowing response, carrying `patch` (a JSON Patch document) when it is not empty.
pub fn allow(uid: &str, patch: &[bulwark_inject::Operation], warnings: &[String]) -> Vec<u8> {
    let mut response = json!({ "uid": uid, "allowed": true });
    if !patch.is_empty() {
        // Serializing our own operation types cannot fail; an empty array would be harmless.
        let bytes = serde_json::to_vec(patch).unwrap_or_else(|_| b"[]".to_vec());
        response["patchType"] = json!("JSONPatch");
        response["patch"] = json!(base64::engine::general_purpose::STANDARD.encode(bytes));
    }
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    wrap(response)
}

/// A denying response; `message` is what `kubectl` shows the user.
pub fn deny(uid: &str, code: u16, message: &str) -> Vec<u8> {
    let reason = if code == 400 {
        "BadRequest"
    } else {
        "Forbidden"
    };
    wrap(json!({
        "uid": uid,
        "allowed": false,
        "status": { "status": "Failure", "code": code, "reason": reason, "message": message },
    }))
}

fn wrap(response: Value) -> Vec<u8> {
    let review =
        json!({ "apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response });
    serde_json::to_vec(&review).unwrap_or_default()
}

#[cfg(test)]
mod tests;
