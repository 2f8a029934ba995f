//! The `admission.k8s.io/v1` AdmissionReview codec: the request the API server sends, the
//! response it expects. Pure; malformed input is an error naming what was wrong, never a panic.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

mod reader;

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
    let request = read::<&RawValue>(body, false)?;
    let object = request.object.filter(|o| o.get() != "null");
    Ok(request.with_object(object))
}

/// Parses an AdmissionReview body and its object as an `O` in one pass, borrowing from it.
///
/// An object that is not an `O` fails the whole parse; [`parse`] tells such a review from a
/// malformed one.
pub fn parse_as<'a, O: Deserialize<'a>>(body: &'a [u8]) -> Result<Request<'a, O>, Error> {
    read(body, true)
}

/// [`parse_as`], through the fast reader first when `fast`.
fn read<'a, O: Deserialize<'a>>(body: &'a [u8], fast: bool) -> Result<Request<'a, O>, Error> {
    // Checked once here, so that the readers borrow strings without checking each again.
    let text = std::str::from_utf8(body).map_err(|e| Error::Json(e.to_string()))?;
    // The fast reader answers as serde_json would, or leaves the body to serde_json, which
    // then decides and words any error.
    let review: ReviewIn<'a, O> = match fast.then(|| reader::from_str(text)).flatten() {
        Some(review) => review,
        None => serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?,
    };
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

/// Whether the fast reader answers `body` as serde_json does, as a review with its pod, as any
/// JSON value and as JSON to skip: the same value, or nothing. For the tests and the fuzzer.
pub fn agrees_with_serde_json(body: &[u8]) -> bool {
    fn agree<'a, T: Deserialize<'a> + PartialEq>(text: &'a str) -> bool {
        reader::from_str::<T>(text)
            .is_none_or(|fast| serde_json::from_str::<T>(text).is_ok_and(|slow| fast == slow))
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return true;
    };
    agree::<ReviewIn<'_, bulwark_inject::Pod<'_>>>(text)
        && agree::<serde_json::Value>(text)
        && reader::from_str::<serde::de::IgnoredAny>(text)
            .is_none_or(|_| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
}

/// An allowing response, carrying `patch` (a JSON Patch document) when it is not empty.
pub fn allow(uid: &str, patch: &bulwark_inject::Patch, warnings: &[String]) -> Vec<u8> {
    if patch.is_empty() {
        return encode(&Response {
            uid,
            allowed: true,
            patch_type: None,
            patch: None,
            warnings,
            status: None,
        });
    }
    // The patch is the bulk of the response: its text goes as base64 straight into the body
    // (base64 needs no JSON escaping).
    let json = patch.as_json().as_bytes();
    let mut out = Vec::with_capacity(256 + json.len().div_ceil(3) * 4);
    out.extend_from_slice(b"{\"apiVersion\":\"");
    out.extend_from_slice(API_VERSION.as_bytes());
    out.extend_from_slice(b"\",\"kind\":\"AdmissionReview\",\"response\":{\"uid\":");
    // A uid is a UUID, which needs no escaping; anything else goes through serde_json
    // (writing a string into a Vec cannot fail).
    if bulwark_inject::json::escape_at(uid.as_bytes()).is_none() {
        out.push(b'"');
        out.extend_from_slice(uid.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut out, uid);
    }
    out.extend_from_slice(b",\"allowed\":true,\"patchType\":\"JSONPatch\",\"patch\":\"");
    base64_simd::STANDARD.encode_append(json, &mut out);
    out.push(b'"');
    if !warnings.is_empty() {
        out.extend_from_slice(b",\"warnings\":");
        let _ = serde_json::to_writer(&mut out, warnings);
    }
    out.extend_from_slice(b"}}");
    out
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
    patch: Option<&'a str>,
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
    let mut out = Vec::with_capacity(256 + response.patch.map_or(0, str::len));
    // Writing plain structs of strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut out, &review);
    out
}

#[cfg(test)]
mod tests;
