//! Tests for the hyper and rustls transport against servers on loopback, over plain HTTP,
//! HTTPS with HTTP/1.1 and HTTPS with HTTP/2.

use std::{convert::Infallible, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, Version};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use object_store::{
    ClientConfigKey, ClientOptions,
    client::{HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequestBody},
};
use rustls::RootCertStore;

use super::{DEFAULT_USER_AGENT, HyperConnector, Settings, SettingsError};
use crate::test_server::{TestServer, full, test_roots};

fn client(roots: RootCertStore, options: &ClientOptions) -> HttpClient {
    HyperConnector::with_roots(roots).connect(options).unwrap()
}

fn request(method: Method, url: &str, body: &'static str) -> Request<HttpRequestBody> {
    Request::builder()
        .method(method)
        .uri(url)
        .body(Bytes::from_static(body.as_bytes()).into())
        .unwrap()
}

/// A server that answers `<method> <path> <version> <user-agent> <body>`.
async fn echo_server(tls: bool) -> TestServer {
    TestServer::start(tls, |request: Request<hyper::body::Incoming>| async move {
        let line = format!(
            "{} {} {:?} {}",
            request.method(),
            request.uri().path(),
            request.version(),
            request.headers()[http::header::USER_AGENT]
                .to_str()
                .unwrap(),
        );
        let body = request.into_body().collect().await.unwrap().to_bytes();
        let body = format!("{line} {}", String::from_utf8_lossy(&body));
        Response::new(full(body))
    })
    .await
}

async fn echo(client: &HttpClient, request: Request<HttpRequestBody>) -> (Version, String) {
    let response = client.execute(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let version = response.version();
    let body = response.into_body().bytes().await.unwrap();
    (version, String::from_utf8(body.to_vec()).unwrap())
}

#[track_caller]
fn assert_kind(
    result: Result<impl std::fmt::Debug, HttpError>,
    expected: HttpErrorKind,
) -> HttpError {
    let error = result.unwrap_err();
    assert_eq!(error.kind(), expected, "{error:?}");
    error
}

#[tokio::test]
async fn plain_http_sends_the_body_and_a_user_agent() {
    let server = echo_server(false).await;
    let client = client(
        RootCertStore::empty(),
        &ClientOptions::new().with_allow_http(true),
    );

    let (version, body) = echo(
        &client,
        request(Method::PUT, &server.url(false, "/b/k"), "hello"),
    )
    .await;

    assert_eq!(version, Version::HTTP_11);
    assert_eq!(
        body,
        format!("PUT /b/k HTTP/1.1 {DEFAULT_USER_AGENT} hello")
    );
}

#[tokio::test]
async fn plain_http_is_refused_without_allow_http_and_never_sent() {
    let server = echo_server(false).await;
    let client = client(test_roots(), &ClientOptions::new());

    let error = assert_kind(
        client
            .execute(request(
                Method::GET,
                &server.url(false, "/b/k?X-Amz-Signature=s"),
                "",
            ))
            .await,
        HttpErrorKind::Unknown,
    );

    let message = format!("{error}");
    assert!(message.contains("refusing plain http"), "{message}");
    assert!(
        !message.contains("Signature"),
        "the query string leaked: {message}"
    );
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn https_speaks_http1_by_default() {
    let server = echo_server(true).await;
    let client = client(test_roots(), &ClientOptions::new());

    let (version, body) = echo(&client, request(Method::GET, &server.url(true, "/b/k"), "")).await;

    assert_eq!(version, Version::HTTP_11);
    assert!(body.starts_with("GET /b/k HTTP/1.1 "), "{body}");
}

#[tokio::test]
async fn https_negotiates_http2_when_allowed() {
    let server = echo_server(true).await;
    let client = client(test_roots(), &ClientOptions::new().with_allow_http2());

    let (version, body) = echo(
        &client,
        request(Method::POST, &server.url(true, "/b/k"), "x"),
    )
    .await;

    assert_eq!(version, Version::HTTP_2);
    assert!(body.starts_with("POST /b/k HTTP/2.0 "), "{body}");
    assert!(body.ends_with(" x"), "{body}");
}

#[tokio::test]
async fn http2_only_works_over_tls_and_plain_tcp() {
    for tls in [true, false] {
        let server = echo_server(tls).await;
        let options = ClientOptions::new().with_http2_only().with_allow_http(true);
        let client = client(test_roots(), &options);

        let (version, _) = echo(&client, request(Method::GET, &server.url(tls, "/"), "")).await;

        assert_eq!(version, Version::HTTP_2, "tls: {tls}");
    }
}

#[tokio::test]
async fn https_to_an_untrusted_certificate_is_a_connect_error() {
    let server = echo_server(true).await;
    let client = client(RootCertStore::empty(), &ClientOptions::new());

    let error = assert_kind(
        client
            .execute(request(Method::GET, &server.url(true, "/"), ""))
            .await,
        HttpErrorKind::Connect,
    );

    let chain = error_chain(&error);
    assert!(chain.contains("UnknownIssuer"), "{chain}");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let client = client(
        RootCertStore::empty(),
        &ClientOptions::new().with_allow_http(true),
    );

    assert_kind(
        client.execute(request(Method::GET, &url, "")).await,
        HttpErrorKind::Connect,
    );
}

#[tokio::test]
async fn the_timeout_covers_waiting_for_the_response() {
    let server = TestServer::start(false, |_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Response::new(full("late"))
    })
    .await;
    let options = ClientOptions::new()
        .with_allow_http(true)
        .with_timeout(Duration::from_millis(200));
    let client = client(RootCertStore::empty(), &options);

    let started = std::time::Instant::now();
    let error = assert_kind(
        client
            .execute(request(Method::GET, &server.url(false, "/"), ""))
            .await,
        HttpErrorKind::Timeout,
    );

    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        format!("{error}"),
        "HTTP error: request timed out after 200ms"
    );
}

