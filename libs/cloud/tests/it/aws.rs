//! AWS Secrets Manager on a moto server of its own that checks every signature (botocore's
//! signer) and evaluates the caller's IAM policies, with IRSA, EKS Pod Identity and static
//! credentials.

use std::io::{Read, Write};
use std::net::TcpListener;

use bulwark_cloud::{Error, Location};
use bulwark_test_util::moto::MotoServer;

use super::{CONFIG, client, env};

const ACCOUNT: &str = "123456789012";

/// The text between `<tag>` and `</tag>` in moto's XML.
fn element(xml: &str, tag: &str) -> String {
    let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    xml[start..end].to_owned()
}

/// A policy allowing `action` on every secret (moto authorizes Secrets Manager calls against
/// the resource `*`).
fn policy(action: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"*"}}]}}"#
    )
}

/// Serves one EKS Pod Identity credentials request: answers `credentials` when the request
/// carries `token` in its Authorization header, 401 otherwise. Returns the agent's URL.
fn pod_identity_agent(token: &'static str, credentials: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/credentials", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = vec![0; 8192];
        let n = stream.read(&mut request).unwrap();
        let request = String::from_utf8_lossy(&request[..n]).to_lowercase();
        let (status, body) =
            if request.contains(&format!("\r\nauthorization: {}\r\n", token.to_lowercase())) {
                ("200 OK", credentials)
            } else {
                ("401 Unauthorized", r#"{"code":"InvalidToken"}"#.to_owned())
            };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_secret_value_is_signed_and_authorized_for_each_identity() {
    let moto = tokio::task::spawn_blocking(MotoServer::start)
        .await
        .unwrap()
        .unwrap();
    // Setup, before moto checks anything: a role for IRSA that may read secrets and one that
    // may only list them, a user for static and Pod Identity credentials, and a secret.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
    let read = policy("secretsmanager:GetSecretValue");
    for (role, policy) in [
        ("keeper-reader", read.clone()),
        ("keeper-lister", policy("secretsmanager:ListSecrets")),
    ] {
        moto.aws(
            "iam",
            None,
            &[
                ("Action", "CreateRole"),
                ("Version", "2010-05-08"),
                ("RoleName", role),
                ("AssumeRolePolicyDocument", trust),
            ],
            None,
        )
        .unwrap();
        moto.aws(
            "iam",
            None,
            &[
                ("Action", "PutRolePolicy"),
                ("Version", "2010-05-08"),
                ("RoleName", role),
                ("PolicyName", "ksm"),
                ("PolicyDocument", &policy),
            ],
            None,
        )
        .unwrap();
    }
    let policy = read;
    moto.aws(
        "iam",
        None,
        &[
            ("Action", "CreateUser"),
            ("Version", "2010-05-08"),
            ("UserName", "sidecar"),
        ],
        None,
    )
    .unwrap();
    moto.aws(
        "iam",
        None,
        &[
            ("Action", "PutUserPolicy"),
            ("Version", "2010-05-08"),
            ("UserName", "sidecar"),
            ("PolicyName", "read-ksm"),
            ("PolicyDocument", &policy),
        ],
        None,
    )
    .unwrap();
    let key = moto
        .aws(
            "iam",
            None,
            &[
                ("Action", "CreateAccessKey"),
                ("Version", "2010-05-08"),
                ("UserName", "sidecar"),
            ],
            None,
        )
        .unwrap();
    let (key_id, secret_key) = (
        element(&key, "AccessKeyId"),
        element(&key, "SecretAccessKey"),
    );
    let body = serde_json::json!({"Name": "ksm-config", "SecretString": CONFIG}).to_string();
    moto.aws(
        "secretsmanager",
        Some("secretsmanager.CreateSecret"),
        &[],
        Some(&body),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOlsic3RzLmFtYXpvbmF3cy5jb20iXX0.c2ln",
    )
    .unwrap();
    let irsa = |role: &str| {
        env(&[
            (
                "AWS_ROLE_ARN",
                &format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
            ),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
            ("AWS_ENDPOINT_URL", moto.endpoint()),
            ("AWS_REGION", "us-east-1"),
        ])
    };
    let client = client(None);
    let at = |id: &str| Location::Aws {
        secret_id: id.to_owned(),
        region: None,
    };

    // IRSA: STS (which takes no signature) is the one request moto lets through unchecked;
    // GetSecretValue is then checked against the assumed role's credentials and policy.
    moto.enforce_auth_after(1).unwrap();
    let secret = client
        .fetch(&at("ksm-config"), &irsa("keeper-reader"))
        .await
        .unwrap();
    assert_eq!(secret.expose(), CONFIG);
    moto.enforce_auth_after(1).unwrap();
    let denied = client
        .fetch(&at("ksm-config"), &irsa("keeper-lister"))
        .await
        .unwrap_err();
    assert!(
        matches!(&denied, Error::Refused { status: 403, code, .. } if code.starts_with("AccessDenied")),
        "{denied}"
    );
    assert!(!denied.is_transient());

    // Static credentials: every request checked from here on.
    moto.enforce_auth_after(0).unwrap();
    let static_env = |secret: &str| {
        env(&[
            ("AWS_ACCESS_KEY_ID", &key_id),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", moto.endpoint()),
        ])
    };
    // The region comes from the ARN when the annotation gives none.
    let arn = format!("arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ksm-config");
    let secret = client.fetch(&at(&arn), &static_env(&secret_key)).await;
    // moto resolves a partial ARN (without its random suffix) by name; either way the
    // signature and the policy were checked.
    match secret {
        Ok(secret) => assert_eq!(secret.expose(), CONFIG),
        Err(error) => panic!("{error}"),
    }
    let forged = client
        .fetch(&at("ksm-config"), &{
            let mut e = static_env(&format!("{secret_key}x"));
            e.insert("AWS_REGION".to_owned(), "us-east-1".to_owned());
            e
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&forged, Error::Refused { code, .. } if code.contains("SignatureDoesNotMatch")),
        "{forged}"
    );
    assert!(!forged.to_string().contains(&secret_key), "{forged}");

    // EKS Pod Identity: the node agent hands out the credentials for the pod's token.
    let token_path = dir.path().join("eks-pod-identity-token");
    std::fs::write(&token_path, "pod-identity-token\n").unwrap();
    let credentials = serde_json::json!({"AccessKeyId": key_id, "SecretAccessKey": secret_key, "Expiration": "2099-01-01T00:00:00Z"}).to_string();
    let agent = pod_identity_agent("pod-identity-token", credentials);
    let pod_identity = env(&[
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &agent),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token_path.to_str().unwrap(),
        ),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]);
    let secret = client
        .fetch(&at("ksm-config"), &pod_identity)
        .await
        .unwrap();
    assert_eq!(secret.expose(), CONFIG);

    // Without an identity or a region, the message says what to set.
    let error = client
        .fetch(&at("ksm-config"), &env(&[("AWS_REGION", "us-east-1")]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("IRSA"), "{error}");
    let error = client
        .fetch(&at("ksm-config"), &env(&[]))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("no region"), "{error}");
}
