//! Where the KSM configuration comes from: `auth-method`, `ksm-config` (and its old name
//! `auth-secret`) and the cloud providers' fields.

use bulwark_sidecar_spec::Auth;

use super::parser::Parser;
use super::{OIDC_REASON, key};
use crate::{Error, Result};

impl Parser<'_> {
    /// `auth-method`, `ksm-config` (and its old name `auth-secret`) and the cloud fields.
    pub(super) fn auth(&mut self) -> Result<(Auth, Option<String>)> {
        let method = self.get("auth-method").map(str::trim).unwrap_or("secret");
        let cloud = |method: &str| -> &'static [&'static str] {
            match method {
                "aws-secrets-manager" => &["aws-secret-id", "aws-region"],
                "gcp-secret-manager" => &["gcp-secret-id"],
                "azure-key-vault" => &["azure-vault-name", "azure-secret-name"],
                _ => &[],
            }
        };
        match method {
            "secret" | "aws-secrets-manager" | "gcp-secret-manager" | "azure-key-vault" => {}
            "oidc" => {
                return Err(Error::Unsupported {
                    annotation: key("auth-method"),
                    reason: OIDC_REASON,
                });
            }
            other => {
                return Err(Error::invalid(
                    key("auth-method"),
                    format!(
                        "invalid value {other:?}: expected secret, aws-secrets-manager, gcp-secret-manager or azure-key-vault"
                    ),
                ));
            }
        }
        for other in [
            "aws-secrets-manager",
            "gcp-secret-manager",
            "azure-key-vault",
        ] {
            if other == method {
                continue;
            }
            if let Some(name) = cloud(other).iter().find(|n| self.get(n).is_some()) {
                return Err(Error::invalid(
                    key(name),
                    format!(
                        "only used with keeper.security/auth-method: {other}, but the auth method is {method}"
                    ),
                ));
            }
        }
        let ksm_config = self.object_name("ksm-config", "Secret")?;
        let legacy = self.object_name("auth-secret", "Secret")?;
        let ksm_config = match (ksm_config, legacy) {
            (Some(new), Some(old)) if new != old => {
                return Err(Error::invalid(
                    key("auth-secret"),
                    format!(
                        "names Secret {old:?} but keeper.security/ksm-config names {new:?}: remove the old auth-secret annotation"
                    ),
                ));
            }
            (Some(new), _) => Some(new),
            (None, Some(old)) => {
                self.warn(
                    "auth-secret",
                    "deprecated since upstream 0.10.0: use keeper.security/ksm-config",
                );
                Some(old)
            }
            (None, None) => None,
        };
        if method != "secret" && ksm_config.is_some() {
            return Err(Error::invalid(
                key("ksm-config"),
                format!(
                    "only used with keeper.security/auth-method: secret, but the auth method is {method}, which reads the KSM configuration from the cloud provider"
                ),
            ));
        }
        let required = |p: &Self, name: &str, expected: &str| -> Result<String> {
            p.string(name, expected)?.ok_or_else(|| {
                Error::invalid(
                    key(name),
                    format!(
                        "required with keeper.security/auth-method: {method}: expected {expected}"
                    ),
                )
            })
        };
        let auth = match method {
            "aws-secrets-manager" => Auth::AwsSecretsManager {
                secret_id: required(
                    self,
                    "aws-secret-id",
                    "the name or ARN of the AWS secret holding the KSM configuration",
                )?,
                region: self.string("aws-region", "an AWS region such as us-west-2")?,
            },
            "gcp-secret-manager" => {
                let id = required(
                    self,
                    "gcp-secret-id",
                    "projects/<project>/secrets/<secret>/versions/<version>",
                )?;
                if !is_gcp_secret_id(&id) {
                    return Err(Error::invalid(
                        key("gcp-secret-id"),
                        format!(
                            "invalid secret {id:?}: expected projects/<project>/secrets/<secret>/versions/<version>"
                        ),
                    ));
                }
                Auth::GcpSecretManager { secret_id: id }
            }
            "azure-key-vault" => {
                let vault = required(
                    self,
                    "azure-vault-name",
                    "a Key Vault name (3 to 24 letters, digits and '-')",
                )?;
                if !(3..=24).contains(&vault.len())
                    || !vault
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(Error::invalid(
                        key("azure-vault-name"),
                        format!(
                            "invalid vault name {vault:?}: expected 3 to 24 letters, digits and '-'"
                        ),
                    ));
                }
                let secret = required(
                    self,
                    "azure-secret-name",
                    "a Key Vault secret name (letters, digits and '-')",
                )?;
                if secret.len() > 127
                    || !secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(Error::invalid(
                        key("azure-secret-name"),
                        format!(
                            "invalid secret name {secret:?}: expected up to 127 letters, digits and '-'"
                        ),
                    ));
                }
                Auth::AzureKeyVault {
                    vault_name: vault,
                    secret_name: secret,
                }
            }
            _ => Auth::Secret,
        };
        Ok((auth, ksm_config))
    }
}

/// `projects/<p>/secrets/<s>` with an optional `/versions/<v>`.
fn is_gcp_secret_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    let shape = match parts.as_slice() {
        ["projects", p, "secrets", s] => vec![*p, *s],
        ["projects", p, "secrets", s, "versions", v] => vec![*p, *s, *v],
        _ => return false,
    };
    shape.iter().all(|part| !part.is_empty())
}
