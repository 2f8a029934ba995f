//! Azure Key Vault `GET /secrets/NAME` with a token from Microsoft Entra ID, obtained with
//! Azure Workload Identity's federated service account token (the client credentials grant
//! with a JWT assertion).

use hyper::Method;
use serde::Deserialize;

use crate::http::{Http, OAuthToken, join, json_error, uri};
use crate::{Error, read_token, var};
use bulwark_config::{Secret, Source};

const KEY_VAULT: &str = "Azure Key Vault";
const ENTRA: &str = "Microsoft Entra ID";
/// The Key Vault data-plane API version we speak (GA since 2022, served by every cloud).
const API_VERSION: &str = "7.4";

pub(crate) async fn fetch(
    http: &Http,
    env: &dyn Source,
    vault_name: &str,
    secret_name: &str,
) -> Result<Secret, Error> {
    check_names(vault_name, secret_name)?;
    let vault = var(env, KEY_VAULT, "BULWARK_AZURE_KEY_VAULT_URL")?
        .unwrap_or_else(|| format!("https://{vault_name}.vault.azure.net"));
    let token = access_token(http, env, &scope(&vault)).await?;
    let url = uri(
        KEY_VAULT,
        &join(
            &vault,
            &format!("secrets/{secret_name}?api-version={API_VERSION}"),
        ),
    )?;
    let bearer = format!("Bearer {token}");
    #[derive(Deserialize)]
    struct Bundle {
        value: String,
    }
    let bundle: Bundle = http
        .json(
            KEY_VAULT,
            (Method::GET, &url),
            &[("authorization", &bearer)],
            Vec::new(),
            |service, status, body| {
                json_error(service, status, body, "/error/code", "/error/message")
            },
        )
        .await?;
    Ok(Secret::new(bundle.value))
}

/// Key Vault's naming rules: a vault of 3-24 letters, digits and dashes; a secret of 1-127
/// letters, digits and dashes, optionally `/VERSION`.
fn check_names(vault_name: &str, secret_name: &str) -> Result<(), Error> {
    let word = |s: &str, max: usize, min: usize| {
        (min..=max).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if !word(vault_name, 24, 3) {
        return Err(Error::Setup {
            service: KEY_VAULT,
            message: format!(
                "{vault_name:?} is not a vault name (3-24 letters, digits and dashes)"
            ),
        });
    }
    let (name, version) = secret_name
        .split_once('/')
        .map_or((secret_name, None), |(n, v)| (n, Some(v)));
    if !word(name, 127, 1) || version.is_some_and(|v| !word(v, 64, 1)) {
        return Err(Error::Setup {
            service: KEY_VAULT,
            message: format!(
                "{secret_name:?} is not a secret name (letters, digits and dashes, optionally /VERSION)"
            ),
        });
    }
    Ok(())
}

/// The token scope for a vault: its cloud's Key Vault resource (`https://vault.azure.net` in
/// the public cloud, `https://vault.azure.cn` in China, ...).
fn scope(vault_url: &str) -> String {
    let host = vault_url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    for suffix in [
        "vault.azure.cn",
        "vault.usgovcloudapi.net",
        "vault.microsoftazure.de",
    ] {
        if host.ends_with(&format!(".{suffix}")) {
            return format!("https://{suffix}/.default");
        }
    }
    "https://vault.azure.net/.default".to_owned()
}

/// A Key Vault token for the workload identity's federated token.
async fn access_token(http: &Http, env: &dyn Source, scope: &str) -> Result<String, Error> {
    let missing = |name: &str| Error::Setup {
        service: ENTRA,
        message: format!(
            "{name} is not set: label the pod azure.workload.identity/use: \"true\" and annotate its service account with azure.workload.identity/client-id"
        ),
    };
    let client_id =
        var(env, ENTRA, "AZURE_CLIENT_ID")?.ok_or_else(|| missing("AZURE_CLIENT_ID"))?;
    let tenant_id =
        var(env, ENTRA, "AZURE_TENANT_ID")?.ok_or_else(|| missing("AZURE_TENANT_ID"))?;
    let token_file = var(env, ENTRA, "AZURE_FEDERATED_TOKEN_FILE")?
        .ok_or_else(|| missing("AZURE_FEDERATED_TOKEN_FILE"))?;
    let authority = var(env, ENTRA, "AZURE_AUTHORITY_HOST")?
        .unwrap_or_else(|| "https://login.microsoftonline.com/".to_owned());
    let assertion = read_token(ENTRA, "AZURE_FEDERATED_TOKEN_FILE", &token_file)?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client_id)
        .append_pair("scope", scope)
        .append_pair("grant_type", "client_credentials")
        .append_pair(
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        )
        .append_pair("client_assertion", &assertion)
        .finish();
    let url = uri(
        ENTRA,
        &join(&authority, &format!("{tenant_id}/oauth2/v2.0/token")),
    )?;
    let token: OAuthToken = http
        .json(
            ENTRA,
            (Method::POST, &url),
            &[("content-type", "application/x-www-form-urlencoded")],
            body.into_bytes(),
            |service, status, body| {
                json_error(service, status, body, "/error", "/error_description")
            },
        )
        .await?;
    Ok(token.access_token)
}

#[cfg(test)]
mod tests {
    use super::{check_names, scope};

    #[test]
    fn names_and_scopes_follow_key_vault() {
        assert!(check_names("kv-prod-1", "ksm-config").is_ok());
        assert!(check_names("kv-prod-1", "ksm-config/0123abcd").is_ok());
        for (vault, secret) in [
            ("kv", "x"),
            ("kv_prod", "x"),
            ("kv1", ""),
            ("kv1", "a.b"),
            ("kv1", "a/b/c"),
        ] {
            assert!(check_names(vault, secret).is_err(), "{vault} {secret}");
        }
        assert_eq!(
            scope("https://kv1.vault.azure.net"),
            "https://vault.azure.net/.default"
        );
        assert_eq!(
            scope("https://kv1.vault.azure.cn/"),
            "https://vault.azure.cn/.default"
        );
        assert_eq!(
            scope("https://127.0.0.1:8443"),
            "https://vault.azure.net/.default"
        );
    }
}
