//! The HTTP side of admission: routes, body limits, and the mapping from a mutation or an
//! error to an AdmissionReview response and metrics.

use std::sync::Arc;
use std::time::Instant;

use bulwark_http::{ResponseBody, text};
use bulwark_inject::{Defaults, Injector, Outcome, Patch, Pod};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
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
                metrics::record("bad_request", Some("body"), started.elapsed());
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the request body: {error}\n"),
                );
            }
        };
        let response = self.admit(&body);
        let took = started.elapsed();
        metrics::record(response.result, response.error, took);
        if response.result == "bad_request" {
            text(StatusCode::BAD_REQUEST, response.body)
        } else {
            bulwark_http::response(StatusCode::OK, "application/json", response.body)
        }
    }

    /// Answers one AdmissionReview body; pure apart from logging.
    pub fn admit(&self, body: &[u8]) -> Admitted {
        // One pass reads the review and its pod together. Only a body that fails it is read
        // again, in two steps, to tell a malformed review from an object that is not a pod.
        match review::parse_as::<Pod<'_>>(body) {
            Ok(request) => self.admit_pod(request),
            Err(_) => self.admit_slowly(body),
        }
    }

    /// Answers a body that the one-pass read refused: a malformed review (HTTP 400), a review
    /// of something else than a pod CREATE (allowed unchanged) or an invalid pod (denied).
    fn admit_slowly(&self, body: &[u8]) -> Admitted {
        let request = match review::parse(body) {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(error = %error, "Rejected a malformed AdmissionReview.");
                return Admitted::new(
                    "bad_request",
                    Some("malformed_review"),
                    format!("malformed AdmissionReview: {error}\n"),
                );
            }
        };
        let (Some(object), true) = (request.object, request.is_pod_create()) else {
            return Admitted::new(
                "skipped",
                None,
                review::allow(&request.uid, &Patch::new(), &[]),
            );
        };
        match Pod::from_json(object.get()) {
            Ok(pod) => self.admit_pod(request.with_object(Some(pod))),
            Err(error) => {
                let message = format!("the pod in the AdmissionReview is not a valid Pod: {error}");
                Admitted::new(
                    "denied",
                    Some("invalid_pod"),
                    review::deny(&request.uid, 400, &message),
                )
            }
        }
    }

    /// Answers a review whose object has been read as a pod.
    fn admit_pod(&self, request: review::Request<'_, Pod<'_>>) -> Admitted {
        let uid = &*request.uid;
        let (Some(pod), true) = (&request.object, request.is_pod_create()) else {
            // The webhook configuration only sends pod CREATEs; anything else passes unchanged.
            return Admitted::new("skipped", None, review::allow(uid, &Patch::new(), &[]));
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
                let result = match mutation.outcome {
                    Outcome::Injected => "injected",
                    Outcome::AlreadyInjected => "already_injected",
                    Outcome::NotRequested => "not_requested",
                };
                if mutation.outcome == Outcome::Injected {
                    tracing::info!(
                        pod = name,
                        namespace,
                        dry_run = request.dry_run,
                        "Injected Keeper secrets delivery."
                    );
                }
                Admitted::new(
                    result,
                    None,
                    review::allow(uid, &mutation.patch, &mutation.warnings),
                )
            }
            Err(error) => {
                tracing::info!(pod = name, namespace, error = %error, "Denied a pod with invalid Keeper annotations.");
                Admitted::new(
                    "denied",
                    Some(error.metric_label()),
                    review::deny(uid, 400, &error.to_string()),
                )
            }
        }
    }
}

/// The answer to one request, with what the metrics record about it.
#[derive(Debug)]
pub struct Admitted {
    pub result: &'static str,
    pub error: Option<&'static str>,
    pub body: Bytes,
}

impl Admitted {
    fn new(result: &'static str, error: Option<&'static str>, body: impl Into<Bytes>) -> Self {
        Self {
            result,
            error,
            body: body.into(),
        }
    }
}

#[cfg(test)]
mod tests;
