//! GCP Secret Manager through the metadata server's token.

use bulwark_cloud::{Error, Location};
use bulwark_test_util::cloud::FakeGcp;

use super::{CONFIG, client, env};

#[tokio::test]
async fn fetches_the_latest_or_a_given_version_with_the_metadata_token() {
    let gcp = FakeGcp::start().unwrap();
    gcp.add_version("projects/acme/secrets/ksm", b"first");
    gcp.add_version("projects/acme/secrets/ksm", CONFIG.as_bytes());
    let env = env(&[
        ("GCE_METADATA_HOST", &gcp.metadata_host()),
        ("BULWARK_GCP_SECRET_MANAGER_URL", &gcp.secret_manager_url()),
    ]);
    let client = client(Some(gcp.ca_pem()));
    let at = |id: &str| Location::Gcp {
        secret_id: id.to_owned(),
    };
    let latest = client
        .fetch(&at("projects/acme/secrets/ksm"), &env)
        .await
        .unwrap();
    assert_eq!(latest.expose(), CONFIG);
    let first = client
        .fetch(&at("projects/acme/secrets/ksm/versions/1"), &env)
        .await
        .unwrap();
    assert_eq!(first.expose(), "first");

    // What the services saw: the metadata header, and the token it issued as a bearer.
    let requests = gcp.requests();
    let metadata = &requests[0];
    assert_eq!(metadata.headers["metadata-flavor"], "Google");
    let access = &requests[1];
    assert_eq!(
        access.target,
        "/v1/projects/acme/secrets/ksm/versions/latest:access"
    );
    assert!(access.headers["authorization"].starts_with("Bearer ya29."));

    let missing = client
        .fetch(&at("projects/acme/secrets/nope"), &env)
        .await
        .unwrap_err();
    assert!(
        matches!(&missing, Error::Refused { status: 404, code, .. } if code == "NOT_FOUND"),
        "{missing}"
    );
    assert!(!missing.is_transient());
    assert!(
        missing.to_string().contains("projects/acme/secrets/nope"),
        "{missing}"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_or_a_malformed_name_is_refused() {
    let gcp = FakeGcp::start().unwrap();
    gcp.add_version("projects/acme/secrets/ksm", CONFIG.as_bytes());
    let env = env(&[
        ("GCE_METADATA_HOST", &gcp.metadata_host()),
        ("BULWARK_GCP_SECRET_MANAGER_URL", &gcp.secret_manager_url()),
    ]);
    let at = Location::Gcp {
        secret_id: "projects/acme/secrets/ksm".to_owned(),
    };
    // Without the fake's CA, TLS verification fails: the platform roots do not know it.
    let error = client(None).fetch(&at, &env).await.unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    let bad = Location::Gcp {
        secret_id: "ksm".to_owned(),
    };
    let error = client(Some(gcp.ca_pem()))
        .fetch(&bad, &env)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Setup { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("projects/PROJECT/secrets/SECRET"),
        "{error}"
    );
}
