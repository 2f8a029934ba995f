//! AWS Secrets Manager `GetSecretValue` with the pod's credentials: static ones from the
//! environment, IRSA's web identity exchanged with STS, or EKS Pod Identity's agent.

use hyper::{Method, Uri};
use serde::Deserialize;

use crate::http::{Http, uri};
use crate::sigv4::{self, Credentials};
use crate::{Error, read_token, text, var};
use bulwark_config::{Secret, Source};

const SECRETS_MANAGER: &str = "AWS Secrets Manager";
const STS: &str = "AWS STS";
const POD_IDENTITY: &str = "EKS Pod Identity";

pub(crate) async fn fetch(
    http: &Http,
    env: &dyn Source,
    secret_id: &str,
    region: Option<&str>,
) -> Result<Secret, Error> {
    let region = match region.map(str::to_owned).or_else(|| arn_region(secret_id)) {
        Some(region) => region,
        None => var(env, SECRETS_MANAGER, "AWS_REGION")?
            .or(var(env, SECRETS_MANAGER, "AWS_DEFAULT_REGION")?)
            .ok_or_else(|| Error::Setup {
                service: SECRETS_MANAGER,
                message: "no region: set keeper.security/aws-region, use the secret's ARN, or set AWS_REGION".to_owned(),
            })?,
    };
    let credentials = credentials(http, env, &region).await?;
    let url = endpoint(
        env,
        "SECRETS_MANAGER",
        &format!("https://secretsmanager.{region}.amazonaws.com"),
    )?;
    let url = uri(SECRETS_MANAGER, &url)?;
    let body = serde_json::to_vec(&serde_json::json!({ "SecretId": secret_id })).map_err(|e| {
        Error::Setup {
            service: SECRETS_MANAGER,
            message: e.to_string(),
        }
    })?;
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "secretsmanager.GetSecretValue"),
    ];
    let host = url.authority().map(ToString::to_string).unwrap_or_default();
    let signature = sigv4::sign(
        &sigv4::Request {
            method: "POST",
            host: &host,
            path: url.path(),
            query: url.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        },
        &credentials,
        &region,
        "secretsmanager",
        jiff::Timestamp::now(),
    );
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.extend(signature.iter().map(|(n, v)| (*n, v.as_str())));
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Value {
        secret_string: Option<String>,
        secret_binary: Option<String>,
    }
    let value: Value = http
        .json(SECRETS_MANAGER, (Method::POST, &url), &all, body, aws_error)
        .await?;
    match (value.secret_string, value.secret_binary) {
        (Some(text), _) => Ok(Secret::new(text)),
        (None, Some(binary)) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(binary)
                .map_err(|e| Error::Protocol {
                    service: SECRETS_MANAGER,
                    message: format!("SecretBinary is not base64: {e}"),
                })?;
            text(SECRETS_MANAGER, bytes)
        }
        (None, None) => Err(Error::Protocol {
            service: SECRETS_MANAGER,
            message: "GetSecretValue returned neither SecretString nor SecretBinary".to_owned(),
        }),
    }
}

/// The region of a secret ARN (`arn:aws:secretsmanager:eu-west-1:123456789012:secret:name`).
fn arn_region(secret_id: &str) -> Option<String> {
    let mut parts = secret_id.split(':');
    (parts.next() == Some("arn"))
        .then(|| parts.nth(2))
        .flatten()
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

/// The endpoint of a service: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else
/// `default`, as the AWS SDKs choose it.
fn endpoint(env: &dyn Source, service: &str, default: &str) -> Result<String, Error> {
    Ok(
        var(env, SECRETS_MANAGER, &format!("AWS_ENDPOINT_URL_{service}"))?
            .or(var(env, SECRETS_MANAGER, "AWS_ENDPOINT_URL")?)
            .unwrap_or_else(|| default.to_owned()),
    )
}

/// The pod's credentials, from the first source its environment configures.
async fn credentials(http: &Http, env: &dyn Source, region: &str) -> Result<Credentials, Error> {
    if let (Some(access_key_id), Some(secret_access_key)) = (
        var(env, SECRETS_MANAGER, "AWS_ACCESS_KEY_ID")?,
        var(env, SECRETS_MANAGER, "AWS_SECRET_ACCESS_KEY")?,
    ) {
        return Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: var(env, SECRETS_MANAGER, "AWS_SESSION_TOKEN")?,
        });
    }
    if let (Some(role_arn), Some(token_file)) = (
        var(env, STS, "AWS_ROLE_ARN")?,
        var(env, STS, "AWS_WEB_IDENTITY_TOKEN_FILE")?,
    ) {
        return web_identity(http, env, region, &role_arn, &token_file).await;
    }
    if let Some(full_uri) = var(env, POD_IDENTITY, "AWS_CONTAINER_CREDENTIALS_FULL_URI")? {
        return pod_identity(http, env, &full_uri).await;
    }
    Err(Error::Setup {
        service: SECRETS_MANAGER,
        message: "no AWS identity in the pod: annotate its service account for IRSA (eks.amazonaws.com/role-arn) or associate it with an EKS Pod Identity".to_owned(),
    })
}

