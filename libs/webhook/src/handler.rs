//! The HTTP side of admission: routes, body limits, and the mapping from a mutation or an
//! error to an AdmissionReview response and metrics.

use std::sync::Arc;
use std::time::Instant;

use bulwark_http::{ResponseBody, text};
use bulwark_inject::{Defaults, Injector, Outcome, Patch, Pod};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use crate::{metrics, review};

/// The largest body we read: the API server's own request limit is 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// The admission webhook: immutable after start, shared by every connection.
#[derive(Debug)]
pub struct Webhook {
    injector: Injector,
}

impl Webhook {
    /// A webhook injecting with `defaults`.
    pub fn new(defaults: Defaults) -> Arc<Self> {
        Arc::new(Self {
            injector: Injector::new(defaults),
        })
    }

    /// Serves one HTTP request: `POST /mutate-pods` (or `/mutate`) with an AdmissionReview.
    pub async fn serve(self: Arc<Self>, request: Request<Incoming>) -> Response<ResponseBody> {
        if !matches!(request.uri().path(), "/mutate-pods" | "/mutate") {
            return text(
                StatusCode::NOT_FOUND,
                "not found: POST AdmissionReviews to /mutate-pods\n",
            );
        }
        if request.method() != Method::POST {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed: use POST\n",
            );
        }
        let started = Instant::now();
        let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
        {
            Ok(body) => body.to_bytes(),
            Err(error) => {
                let (reason, message) = if error.is::<LengthLimitError>() {
                    (
                        "body_too_large",
                        format!("the request body is over {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    ("body", format!("cannot read the request body: {error}"))
                };
                tracing::warn!(reason, error = message, "Rejected an admission request.");
                metrics::record(Verdict::BadRequest(reason), started.elapsed());
                return text(StatusCode::BAD_REQUEST, format!("{message}\n"));
            }
        };
        let admitted = self.admit(&body);
        metrics::record(admitted.verdict, started.elapsed());
        match admitted.verdict {
            Verdict::BadRequest(_) => text(StatusCode::BAD_REQUEST, admitted.body),
            _ => bulwark_http::response(StatusCode::OK, "application/json", admitted.body),
        }
    }

    /// Answers one AdmissionReview body; pure apart from logging.
    pub fn admit(&self, body: &[u8]) -> Admitted {
        // One pass reads the review and its pod together. Only a body that fails it is read
        // again, in two steps, to tell a malformed review from an object that is not a pod.
        match review::parse_as::<Pod<'_>>(body) {
            Ok(request) => self.admit_pod(request),
            Err(_) => self.admit_unread(body),
        }
    }

    /// Answers a body that does not read as a review with a pod: a malformed review (HTTP
    /// 400), a review of something else than a pod CREATE (allowed unchanged) or an invalid
    /// pod (denied).
    fn admit_unread(&self, body: &[u8]) -> Admitted {
        let request = match review::parse(body) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(
                    reason = "malformed_review",
                    error = %error,
                    bytes = body.len(),
                    "Rejected an admission request."
                );
                return Admitted::new(
                    Verdict::BadRequest("malformed_review"),
                    format!("malformed AdmissionReview: {error}\n"),
                );
            }
        };
        let (Some(object), true) = (request.object, request.is_pod_create()) else {
            return skipped(&request);
        };
        match Pod::from_json(object.get()) {
            Ok(pod) => self.admit_pod(request.with_object(Some(pod))),
            Err(error) => denied(
                &request,
                "",
                "invalid_pod",
                &format!("the pod in the AdmissionReview is not a valid Pod: {error}"),
            ),
        }
    }

    /// Answers a review whose object has been read as a pod.
    fn admit_pod(&self, request: review::Request<'_, Pod<'_>>) -> Admitted {
        let uid = &*request.uid;
        let (Some(pod), true) = (&request.object, request.is_pod_create()) else {
            return skipped(&request);
        };
        let name = pod
            .metadata
            .name
            .as_deref()
            .or(pod.metadata.generate_name.as_deref())
            .unwrap_or("");
        let namespace = request.namespace.as_deref().unwrap_or("");
        match self.injector.inject(pod) {
            Ok(mutation) => {
                let verdict = match mutation.outcome {
                    Outcome::Injected => Verdict::Injected,
                    Outcome::AlreadyInjected => Verdict::AlreadyInjected,
                    Outcome::NotRequested => Verdict::NotRequested,
                };
                if mutation.outcome == Outcome::Injected {
                    tracing::info!(
                        uid,
                        pod = name,
                        namespace,
                        dry_run = request.dry_run,
                        "Injected Keeper secrets delivery."
                    );
                } else {
                    tracing::debug!(
                        uid,
                        pod = name,
                        namespace,
                        result = verdict.result(),
                        "Admitted a pod unchanged."
                    );
                }
                Admitted::new(
                    verdict,
                    review::allow(uid, &mutation.patch, &mutation.warnings),
                )
            }
            Err(error) => denied(&request, name, error.metric_label(), &error.to_string()),
        }
    }
}

