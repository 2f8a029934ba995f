//! The `admission.k8s.io/v1` AdmissionReview codec: the request the API server sends, the
//! response it expects. Pure; malformed input is an error naming what was wrong, never a panic.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The only AdmissionReview version we speak (`admissionReviewVersions: [v1]`).
pub const API_VERSION: &str = "admission.k8s.io/v1";

/// The parts of an admission request that the webhook uses, borrowed from the body, with the
/// object as `O`: unparsed ([`RawValue`]) or read as the pod it should be.
#[derive(Debug, Clone)]
pub struct Request<'a, O = &'a RawValue> {
    /// Echoed in the response so the API server can match it.
    pub uid: Cow<'a, str>,
    /// The object's kind, such as `{group: "", version: "v1", kind: "Pod"}`.
    pub kind: GroupVersionKind<'a>,
    pub operation: Cow<'a, str>,
    pub namespace: Option<Cow<'a, str>>,
    /// Dry-run requests are admitted exactly like real ones: admission has no side effects.
    pub dry_run: bool,
    /// The object being admitted; absent for DELETE.
    pub object: Option<O>,
}

impl<'a, O> Request<'a, O> {
    /// The same request with `object` in place of its object.
    pub fn with_object<P>(self, object: Option<P>) -> Request<'a, P> {
        Request {
            uid: self.uid,
            kind: self.kind,
            operation: self.operation,
            namespace: self.namespace,
            dry_run: self.dry_run,
            object,
        }
    }

    /// True for the requests we mutate: CREATE of a core/v1 Pod.
    pub fn is_pod_create(&self) -> bool {
        let GroupVersionKind {
            group,
            version,
            kind,
        } = &self.kind;
        group.is_empty() && version == "v1" && kind == "Pod" && self.operation == "CREATE"
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

#[derive(Debug, PartialEq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "O: Deserialize<'de>, 'de: 'a")
)]
struct ReviewIn<'a, O> {
    #[serde(default, borrow)]
    api_version: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: Cow<'a, str>,
    request: Option<RawRequest<'a, O>>,
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(
    rename_all = "camelCase",
    bound(deserialize = "O: Deserialize<'de>, 'de: 'a")
)]
struct RawRequest<'a, O> {
    #[serde(default, borrow)]
    uid: Cow<'a, str>,
    #[serde(default, borrow)]
    kind: GroupVersionKind<'a>,
    #[serde(default, borrow)]
    operation: Cow<'a, str>,
    #[serde(borrow)]
    namespace: Option<Cow<'a, str>>,
    #[serde(default)]
    dry_run: Option<bool>,
    object: Option<O>,
}

/// An object's group, version and kind, as AdmissionReview spells them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct GroupVersionKind<'a> {
    #[serde(default, borrow)]
    pub group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub version: Cow<'a, str>,
    #[serde(default, borrow)]
    pub kind: Cow<'a, str>,
}

/// Parses an AdmissionReview body, borrowing from it, with its object unparsed.
pub fn parse(body: &[u8]) -> Result<Request<'_>, Error> {
    let request = parse_as::<&RawValue>(body)?;
    let object = request.object.filter(|o| o.get() != "null");
    Ok(request.with_object(object))
}

/// Parses an AdmissionReview body and its object as an `O` in one pass, borrowing from it.
///
/// An object that is not an `O` fails the whole parse; [`parse`] tells such a review from a
/// malformed one.
pub fn parse_as<'a, O: Deserialize<'a>>(body: &'a [u8]) -> Result<Request<'a, O>, Error> {
    // The body is checked as UTF-8 once, as a whole, so that serde_json borrows its strings
    // without checking each.
    let text = std::str::from_utf8(body).map_err(|e| Error::Json(e.to_string()))?;
    let review: ReviewIn<'a, O> =
        serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
    if review.api_version != API_VERSION || review.kind != "AdmissionReview" {
        return Err(Error::Version {
            api_version: review.api_version.into_owned(),
            kind: review.kind.into_owned(),
        });
    }
    let raw = review.request.ok_or(Error::NoRequest)?;
    if raw.uid.is_empty() {
        return Err(Error::NoUid);
    }
    Ok(Request {
        uid: raw.uid,
        kind: raw.kind,
        operation: raw.operation,
        namespace: raw.namespace,
        dry_run: raw.dry_run.unwrap_or(false),
        object: raw.object,
    })
}

/// An allowing response, carrying `patch` (a JSON Patch document) when it is not empty.
pub fn allow(uid: &str, patch: &bulwark_inject::Patch<'_>, warnings: &[String]) -> Vec<u8> {
    let patch = (!patch.is_empty()).then(|| base64_string(&patch.to_json()));
    encode(&Response {
        uid,
        allowed: true,
        patch_type: patch.is_some().then_some("JSONPatch"),
        patch: patch.as_deref(),
        warnings,
        status: None,
    })
}

/// `bytes` in base64 as a JSON string.
///
/// Base64 needs no escaping, so the string goes into the response as a [`RawValue`] rather than
/// through serde_json's escaping, which scans it a byte at a time: the patch is most of the
/// response (this halved the cost of writing it).
///
/// The encoder is `base64-simd` (AVX2 or SSSE3, chosen at run time; NEON on aarch64), not the
/// `base64` crate the rest of the workspace uses, for a measured reason: on the benchmark's
/// review (a 3.5 KiB patch) an admission costs 95.3k instructions with the `base64` crate's
/// engine and 72.2k with `base64-simd` (callgrind, `--admit-only`), and the webhook's
/// throughput goes from 0.56, 0.57 and 0.58 of the bare server's to 0.63, 0.60 and 0.62
/// (`cargo bench -p injector-webhook`, three runs each way on one 2-core machine): without it
/// the admission path is below its floor of 0.6.
fn base64_string(bytes: &[u8]) -> Box<RawValue> {
    let mut quoted = String::with_capacity(bytes.len().div_ceil(3) * 4 + 2);
    quoted.push('"');
    quoted.push_str(&base64_simd::STANDARD.encode_to_string(bytes));
    quoted.push('"');
    // A quoted base64 text is a JSON string, so this never falls back to `null`.
    RawValue::from_string(quoted).unwrap_or_default()
}

/// A denying response; `message` is what `kubectl` shows the user.
pub fn deny(uid: &str, code: u16, message: &str) -> Vec<u8> {
    let reason = if code == 400 {
        "BadRequest"
    } else {
        "Forbidden"
    };
    encode(&Response {
        uid,
        allowed: false,
        patch_type: None,
        patch: None,
        warnings: &[],
        status: Some(Status {
            status: "Failure",
            code,
            reason,
            message,
        }),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status<'a>>,
}

#[derive(Serialize)]
struct Status<'a> {
    status: &'a str,
    code: u16,
    reason: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Review<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: &'a Response<'a>,
}

fn encode(response: &Response<'_>) -> Vec<u8> {
    let review = Review {
        api_version: API_VERSION,
        kind: "AdmissionReview",
        response,
    };
    let mut out = Vec::with_capacity(256 + response.patch.map_or(0, |p| p.get().len()));
    // Writing plain structs of strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &review);
    out
}

#[cfg(test)]
mod tests;