/// IRSA: the projected service account token exchanged for a role's credentials with STS
/// `AssumeRoleWithWebIdentity`, which takes no signature.
async fn web_identity(
    http: &Http,
    env: &dyn Source,
    region: &str,
    role_arn: &str,
    token_file: &str,
) -> Result<Credentials, Error> {
    let token = read_token(STS, "AWS_WEB_IDENTITY_TOKEN_FILE", token_file)?;
    let session = var(env, STS, "AWS_ROLE_SESSION_NAME")?
        .unwrap_or_else(|| format!("bulwark-keeper-{}", jiff::Timestamp::now().as_second()));
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "AssumeRoleWithWebIdentity")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", role_arn)
        .append_pair("RoleSessionName", &session)
        .append_pair("WebIdentityToken", &token)
        .finish();
    let url = endpoint(env, "STS", &format!("https://sts.{region}.amazonaws.com"))?;
    let url: Uri = uri(STS, &url)?;
    let response = http
        .send(
            STS,
            Method::POST,
            &url,
            &[("content-type", "application/x-www-form-urlencoded")],
            body.into_bytes(),
        )
        .await?;
    if !response.ok() {
        let (code, message) = xml_error(&response.body).unwrap_or_default();
        return Err(Error::from_status(STS, response.status, code, message));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        assume_role_with_web_identity_result: Assumed,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Assumed {
        credentials: Issued,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Issued {
        access_key_id: String,
        secret_access_key: String,
        session_token: String,
    }
    let answer: Answer = std::str::from_utf8(&response.body)
        .map_err(|e| e.to_string())
        .and_then(|xml| quick_xml::de::from_str(xml).map_err(|e| e.to_string()))
        .map_err(|message| Error::Protocol {
            service: STS,
            message: format!("AssumeRoleWithWebIdentity: {message}"),
        })?;
    let issued = answer.assume_role_with_web_identity_result.credentials;
    Ok(Credentials {
        access_key_id: issued.access_key_id,
        secret_access_key: issued.secret_access_key,
        session_token: Some(issued.session_token),
    })
}

/// EKS Pod Identity: the node's agent hands out the association's credentials for the pod's
/// projected token. Plain HTTP is allowed only to the agent's link-local addresses and to
/// loopback, as the AWS SDKs allow it.
async fn pod_identity(http: &Http, env: &dyn Source, full_uri: &str) -> Result<Credentials, Error> {
    let url = uri(POD_IDENTITY, full_uri)?;
    let host = url.host().unwrap_or_default();
    let local = matches!(
        host,
        "169.254.170.23" | "[fd00:ec2::23]" | "169.254.170.2" | "localhost" | "[::1]"
    ) || host.starts_with("127.");
    if url.scheme_str() == Some("http") && !local {
        return Err(Error::Setup {
            service: POD_IDENTITY,
            message: format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI {full_uri} is plain HTTP to a host other than the EKS Pod Identity agent"
            ),
        });
    }
    let token = match var(env, POD_IDENTITY, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")? {
        Some(path) => read_token(POD_IDENTITY, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &path)?,
        None => var(env, POD_IDENTITY, "AWS_CONTAINER_AUTHORIZATION_TOKEN")?.ok_or_else(|| {
            Error::Setup {
                service: POD_IDENTITY,
                message: "AWS_CONTAINER_CREDENTIALS_FULL_URI is set without AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE".to_owned(),
            }
        })?,
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Issued {
        access_key_id: String,
        secret_access_key: String,
        token: Option<String>,
    }
    let issued: Issued = http
        .json(
            POD_IDENTITY,
            (Method::GET, &url),
            &[("authorization", &token)],
            Vec::new(),
            aws_error,
        )
        .await?;
    Ok(Credentials {
        access_key_id: issued.access_key_id,
        secret_access_key: issued.secret_access_key,
        session_token: issued.token,
    })
}

/// The error of an AWS JSON-protocol answer: `{"__type": "...#Code", "message": "..."}`, or
/// the query protocol's XML `<Error><Code>..</Code><Message>..</Message></Error>` that some
/// front ends (and moto's authorizer) answer with instead.
fn aws_error(service: &'static str, status: u16, body: &[u8]) -> Error {
    if let Some((code, message)) = xml_error(body) {
        return Error::from_status(service, status, code, message);
    }
    let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = value["__type"]
        .as_str()
        .or(value["code"].as_str())
        .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
        .unwrap_or_default();
    let message = value["message"]
        .as_str()
        .or(value["Message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    Error::from_status(service, status, code, message)
}

/// `Code` and `Message` of an AWS XML error (`<ErrorResponse><Error>..` or
/// `<ErrorResponse><Errors><Error>..`), if `body` is one.
fn xml_error(body: &[u8]) -> Option<(String, String)> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Response {
        error: Option<Detail>,
        errors: Option<Errors>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Errors {
        error: Detail,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Detail {
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = std::str::from_utf8(body).ok()?;
    if !text.trim_start().starts_with('<') {
        return None;
    }
    let response: Response = quick_xml::de::from_str(text).ok()?;
    let detail = response.error.or(response.errors.map(|e| e.error))?;
    Some((detail.code, detail.message))
}

#[cfg(test)]
mod tests {
    use super::{arn_region, xml_error};

    #[test]
    fn xml_errors_give_their_code_and_message() {
        let sts = br#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>No OpenIDConnect provider found</Message></Error><RequestId>1</RequestId></ErrorResponse>"#;
        assert_eq!(
            xml_error(sts),
            Some((
                "InvalidIdentityToken".to_owned(),
                "No OpenIDConnect provider found".to_owned()
            ))
        );
        let nested = br#"<?xml version="1.0" encoding="utf-8"?><ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>no</Message></Error></Errors></ErrorResponse>"#;
        assert_eq!(
            xml_error(nested),
            Some(("AccessDenied".to_owned(), "no".to_owned()))
        );
        assert_eq!(xml_error(br#"{"__type":"x"}"#), None);
    }

    #[test]
    fn the_region_comes_from_an_arn() {
        assert_eq!(
            arn_region("arn:aws:secretsmanager:eu-west-1:123456789012:secret:ksm-AbCd").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("ksm-config"), None);
        assert_eq!(arn_region("arn:aws:secretsmanager::1:secret:x"), None);
    }
}