#[tokio::test]
async fn the_timeout_covers_the_response_body() {
    // The server sends the headers and one chunk, then stalls.
    let server = TestServer::start(false, |_| async {
        let chunks = futures::stream::iter([Ok::<_, Infallible>(Frame::data(Bytes::from_static(
            b"first",
        )))])
        .chain(futures::stream::pending());
        Response::new(BodyExt::boxed(StreamBody::new(chunks)))
    })
    .await;
    let options = ClientOptions::new()
        .with_allow_http(true)
        .with_timeout(Duration::from_millis(300));
    let client = client(RootCertStore::empty(), &options);

    let response = client
        .execute(request(Method::GET, &server.url(false, "/"), ""))
        .await
        .unwrap();

    // The outer limit turns a missing client timeout into a failure instead of a hang.
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().bytes())
        .await
        .expect("the client timeout did not fire");
    assert_kind(body, HttpErrorKind::Timeout);
}

#[tokio::test]
async fn default_headers_are_added_but_do_not_override() {
    let server = TestServer::start(
        false,
        |request: Request<hyper::body::Incoming>| async move {
            let header = |name: &str| request.headers()[name].to_str().unwrap().to_owned();
            Response::new(full(format!("{} {}", header("x-default"), header("x-set"))))
        },
    )
    .await;
    let mut defaults = http::HeaderMap::new();
    defaults.insert("x-default", "from-options".parse().unwrap());
    defaults.insert("x-set", "from-options".parse().unwrap());
    let options = ClientOptions::new()
        .with_allow_http(true)
        .with_default_headers(defaults);
    let client = client(RootCertStore::empty(), &options);
    let mut request = request(Method::GET, &server.url(false, "/"), "");
    request
        .headers_mut()
        .insert("x-set", "from-request".parse().unwrap());

    let response = client.execute(request).await.unwrap();
    let body = response.into_body().bytes().await.unwrap();

    assert_eq!(&body[..], b"from-options from-request");
}

#[test]
fn settings_follow_object_store_defaults() {
    let settings = Settings::from_options(&ClientOptions::new()).unwrap();

    assert!(!settings.allow_http);
    assert!(settings.http1_only);
    assert!(!settings.http2_only);
    assert_eq!(settings.timeout, Some(Duration::from_secs(30)));
    assert_eq!(settings.connect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(settings.user_agent, DEFAULT_USER_AGENT);
}

#[test]
fn settings_parse_the_strings_object_store_keeps() {
    let options = ClientOptions::new()
        .with_config(ClientConfigKey::Timeout, "2 minutes")
        .with_config(ClientConfigKey::AllowHttp, "yes")
        .with_config(ClientConfigKey::PoolMaxIdlePerHost, "4")
        .with_config(ClientConfigKey::UserAgent, "archiver/1");

    let settings = Settings::from_options(&options).unwrap();

    assert_eq!(settings.timeout, Some(Duration::from_secs(120)));
    assert!(settings.allow_http);
    assert_eq!(settings.pool_max_idle_per_host, Some(4));
    assert_eq!(settings.user_agent, "archiver/1");
}

#[test]
fn settings_name_the_invalid_option() {
    let options = ClientOptions::new().with_config(ClientConfigKey::Http1Only, "maybe");

    let error = Settings::from_options(&options).unwrap_err();

    assert_eq!(
        error.to_string(),
        r#"client option http1_only has the invalid value "maybe": expected a boolean"#
    );
}

#[test]
fn options_the_client_cannot_honour_are_refused() {
    let refused = [
        ClientOptions::new().with_proxy_url("http://127.0.0.1:3128"),
        ClientOptions::new().with_allow_invalid_certificates(true),
        ClientOptions::new().with_read_timeout(Duration::from_secs(1)),
    ];
    for options in refused {
        assert!(
            matches!(
                Settings::from_options(&options),
                Err(SettingsError::Unsupported { .. })
            ),
            "{options:?}"
        );
        let error = HyperConnector::with_roots(RootCertStore::empty())
            .connect(&options)
            .unwrap_err();
        assert!(
            matches!(error, object_store::Error::NotSupported { .. }),
            "{error:?}"
        );
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = format!("{error}");
    let mut next = error.source();
    while let Some(error) = next {
        chain.push_str(&format!(": {error:?}"));
        next = error.source();
    }
    chain
}
