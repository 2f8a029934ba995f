//! Fetching the sidecar's KSM configuration from where a pod's annotations say it is stored:
//! AWS Secrets Manager, GCP Secret Manager or Azure Key Vault, with the pod's workload
//! identity, in one authenticated HTTPS request for the secret (after one for a token where
//! the identity needs it).
//!
//! - **AWS** (`aws.rs`): credentials from, in order, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
//!   (`AWS_SESSION_TOKEN`), IRSA (`AWS_ROLE_ARN` and `AWS_WEB_IDENTITY_TOKEN_FILE`, exchanged
//!   with STS `AssumeRoleWithWebIdentity`), or EKS Pod Identity
//!   (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`);
//!   then `GetSecretValue`, signed with Signature Version 4 (`sigv4.rs`). The region is the
//!   annotation's, else the secret ARN's, else `AWS_REGION`/`AWS_DEFAULT_REGION`. Endpoints
//!   follow the SDKs' `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_STS` and
//!   `AWS_ENDPOINT_URL`.
//! - **GCP** (`gcp.rs`): an access token from the metadata server (GKE Workload Identity;
//!   `GCE_METADATA_HOST` overrides its address), then `versions/*:access` on Secret Manager v1
//!   (`BULWARK_GCP_SECRET_MANAGER_URL` overrides `https://secretmanager.googleapis.com`).
//! - **Azure** (`azure.rs`): Azure Workload Identity's federated token
//!   (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`, `AZURE_AUTHORITY_HOST`)
//!   exchanged for a Key Vault token, then `GET /secrets/NAME?api-version=7.4`
//!   (`BULWARK_AZURE_KEY_VAULT_URL` overrides `https://VAULT.vault.azure.net`).
//!
//! No cloud SDK: each is one or two requests on the hyper and rustls stack the sidecar already
//! has, which keeps the sidecar within its memory budget.
//!
//! Errors name the service, the endpoint and what the service said; never a credential, a
//! token or the secret.

mod aws;
mod azure;
mod gcp;
mod http;
mod sigv4;

use std::time::Duration;

use bulwark_config::{Secret, Source};

/// Where the secret is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A secret in AWS Secrets Manager, by name or ARN.
    Aws {
        secret_id: String,
        region: Option<String>,
    },
    /// A secret version in GCP Secret Manager: `projects/P/secrets/S[/versions/V]`.
    Gcp { secret_id: String },
    /// A secret in Azure Key Vault: its vault and its name (`NAME` or `NAME/VERSION`).
    Azure {
        vault_name: String,
        secret_name: String,
    },
}

impl Location {
    /// The annotation's name for the method.
    pub fn method(&self) -> &'static str {
        match self {
            Location::Aws { .. } => "aws-secrets-manager",
            Location::Gcp { .. } => "gcp-secret-manager",
            Location::Azure { .. } => "azure-key-vault",
        }
    }
}

/// Why the secret could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The pod lacks what its identity needs, or the location is malformed: no retry helps.
    #[error("{service}: {message}")]
    Setup {
        service: &'static str,
        message: String,
    },
    #[error("invalid CA certificates: {0}")]
    Ca(String),
    #[error("cannot reach {service} at {url}: {message}")]
    Unreachable {
        service: &'static str,
        url: String,
        message: String,
    },
    #[error("{service} did not answer {url} within {timeout:?}")]
    Timeout {
        service: &'static str,
        url: String,
        timeout: Duration,
    },
    /// The service refused: denied, not found, invalid request. No retry helps.
    #[error("{service} refused ({status} {code}): {message}")]
    Refused {
        service: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// The service failed or throttled (5xx, 429): retry.
    #[error("{service} is unavailable ({status}): {message}")]
    Unavailable {
        service: &'static str,
        status: u16,
        message: String,
    },
    #[error("unexpected answer from {service}: {message}")]
    Protocol {
        service: &'static str,
        message: String,
    },
}

impl Error {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::Timeout { .. } | Error::Unavailable { .. }
        )
    }

    /// A bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Setup { .. } | Error::Ca(_) => "config",
            Error::Unreachable { .. } => "unreachable",
            Error::Timeout { .. } => "timeout",
            Error::Refused { .. } => "refused",
            Error::Unavailable { .. } => "unavailable",
            Error::Protocol { .. } => "protocol",
        }
    }

    /// The error for an answer that is not a success, from its status and what the service
    /// said (`code`, `message`).
    fn from_status(service: &'static str, status: u16, code: String, message: String) -> Self {
        if status == 429 || status == 408 || status >= 500 {
            Error::Unavailable {
                service,
                status,
                message: if code.is_empty() {
                    message
                } else {
                    format!("{code}: {message}")
                },
            }
        } else {
            Error::Refused {
                service,
                status,
                code,
                message,
            }
        }
    }
}

/// Fetches secrets from the clouds; one per process is enough.
pub struct Client {
    http: http::Http,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl Client {
    /// A client trusting the platform's roots and `ca_pem`, giving each request `timeout`.
    pub fn new(ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Self, Error> {
        Ok(Self {
            http: http::Http::new(ca_pem, timeout)?,
        })
    }

    /// The secret at `location`, with the identity the environment `env` describes.
    pub async fn fetch(&self, location: &Location, env: &dyn Source) -> Result<Secret, Error> {
        match location {
            Location::Aws { secret_id, region } => {
                aws::fetch(&self.http, env, secret_id, region.as_deref()).await
            }
            Location::Gcp { secret_id } => gcp::fetch(&self.http, env, secret_id).await,
            Location::Azure {
                vault_name,
                secret_name,
            } => azure::fetch(&self.http, env, vault_name, secret_name).await,
        }
    }
}

/// The value of `name` in `env`, unset when empty.
fn var(env: &dyn Source, service: &'static str, name: &str) -> Result<Option<String>, Error> {
    env.get(name)
        .map(|v| v.filter(|v| !v.trim().is_empty()))
        .map_err(|e| Error::Setup {
            service,
            message: e.to_string(),
        })
}

/// The contents of the file `path` names (a projected service account token), trimmed.
fn read_token(service: &'static str, variable: &str, path: &str) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Setup {
        service,
        message: format!("cannot read {variable} {path}: {e}"),
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::Setup {
            service,
            message: format!("{variable} {path} is empty"),
        });
    }
    Ok(token.to_owned())
}

/// A secret's text: the service's bytes, which must be UTF-8 (a KSM configuration is JSON or
/// base64).
fn text(service: &'static str, bytes: Vec<u8>) -> Result<Secret, Error> {
    String::from_utf8(bytes)
        .map(Secret::new)
        .map_err(|_| Error::Protocol {
            service,
            message: "the secret is not UTF-8 text (a KSM configuration is JSON or base64)"
                .to_owned(),
        })
}
