//! GCP Secret Manager v1 `versions/*:access` with an access token from the metadata server,
//! which GKE Workload Identity answers for the pod's Kubernetes service account.

use base64::Engine;
use hyper::Method;
use serde::Deserialize;

use crate::http::{Http, OAuthToken, join, json_error, uri};
use crate::{Error, text, var};
use bulwark_config::{Secret, Source};

const SECRET_MANAGER: &str = "GCP Secret Manager";
const METADATA: &str = "GCP metadata server";

pub(crate) async fn fetch(http: &Http, env: &dyn Source, secret_id: &str) -> Result<Secret, Error> {
    let name = version_name(secret_id)?;
    let token = access_token(http, env).await?;
    let base = var(env, SECRET_MANAGER, "BULWARK_GCP_SECRET_MANAGER_URL")?
        .unwrap_or_else(|| "https://secretmanager.googleapis.com".to_owned());
    let url = uri(SECRET_MANAGER, &join(&base, &format!("v1/{name}:access")))?;
    let bearer = format!("Bearer {token}");
    #[derive(Deserialize)]
    struct Access {
        payload: Payload,
    }
    #[derive(Deserialize)]
    struct Payload {
        data: String,
    }
    let access: Access = http
        .json(
            SECRET_MANAGER,
            (Method::GET, &url),
            &[("authorization", &bearer)],
            Vec::new(),
            google_error,
        )
        .await?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(access.payload.data)
        .map_err(|e| Error::Protocol {
            service: SECRET_MANAGER,
            message: format!("payload.data is not base64: {e}"),
        })?;
    text(SECRET_MANAGER, bytes)
}

/// `projects/P/secrets/S/versions/V` from the annotation, which may leave out the version
/// (then `latest`, as upstream documents).
fn version_name(secret_id: &str) -> Result<String, Error> {
    let parts: Vec<&str> = secret_id.trim_matches('/').split('/').collect();
    let valid = |p: &&str| !p.is_empty();
    match parts.as_slice() {
        ["projects", project, "secrets", secret] if valid(project) && valid(secret) => Ok(format!(
            "projects/{project}/secrets/{secret}/versions/latest"
        )),
        ["projects", project, "secrets", secret, "versions", version]
            if valid(project) && valid(secret) && valid(version) =>
        {
            Ok(format!(
                "projects/{project}/secrets/{secret}/versions/{version}"
            ))
        }
        _ => Err(Error::Setup {
            service: SECRET_MANAGER,
            message: format!(
                "{secret_id:?} is not a secret name: use projects/PROJECT/secrets/SECRET[/versions/VERSION]"
            ),
        }),
    }
}

/// The default service account's access token from the metadata server.
async fn access_token(http: &Http, env: &dyn Source) -> Result<String, Error> {
    let host = var(env, METADATA, "GCE_METADATA_HOST")?
        .unwrap_or_else(|| "metadata.google.internal".to_owned());
    let url = uri(
        METADATA,
        &format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token"),
    )?;
    let token: OAuthToken = http
        .json(
            METADATA,
            (Method::GET, &url),
            &[("metadata-flavor", "Google")],
            Vec::new(),
            |service, status, body| {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                Error::from_status(service, status, String::new(), text)
            },
        )
        .await?;
    Ok(token.access_token)
}

/// The error of a Google API answer: `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`.
fn google_error(service: &'static str, status: u16, body: &[u8]) -> Error {
    json_error(service, status, body, "/error/status", "/error/message")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::version_name;

    #[test]
    fn a_secret_without_a_version_is_its_latest() {
        assert_eq!(
            version_name("projects/p/secrets/ksm").unwrap(),
            "projects/p/secrets/ksm/versions/latest"
        );
        assert_eq!(
            version_name("projects/p/secrets/ksm/versions/3").unwrap(),
            "projects/p/secrets/ksm/versions/3"
        );
        for bad in [
            "ksm",
            "projects/p/secrets/",
            "projects//secrets/s",
            "p/s/versions/1",
        ] {
            assert!(version_name(bad).is_err(), "{bad}");
        }
    }
}
