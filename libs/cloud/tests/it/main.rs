//! `bulwark-cloud` against the services it talks to: moto for AWS (which checks every
//! signature with botocore's signer and the caller's IAM policies), and the fakes in
//! `bulwark-test-util` for GCP and Azure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod aws;
mod azure;
mod gcp;

use std::collections::HashMap;
use std::time::Duration;

/// A KSM configuration, as it is stored.
const CONFIG: &str =
    r#"{"hostname":"keepersecurity.com","clientId":"x","privateKey":"y","appKey":"z"}"#;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn client(ca_pem: Option<&str>) -> bulwark_cloud::Client {
    bulwark_cloud::Client::new(ca_pem.map(str::as_bytes), Duration::from_secs(10)).unwrap()
}
