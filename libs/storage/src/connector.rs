//! object_store's HTTP transport on hyper-util's pooled client and rustls with the ring provider.
//!
//! object_store's own transport (its `aws`, `gcp` and `azure` features) is reqwest on aws-lc-rs.
//! The workspace has one TLS stack, so the stores are built from the `*-base` features and get
//! their HTTP client from [`HyperConnector`] instead.
//!
//! The client honours these [`ClientOptions`]: `allow_http`, `http1_only`, `http2_only`,
//! `timeout` (from the start of the request until the end of the response body),
//! `connect_timeout`, `pool_idle_timeout`, `pool_max_idle_per_host`, the HTTP/2 keep-alive
//! options, `http2_max_frame_size`, `user_agent` and the default headers. It refuses `proxy_url`,
//! `allow_invalid_certificates` and `read_timeout` rather than ignore them, and ignores the
//! DNS shuffling (`randomize_addresses`) and the reqwest-only root certificate options.

use std::{
    error::Error as StdError,
    fmt, io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue,
    header::USER_AGENT,
    uri::{Scheme, Uri},
};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector as TcpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use object_store::{
    ClientConfigKey, ClientOptions,
    client::{
        HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
        HttpResponse, HttpResponseBody, HttpService,
    },
};
use rustls::RootCertStore;
use tokio::time::{Instant, Sleep};

/// The `User-Agent` sent when [`ClientOptions`] sets none.
const DEFAULT_USER_AGENT: &str = concat!("bulwark-storage/", env!("CARGO_PKG_VERSION"));

/// Builds object_store HTTP clients on hyper and rustls (ring), trusting a fixed set of roots.
///
/// Pass it to a store builder's `with_http_connector`. Every client it makes keeps its own
/// connection pool, so build a store once and share it.
#[derive(Clone)]
pub struct HyperConnector {
    roots: Arc<RootCertStore>,
}

impl HyperConnector {
    /// A connector that trusts the platform's CA certificates (see [`platform_roots`]).
    pub fn new() -> Self {
        Self::with_roots(platform_roots())
    }

    /// A connector that trusts exactly `roots`: a private CA, or a test CA.
    pub fn with_roots(roots: RootCertStore) -> Self {
        Self {
            roots: Arc::new(roots),
        }
    }
}

impl Default for HyperConnector {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HyperConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperConnector")
            .field("roots", &self.roots.len())
            .finish()
    }
}

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let settings = Settings::from_options(options).map_err(|error| match error {
            SettingsError::Unsupported { .. } => object_store::Error::NotSupported {
                source: Box::new(error),
            },
            SettingsError::Invalid { .. } => object_store::Error::Generic {
                store: "HTTP client",
                source: Box::new(error),
            },
        })?;
        let service = HyperService::new(settings, Arc::clone(&self.roots)).map_err(|source| {
            object_store::Error::Generic {
                store: "HTTP client",
                source: Box::new(source),
            }
        })?;
        Ok(HttpClient::new(service))
    }
}

/// The platform's CA certificates: the system bundle, or the files named by `SSL_CERT_FILE` and
/// `SSL_CERT_DIR` (read by `rustls-native-certs`).
///
/// An empty store is returned, with a warning, when the platform has none: plain HTTP endpoints
/// still work, and HTTPS fails with an unknown-issuer error that names the problem.
pub fn platform_roots() -> RootCertStore {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(loaded.certs);
    if let Some(error) = loaded.errors.first() {
        tracing::warn!(
            message = "Some platform CA certificates could not be loaded.",
            %error,
            errors = loaded.errors.len(),
        );
    }
    if added == 0 {
        tracing::warn!(
            message =
                "No platform CA certificates found; HTTPS object storage endpoints will fail.",
            ignored,
        );
    }
    roots
}

/// What a client is configured to do, read once from [`ClientOptions`].
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    allow_http: bool,
    http1_only: bool,
    http2_only: bool,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: Option<usize>,
    http2_keep_alive_interval: Option<Duration>,
    http2_keep_alive_timeout: Option<Duration>,
    http2_keep_alive_while_idle: bool,
    http2_max_frame_size: Option<u32>,
    user_agent: HeaderValue,
    default_headers: HeaderMap,
}

#[derive(Debug, thiserror::Error)]
enum SettingsError {
    #[error("client option {key} has the invalid value {value:?}: expected {expected}")]
    Invalid {
        key: String,
        value: String,
        expected: &'static str,
    },
    #[error("client option {key} is not supported by the bulwark-storage http client")]
    Unsupported { key: String },
}

