//! The one HTTP client of the cloud fetchers: hyper on rustls (the workspace's client TLS, with
//! the pod's extra CAs), HTTPS everywhere except the node-local metadata and credential
//! endpoints, which are plain HTTP by design, and endpoints an operator overrides.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use serde::de::DeserializeOwned;

use crate::Error;

/// Makes a service's error from an answer that is not a success: its status and body.
pub(crate) type ErrorOf = fn(&'static str, u16, &[u8]) -> Error;

/// An OAuth 2 token answer (the GCP metadata server's, Entra ID's).
#[derive(serde::Deserialize)]
pub(crate) struct OAuthToken {
    pub(crate) access_token: String,
}

/// The largest answer we read: a KSM configuration is a few hundred bytes, a token a few KiB.
const MAX_RESPONSE: usize = 1024 * 1024;

pub(crate) struct Http {
    client: HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

/// An answer: its status and body.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Response {
    pub(crate) fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

impl Http {
    pub(crate) fn new(ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Self, Error> {
        let tls = bulwark_http::client_config(ca_pem).map_err(|e| Error::Ca(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let client = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Self { client, timeout })
    }

    /// Sends one request to `service` and reads a JSON answer as `T`; an answer that is not a
    /// success becomes the service's error through `error_of`.
    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        service: &'static str,
        request: (Method, &Uri),
        headers: &[(&str, &str)],
        body: Vec<u8>,
        error_of: ErrorOf,
    ) -> Result<T, Error> {
        let (method, url) = request;
        let response = self.send(service, method, url, headers, body).await?;
        if !response.ok() {
            return Err(error_of(service, response.status, &response.body));
        }
        serde_json::from_slice(&response.body).map_err(|e| Error::Protocol {
            service,
            message: format!("{}: {e}", url.path()),
        })
    }

    /// Sends one request to `service` and reads the answer, whatever its status.
    pub(crate) async fn send(
        &self,
        service: &'static str,
        method: Method,
        url: &Uri,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Response, Error> {
        let mut request = Request::builder().method(method).uri(url.clone());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Error::Setup {
                service,
                message: format!("cannot build the request to {url}: {e}"),
            })?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Error::Unreachable {
                    service,
                    url: url.to_string(),
                    message: bulwark_http::error_chain(&e),
                })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| Error::Unreachable {
                    service,
                    url: url.to_string(),
                    message: format!("reading the answer: {e}"),
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                service,
                url: url.to_string(),
                timeout: self.timeout,
            })?
    }
}

/// `url` parsed, for `service`; an operator's override that is not a URL is a setup error.
pub(crate) fn uri(service: &'static str, url: &str) -> Result<Uri, Error> {
    let uri: Uri = url.parse().map_err(|e| Error::Setup {
        service,
        message: format!("{url:?} is not a URL: {e}"),
    })?;
    if uri.host().is_none() || !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(Error::Setup {
            service,
            message: format!("{url:?} is not an http(s) URL"),
        });
    }
    Ok(uri)
}

/// `base` (an endpoint, perhaps with a path and a trailing slash) joined with `path`.
pub(crate) fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// A service's error from a JSON body whose code and message are at the JSON pointers `code`
/// and `message`; the start of the body when it has neither.
pub(crate) fn json_error(
    service: &'static str,
    status: u16,
    body: &[u8],
    code: &str,
    message: &str,
) -> Error {
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let text = |pointer: &str| value.pointer(pointer).and_then(serde_json::Value::as_str);
    Error::from_status(
        service,
        status,
        text(code).unwrap_or_default().to_owned(),
        text(message)
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
    )
}