/// Denies the pod `pod` (its name, when it has one) of `request` for `reason` (a bounded
/// label), telling the user `message`, and logs it.
fn denied<O>(
    request: &review::Request<'_, O>,
    pod: &str,
    reason: &'static str,
    message: &str,
) -> Admitted {
    tracing::info!(
        uid = &*request.uid,
        pod,
        namespace = request.namespace.as_deref().unwrap_or(""),
        dry_run = request.dry_run,
        reason,
        error = message,
        "Denied a pod."
    );
    Admitted::new(
        Verdict::Denied(reason),
        review::deny(&request.uid, 400, message),
    )
}

/// Allows a request that is not a pod CREATE unchanged. The webhook configuration sends only
/// pod CREATEs, so one of these means the configuration was changed: say so.
fn skipped<O>(request: &review::Request<'_, O>) -> Admitted {
    let kind = &request.kind;
    tracing::warn!(
        uid = &*request.uid,
        namespace = request.namespace.as_deref().unwrap_or(""),
        kind = format!("{}/{}/{}", kind.group, kind.version, kind.kind),
        operation = &*request.operation,
        "Allowed a request that is not a pod CREATE unchanged; the MutatingWebhookConfiguration should send only pod CREATEs."
    );
    Admitted::new(
        Verdict::Skipped,
        review::allow(&request.uid, &Patch::new(), &[]),
    )
}

/// The answer to one request, with what the metrics record about it.
#[derive(Debug)]
pub struct Admitted {
    pub verdict: Verdict,
    pub body: Bytes,
}

/// What the webhook did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Injected,
    AlreadyInjected,
    NotRequested,
    /// Not a pod CREATE: allowed unchanged.
    Skipped,
    /// Denied, for a bounded reason (an error's `metric_label`).
    Denied(&'static str),
    /// Not an AdmissionReview that can be answered: HTTP 400, for a bounded reason.
    BadRequest(&'static str),
}

impl Admitted {
    fn new(verdict: Verdict, body: impl Into<Bytes>) -> Self {
        Self {
            verdict,
            body: body.into(),
        }
    }
}

impl Verdict {
    /// Every [`result`](Self::result), in order.
    pub const RESULTS: [&'static str; 6] = [
        "injected",
        "already_injected",
        "not_requested",
        "skipped",
        "denied",
        "bad_request",
    ];

    /// The `result` label of `keeper_injector_requests_total`.
    pub fn result(self) -> &'static str {
        match self {
            Verdict::Injected => "injected",
            Verdict::AlreadyInjected => "already_injected",
            Verdict::NotRequested => "not_requested",
            Verdict::Skipped => "skipped",
            Verdict::Denied(_) => "denied",
            Verdict::BadRequest(_) => "bad_request",
        }
    }

    /// The `reason` label of `keeper_injector_errors_total`, for denials and bad requests.
    pub fn reason(self) -> Option<&'static str> {
        match self {
            Verdict::Denied(reason) | Verdict::BadRequest(reason) => Some(reason),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