impl Settings {
    fn from_options(options: &ClientOptions) -> Result<Self, SettingsError> {
        for key in [ClientConfigKey::ProxyUrl, ClientConfigKey::ReadTimeout] {
            if options.get_config_value(&key).is_some() {
                return Err(SettingsError::Unsupported {
                    key: key.as_ref().to_owned(),
                });
            }
        }
        if flag(options, ClientConfigKey::AllowInvalidCertificates)? {
            return Err(SettingsError::Unsupported {
                key: ClientConfigKey::AllowInvalidCertificates
                    .as_ref()
                    .to_owned(),
            });
        }
        let user_agent = match options.get_config_value(&ClientConfigKey::UserAgent) {
            Some(agent) => HeaderValue::try_from(agent.as_str())
                .map_err(|_| invalid(ClientConfigKey::UserAgent, &agent, "a valid header value"))?,
            None => HeaderValue::from_static(DEFAULT_USER_AGENT),
        };
        Ok(Self {
            allow_http: flag(options, ClientConfigKey::AllowHttp)?,
            http1_only: flag(options, ClientConfigKey::Http1Only)?,
            http2_only: flag(options, ClientConfigKey::Http2Only)?,
            timeout: duration(options, ClientConfigKey::Timeout)?,
            connect_timeout: duration(options, ClientConfigKey::ConnectTimeout)?,
            pool_idle_timeout: duration(options, ClientConfigKey::PoolIdleTimeout)?,
            pool_max_idle_per_host: number(options, ClientConfigKey::PoolMaxIdlePerHost)?,
            http2_keep_alive_interval: duration(options, ClientConfigKey::Http2KeepAliveInterval)?,
            http2_keep_alive_timeout: duration(options, ClientConfigKey::Http2KeepAliveTimeout)?,
            http2_keep_alive_while_idle: flag(options, ClientConfigKey::Http2KeepAliveWhileIdle)?,
            http2_max_frame_size: number(options, ClientConfigKey::Http2MaxFrameSize)?,
            user_agent,
            default_headers: options.get_default_headers().cloned().unwrap_or_default(),
        })
    }
}

fn invalid(key: ClientConfigKey, value: &str, expected: &'static str) -> SettingsError {
    SettingsError::Invalid {
        key: key.as_ref().to_owned(),
        value: value.to_owned(),
        expected,
    }
}

/// Reads a boolean option; object_store accepts the same spellings.
fn flag(options: &ClientOptions, key: ClientConfigKey) -> Result<bool, SettingsError> {
    let Some(value) = options.get_config_value(&key) else {
        return Ok(false);
    };
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "on" | "yes" | "y" => Ok(true),
        "0" | "false" | "off" | "no" | "n" => Ok(false),
        _ => Err(invalid(key, &value, "a boolean")),
    }
}

/// Reads a duration option. object_store renders parsed durations with humantime
/// (`30s`), and keeps user-supplied strings as written, so humantime parses both.
fn duration(
    options: &ClientOptions,
    key: ClientConfigKey,
) -> Result<Option<Duration>, SettingsError> {
    options
        .get_config_value(&key)
        .map(|value| {
            humantime::parse_duration(&value)
                .map_err(|_| invalid(key, &value, "a duration such as 30s"))
        })
        .transpose()
}

fn number<T: std::str::FromStr>(
    options: &ClientOptions,
    key: ClientConfigKey,
) -> Result<Option<T>, SettingsError> {
    options
        .get_config_value(&key)
        .map(|value| {
            value
                .parse()
                .map_err(|_| invalid(key, &value, "a non-negative integer"))
        })
        .transpose()
}

/// One pooled hyper client, as object_store's [`HttpService`].
struct HyperService {
    client: Client<HttpsConnector<TcpConnector>, HttpRequestBody>,
    settings: Settings,
}

impl HyperService {
    fn new(settings: Settings, roots: Arc<RootCertStore>) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let mut tcp = TcpConnector::new();
        // The TLS layer sees `https` URIs, so the TCP layer must not insist on `http`.
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(settings.connect_timeout);

        let builder = HttpsConnectorBuilder::new().with_tls_config(tls);
        // `call` refuses plain HTTP before it reaches the connector, with an error object_store
        // does not retry; `https_only` is the second line of defence.
        let builder = if settings.allow_http {
            builder.https_or_http()
        } else {
            builder.https_only()
        };
        let https = if settings.http2_only {
            builder.enable_http2().wrap_connector(tcp)
        } else if settings.http1_only {
            builder.enable_http1().wrap_connector(tcp)
        } else {
            builder.enable_all_versions().wrap_connector(tcp)
        };

