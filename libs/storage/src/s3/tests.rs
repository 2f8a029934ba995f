//! Tests for the S3 store's wiring: credentials, the private CA bundle, and a signed request
//! over HTTPS with HTTP/1.1 to a loopback server.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use bulwark_config::Secret;
use http::{Request, Response};
use hyper::body::Incoming;
use object_store::{ObjectStoreExt, path::Path};
use rustls::RootCertStore;

use super::{S3Credentials, S3Options, add_ca_bundle, s3};
use crate::{
    Error,
    test_server::{TestServer, full},
};

fn data(name: &str) -> PathBuf {
    // Relative to the package root, where cargo runs tests.
    PathBuf::from("tests/data").join(name)
}

fn credentials() -> S3Credentials {
    S3Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI"),
        session_token: None,
    }
}

#[test]
fn options_never_print_the_secret() {
    let options = S3Options {
        bucket: "audit".into(),
        credentials: Some(credentials()),
        ..S3Options::default()
    };

    let printed = format!("{options:?}");

    assert!(printed.contains("AKIDEXAMPLE"), "{printed}");
    assert!(!printed.contains("wJalrXUtnFEMI"), "{printed}");
}

#[test]
fn a_ca_bundle_adds_its_certificates() {
    let mut roots = RootCertStore::empty();

    add_ca_bundle(&mut roots, &data("ca.pem")).unwrap();

    assert_eq!(roots.len(), 1);
}

#[test]
fn a_ca_bundle_must_exist_and_hold_a_certificate() {
    let mut roots = RootCertStore::empty();

    let missing = add_ca_bundle(&mut roots, &data("missing.pem")).unwrap_err();
    // A private key is PEM, but not a certificate.
    let empty = add_ca_bundle(&mut roots, &data("server.key")).unwrap_err();

    assert!(matches!(missing, Error::ReadCaBundle { .. }), "{missing:?}");
    assert!(matches!(empty, Error::EmptyCaBundle { .. }), "{empty:?}");
    assert!(
        empty
            .to_string()
            .ends_with("server.key holds no usable certificate")
    );
}

#[tokio::test]
async fn gets_an_object_over_https_from_an_endpoint_with_a_private_ca() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&seen);
    let server = TestServer::start(true, move |request: Request<Incoming>| {
        let recorder = Arc::clone(&recorder);
        async move {
            let authorization = request.headers()[http::header::AUTHORIZATION]
                .to_str()
                .unwrap();
            recorder.lock().unwrap().push(format!(
                "{} {} {:?} {}",
                request.method(),
                request.uri().path(),
                request.version(),
                authorization.split_whitespace().next().unwrap(),
            ));
            Response::builder()
                .header("etag", "\"1\"")
                .header("last-modified", "Tue, 01 Jul 2025 00:00:00 GMT")
                .body(full("archived rows"))
                .unwrap()
        }
    })
    .await;
    let store = s3(&S3Options {
        bucket: "audit".into(),
        endpoint: Some(server.url(true, "")),
        region: Some("eu-west-1".into()),
        credentials: Some(credentials()),
        ca_bundle: Some(data("ca.pem")),
        ..S3Options::default()
    })
    .unwrap();

    let body = store
        .get(&Path::from("db/table/part-1.jsonl"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    assert_eq!(&body[..], b"archived rows");
    assert_eq!(
        *seen.lock().unwrap(),
        ["GET /audit/db/table/part-1.jsonl HTTP/1.1 AWS4-HMAC-SHA256"]
    );
}
