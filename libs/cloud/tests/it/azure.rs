//! Azure Key Vault through Azure Workload Identity's federated token.

use bulwark_cloud::{Error, Location};
use bulwark_test_util::cloud::{FakeAzure, federated_token};

use super::{CONFIG, client, env};

#[tokio::test]
async fn exchanges_the_federated_token_and_reads_the_secret() {
    let token = federated_token(
        "api://AzureADTokenExchange",
        "system:serviceaccount:prod:web",
    );
    let azure = FakeAzure::start("tenant-1", "client-1", &token).unwrap();
    azure.set_secret("ksm-config", CONFIG);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("azure-identity-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let vars = |token_file: &str| {
        env(&[
            ("AZURE_CLIENT_ID", "client-1"),
            ("AZURE_TENANT_ID", "tenant-1"),
            ("AZURE_FEDERATED_TOKEN_FILE", token_file),
            ("AZURE_AUTHORITY_HOST", &azure.authority_host()),
            ("BULWARK_AZURE_KEY_VAULT_URL", &azure.vault_url()),
        ])
    };
    let client = client(Some(azure.ca_pem()));
    let at = |name: &str| Location::Azure {
        vault_name: "kv-prod".to_owned(),
        secret_name: name.to_owned(),
    };
    let env = vars(token_file.to_str().unwrap());
    let secret = client.fetch(&at("ksm-config"), &env).await.unwrap();
    assert_eq!(secret.expose(), CONFIG);
    let requests = azure.requests();
    assert_eq!(requests[0].target, "/tenant-1/oauth2/v2.0/token");
    assert_eq!(requests[1].target, "/secrets/ksm-config?api-version=7.4");

    let missing = client.fetch(&at("nope"), &env).await.unwrap_err();
    assert!(
        matches!(&missing, Error::Refused { status: 404, code, .. } if code == "SecretNotFound"),
        "{missing}"
    );

    // A token for another audience is not federated with the application.
    let other = dir.path().join("other-token");
    std::fs::write(
        &other,
        federated_token("sts.amazonaws.com", "system:serviceaccount:prod:web"),
    )
    .unwrap();
    let error = client
        .fetch(&at("ksm-config"), &vars(other.to_str().unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Refused { status: 401, code, .. } if code == "invalid_client"),
        "{error}"
    );
    assert!(!error.to_string().contains(&token), "{error}");

    // A pod without the workload identity's environment is told what to do.
    let error = client
        .fetch(&at("ksm-config"), &env_without_client(&azure))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("azure.workload.identity/use"),
        "{error}"
    );
}

fn env_without_client(azure: &FakeAzure) -> std::collections::HashMap<String, String> {
    env(&[("BULWARK_AZURE_KEY_VAULT_URL", &azure.vault_url())])
}