        let mut client = Client::builder(TokioExecutor::new());
        client
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .http2_only(settings.http2_only)
            .http2_keep_alive_while_idle(settings.http2_keep_alive_while_idle)
            .http2_max_frame_size(settings.http2_max_frame_size);
        if let Some(timeout) = settings.pool_idle_timeout {
            client.pool_idle_timeout(timeout);
        }
        if let Some(max) = settings.pool_max_idle_per_host {
            client.pool_max_idle_per_host(max);
        }
        if let Some(interval) = settings.http2_keep_alive_interval {
            client.http2_keep_alive_interval(interval);
        }
        if let Some(timeout) = settings.http2_keep_alive_timeout {
            client.http2_keep_alive_timeout(timeout);
        }

        Ok(Self {
            client: client.build(https),
            settings,
        })
    }
}

impl fmt::Debug for HyperService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl HttpService for HyperService {
    async fn call(&self, mut request: HttpRequest) -> Result<HttpResponse, HttpError> {
        if request.uri().scheme() == Some(&Scheme::HTTP) && !self.settings.allow_http {
            // object_store never retries `Unknown`, and retrying a refused scheme cannot help.
            return Err(HttpError::new(
                HttpErrorKind::Unknown,
                TransportError::PlainHttp(redact(request.uri())),
            ));
        }
        let headers = request.headers_mut();
        for name in self.settings.default_headers.keys() {
            if !headers.contains_key(name) {
                for value in self.settings.default_headers.get_all(name) {
                    headers.append(name.clone(), value.clone());
                }
            }
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.settings.user_agent.clone());
        }

        let deadline = self
            .settings
            .timeout
            .map(|timeout| (Instant::now() + timeout, timeout));
        let response = self.client.request(request);
        let response = match deadline {
            Some((deadline, timeout)) => tokio::time::timeout_at(deadline, response)
                .await
                .map_err(|_| {
                    HttpError::new(HttpErrorKind::Timeout, TransportError::Timeout(timeout))
                })?,
            None => response.await,
        }
        .map_err(|error| HttpError::new(classify(&error), error))?;

        let (parts, body) = response.into_parts();
        let body = ResponseBody {
            inner: body,
            deadline: deadline
                .map(|(deadline, timeout)| (Box::pin(tokio::time::sleep_until(deadline)), timeout)),
        };
        Ok(HttpResponse::from_parts(parts, HttpResponseBody::new(body)))
    }
}

/// The scheme, host and port of a URI: enough to say where, without query strings that may
/// carry presigned credentials.
fn redact(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
        _ => String::from("<relative uri>"),
    }
}

#[derive(Debug, thiserror::Error)]
enum TransportError {
    #[error("refusing plain http to {0}: the store does not allow http")]
    PlainHttp(String),
    #[error("request timed out after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

/// A response body that fails with [`HttpErrorKind::Timeout`] once the request's deadline passes.
struct ResponseBody {
    inner: Incoming,
    deadline: Option<(Pin<Box<Sleep>>, Duration)>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        // Data that has already arrived wins over the deadline.
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(
                frame.map(|frame| frame.map_err(|error| HttpError::new(classify(&error), error))),
            );
        }
        if let Some((sleep, timeout)) = &mut this.deadline
            && sleep.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(HttpError::new(
                HttpErrorKind::Timeout,
                TransportError::Timeout(*timeout),
            ))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Sorts a transport failure into object_store's retry classes.
///
/// `Connect` and `Request` mean the request never reached the server and are always retried;
/// `Timeout` and `Interrupted` are retried only for idempotent requests; `Unknown` never is.
fn classify(error: &(dyn StdError + 'static)) -> HttpErrorKind {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(error) = error.downcast_ref::<hyper_util::client::legacy::Error>()
            && error.is_connect()
        {
            return HttpErrorKind::Connect;
        }
        if let Some(error) = error.downcast_ref::<hyper::Error>() {
            // hyper reports a request as canceled only when it was never written.
            if error.is_canceled() {
                return HttpErrorKind::Request;
            }
            if error.is_timeout() {
                return HttpErrorKind::Timeout;
            }
            if error.is_closed() || error.is_incomplete_message() || error.is_body_write_aborted() {
                return HttpErrorKind::Interrupted;
            }
        }
        if let Some(error) = error.downcast_ref::<io::Error>() {
            match error.kind() {
                io::ErrorKind::TimedOut => return HttpErrorKind::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => return HttpErrorKind::Interrupted,
                _ => {}
            }
        }
        next = error.source();
    }
    HttpErrorKind::Unknown
}

#[cfg(test)]
mod tests;
