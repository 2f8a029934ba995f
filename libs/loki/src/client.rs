//! One `query_range` or `/ready` request to Loki, over hyper and rustls, with the tenant,
//! extra headers and authentication the config gives.

use std::sync::Arc;
use std::time::Duration;

use bulwark_config::Secret;
use bulwark_sentinel::model::Labels;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::wire;

/// The largest answer read: a page of 5,000 lines of up to 10 KiB each, with room to spare.
const MAX_ANSWER: usize = 64 * 1024 * 1024;

/// How to reach Loki.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `http://host:3100`, or a gateway's URL with a path prefix.
    pub url: String,
    /// Sent as `X-Scope-OrgID`; `a|b` queries several tenants.
    pub tenant_id: Option<String>,
    /// Extra headers, sent as given.
    pub headers: Vec<(String, String)>,
    pub auth: Option<Auth>,
    pub timeout: Duration,
}

/// Credentials for a proxy or gateway in front of Loki (Loki itself has none).
#[derive(Debug, Clone)]
pub enum Auth {
    Basic { username: String, password: Secret },
    Bearer(Secret),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("cannot reach Loki at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("Loki did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Loki answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Loki's answer is not a log query result: {0}")]
    Protocol(String),
    #[error("invalid Loki settings: {0}")]
    Settings(String),
}

impl Error {
    /// Whether trying again later may succeed: unreachable, too slow, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. } | Self::Timeout(_) => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Protocol(_) | Self::Settings(_) => false,
        }
    }

    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "connect",
            Self::Timeout(_) => "timeout",
            Self::Status { status: 429, .. } => "throttled",
            Self::Status { status, .. } if *status >= 500 => "server_error",
            Self::Status { .. } => "rejected",
            Self::Protocol(_) => "protocol",
            Self::Settings(_) => "settings",
        }
    }
}

/// Which end of the range a page starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// One log line as Loki returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ts_ns: i64,
    pub labels: Arc<Labels>,
    pub line: String,
}

/// A Loki client.
#[derive(Debug, Clone)]
pub struct Client {
    http: HttpClient<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    base: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

impl Client {
    /// A client for `settings`; bad header names or values are refused here.
    pub fn new(settings: &Settings) -> Result<Self, Error> {
        let tls = bulwark_http::client_config(None).map_err(|e| Error::Settings(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(2)
            .build(connector);
        let mut headers = vec![(ACCEPT, HeaderValue::from_static("application/json"))];
        if let Some(tenant) = &settings.tenant_id {
            headers.push((
                HeaderName::from_static("x-scope-orgid"),
                value("tenant_id", tenant)?,
            ));
        }
        for (name, v) in &settings.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| Error::Settings(format!("{name:?} is not a header name")))?;
            headers.push((name, value("headers", v)?));
        }
        if let Some(auth) = &settings.auth {
            let text = match auth {
                Auth::Basic { username, password } => {
                    use base64::Engine;
                    let pair = format!("{username}:{}", password.expose());
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    )
                }
                Auth::Bearer(token) => format!("Bearer {}", token.expose()),
            };
            let mut v = HeaderValue::try_from(text)
                .map_err(|_| Error::Settings("the credentials are not a valid header".into()))?;
            v.set_sensitive(true);
            headers.push((AUTHORIZATION, v));
        }
        let base = settings.url.trim_end_matches('/').to_owned();
        base.parse::<Uri>()
            .map_err(|e| Error::Settings(format!("url {base:?}: {e}")))?;
        Ok(Self {
            http,
            base,
            headers,
            timeout: settings.timeout,
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// Lines matching `query` with `start_ns <= ts < end_ns`, at most `limit` of them from
    /// the `direction` end, merged across streams in (timestamp, labels, line) order.
    pub async fn query_range(
        &self,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        limit: u32,
        direction: Direction,
    ) -> Result<Vec<Entry>, Error> {
        let params = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", query)
            .append_pair("start", &rfc3339(start_ns))
            .append_pair("end", &rfc3339(end_ns))
            .append_pair("limit", &limit.to_string())
            .append_pair(
                "direction",
                match direction {
                    Direction::Forward => "forward",
                    Direction::Backward => "backward",
                },
            )
            .finish();
        let body = self
            .get(&format!("{}/loki/api/v1/query_range?{params}", self.base))
            .await?;
        let answer: wire::Answer =
            serde_json::from_slice(&body).map_err(|e| Error::Protocol(e.to_string()))?;
        if answer.status != "success" {
            return Err(Error::Protocol(format!(
                "status {:?}: {}",
                answer.status,
                answer.error.unwrap_or_default()
            )));
        }
        let data = answer
            .data
            .ok_or_else(|| Error::Protocol("no data".into()))?;
        if data.result_type != "streams" {
            return Err(Error::Protocol(format!(
                "resultType {:?}: the query must be a log query, not a metric query",
                data.result_type
            )));
        }
        let mut entries = Vec::new();
        for s in data.result {
            let labels = Arc::new(Labels::new(s.stream));
            entries.extend(s.values.into_iter().map(|v| Entry {
                ts_ns: v.ts_ns,
                labels: Arc::clone(&labels),
                line: v.line,
            }));
        }
        // Loki orders lines within a stream only; merge the streams.
        entries.sort_unstable_by(|a, b| {
            (a.ts_ns, &a.labels, &a.line).cmp(&(b.ts_ns, &b.labels, &b.line))
        });
        Ok(entries)
    }

    /// Loki's `/ready`.
    pub async fn ready(&self) -> Result<(), Error> {
        self.get(&format!("{}/ready", self.base)).await.map(drop)
    }

    async fn get(&self, url: &str) -> Result<Bytes, Error> {
        let mut request = Request::get(url);
        for (k, v) in &self.headers {
            request = request.header(k, v);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| Error::Settings(e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| Error::Connect {
                    url: self.base.clone(),
                    message: bulwark_http::error_chain(&e),
                })?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|e| Error::Protocol(format!("reading the answer: {e}")))?
                .to_bytes();
            if !(200..300).contains(&status) {
                let text = String::from_utf8_lossy(&body[..body.len().min(512)])
                    .trim()
                    .to_owned();
                return Err(Error::Status { status, body: text });
            }
            Ok(body)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout(self.timeout))?
    }
}

/// Loki reads an integer of up to 10 digits as seconds and a longer one as nanoseconds
/// (`loghttp`'s `parseTimestamp`); RFC 3339 with nanoseconds means one thing at any time.
fn rfc3339(ns: i64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map_or_else(|_| ns.to_string(), |t| format!("{t:.9}"))
}

fn value(field: &str, v: &str) -> Result<HeaderValue, Error> {
    HeaderValue::try_from(v)
        .map_err(|_| Error::Settings(format!("{field}: {v:?} is not a valid header value")))
}
