//! The server side of the KSM wire protocol, without any IO: route a request, verify it, answer.
//!
//! A request to `POST /api/rest/sm/v1/<endpoint>` carries a transmission key (ECIES to the
//! server's public key, header `TransmissionKey`), the key id it was encrypted for
//! (`PublicKeyId`), a body that is the AES-GCM'd JSON payload, and an ECDSA signature over
//! `encryptedTransmissionKey ‖ body` (`Authorization: Signature ...`). The server decrypts the
//! transmission key and the payload, finds the client by `clientId`, binds it if it is new (its
//! public key comes in the payload), checks the key id and the signature, and answers with JSON
//! AES-GCM'd under the same transmission key. Errors are plain JSON, as the SDKs expect.

use http::{HeaderMap, Method, StatusCode};
use p256::PublicKey;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ApiRequest;
use super::crypto::{self, CryptoError};
use super::state::State;

/// The path prefix of every API endpoint.
const API_PREFIX: &str = "/api/rest/sm/v1/";
/// The path prefix of file downloads.
const FILES_PREFIX: &str = "/files/";
/// The endpoint name file downloads are counted under.
pub(crate) const DOWNLOAD_ENDPOINT: &str = "download";

/// A response before it becomes HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

/// The fields of a payload the server reads (`GetPayload` in the SDKs). The SDKs send unset
/// fields as `null` (Python) or leave them out (Rust); both mean "absent".
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    client_version: Option<String>,
    client_id: Option<String>,
    public_key: Option<String>,
    requested_records: Option<Vec<String>>,
    requested_folders: Option<Vec<String>>,
}

/// A verified request, ready for its endpoint.
struct Verified {
    transmission_key: crypto::Key,
    client_id: String,
    /// Whether this request bound the client, so the response carries the application key.
    binding: bool,
    payload: Payload,
    /// The whole decrypted payload, for the request log.
    json: Value,
}

impl Reply {
    fn json(status: StatusCode, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }

    /// An error in the backend's shape: `{"error": code, "message": ...}`.
    fn error(status: StatusCode, code: &str, message: &str) -> Reply {
        Reply::json(
            status,
            &json!({"error": code, "result_code": code, "message": message}),
        )
    }

    fn bad_request(message: &str) -> Reply {
        Reply::error(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn access_denied(message: &str) -> Reply {
        Reply::error(StatusCode::FORBIDDEN, "access_denied", message)
    }

    fn encrypted(key: &crypto::Key, body: &Map<String, Value>) -> Reply {
        let json = Value::Object(body.clone()).to_string();
        Reply {
            status: StatusCode::OK,
            content_type: "application/octet-stream",
            body: crypto::gcm_encrypt(key, json.as_bytes()),
        }
    }
}

/// Answers one HTTP request.
pub(crate) fn route(
    state: &mut State,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Reply {
    if let Some(endpoint) = path.strip_prefix(API_PREFIX) {
        if method != Method::POST {
            return Reply::bad_request("the API takes POST requests");
        }
        return api(state, endpoint, headers, body);
    }
    if let Some(download) = path.strip_prefix(FILES_PREFIX)
        && method == Method::GET
    {
        return download_file(state, download);
    }
    Reply::error(StatusCode::NOT_FOUND, "not_found", "no such path")
}

/// What a load balancer answers when the service behind it is down.
fn unavailable() -> Reply {
    Reply {
        status: StatusCode::SERVICE_UNAVAILABLE,
        content_type: "text/plain",
        body: b"Service Unavailable".to_vec(),
    }
}

fn download_file(state: &mut State, download: &str) -> Reply {
    let (file, reply) = match state.download(download) {
        _ if state.unavailable => (None, unavailable()),
        Some((uid, content)) => {
            tracing::debug!(file = %uid, "Fake Keeper served a file download.");
            let reply = Reply {
                status: StatusCode::OK,
                content_type: "application/octet-stream",
                body: content,
            };
            (Some(uid.to_owned()), reply)
        }
        None => (
            None,
            Reply::error(StatusCode::NOT_FOUND, "not_found", "no such file"),
        ),
    };
    state.log.push(ApiRequest {
        endpoint: DOWNLOAD_ENDPOINT.to_owned(),
        key_id: None,
        status: reply.status.as_u16(),
        payload: file.map(|uid| json!({ "fileUid": uid })),
    });
    reply
}

/// Verifies and answers one API request, and logs it whatever the outcome.
fn api(state: &mut State, endpoint: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
    let key_id = header(headers, "PublicKeyId").map(str::to_owned);
    let mut logged_payload = None;
    let reply = if state.unavailable {
        unavailable()
    } else if state.throttle > 0 {
        state.throttle -= 1;
        let retry_after = state.retry_after.as_secs_f64();
        Reply::json(
            StatusCode::FORBIDDEN,
            &json!({"error": "throttled", "message": "Too many requests", "retry_after": retry_after}),
        )
    } else {
        match verify(state, headers, body) {
            Err(reply) => reply,
            Ok(verified) => {
                let reply = answer(state, endpoint, &verified);
                logged_payload = Some(verified.json);
                reply
            }
        }
    };
    tracing::debug!(
        endpoint,
        status = reply.status.as_u16(),
        "Fake Keeper answered a request."
    );
    state.log.push(ApiRequest {
        endpoint: endpoint.to_owned(),
        key_id,
        status: reply.status.as_u16(),
        payload: logged_payload,
    });
    reply
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

/// Everything the server checks before it answers, in the order that gives each client the
/// error it can act on.
fn verify(state: &mut State, headers: &HeaderMap, body: &[u8]) -> Result<Verified, Reply> {
    let (Some(key_id), Some(transmission), Some(authorization)) = (
        header(headers, "PublicKeyId"),
        header(headers, "TransmissionKey"),
        header(headers, "Authorization"),
    ) else {
        return Err(Reply::bad_request(
            "missing PublicKeyId, TransmissionKey or Authorization header",
        ));
    };
    let encrypted_key = crypto::decode_b64(transmission)
        .map_err(|_| Reply::bad_request("TransmissionKey is not base64"))?;
    let signature = authorization
        .strip_prefix("Signature ")
        .ok_or_else(|| Reply::bad_request("Authorization is not `Signature <base64>`"))
        .and_then(|b64| {
            crypto::decode_b64(b64).map_err(|_| Reply::bad_request("signature is not base64"))
        })?;

    // The fake has one key pair for all its key ids, so it can open the transmission key
    // before it judges the key id; the id check below still answers like the real server.
    let transmission_key: crypto::Key = crypto::ecies_decrypt(&state.server_key, &encrypted_key)
        .ok()
        .and_then(|key| key.try_into().ok())
        .ok_or_else(|| {
            Reply::bad_request("the transmission key does not decrypt with the server key")
        })?;
    let plain = crypto::gcm_decrypt(&transmission_key, body).map_err(|_| {
        Reply::bad_request("the payload does not decrypt with the transmission key")
    })?;
    let json: Value = serde_json::from_slice(&plain)
        .map_err(|_| Reply::bad_request("the payload is not JSON"))?;
    let payload = Payload::deserialize(&json)
        .map_err(|_| Reply::bad_request("the payload is not a GetPayload"))?;

    check_client_version(payload.client_version.as_deref())?;
    let client_id = payload
        .client_id
        .clone()
        .ok_or_else(|| Reply::bad_request("the payload has no clientId"))?;
    let rotation = state.rotation();
    let current_key_id = state.current_key_id();
    let known_key_id = key_id
        .parse::<u32>()
        .ok()
        .filter(|id| state.key_ids.contains(id));
    let client = state.clients.get_mut(&client_id).ok_or_else(|| {
        Reply::error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "unknown clientId: mint a one-time token first",
        )
    })?;

    // A client using a stale or unknown key id is told the current one. Clients configured
    // with `serverPublicKey` cannot fetch a new key: Python saves the new id and keeps its key,
    // the Rust crate ignores the hint and retries with the old id. So a former id of this
    // server is refused once per client and rotation, then accepted, and both SDKs get through.
    let key_ok = match known_key_id {
        Some(id) if id == current_key_id => true,
        Some(_) => client.told_rotation >= rotation,
        None => false,
    };
    if !key_ok {
        client.told_rotation = rotation;
        return Err(Reply::json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "key", "key_id": current_key_id, "message": "invalid key id"}),
        ));
    }

    let mut signed = encrypted_key.clone();
    signed.extend_from_slice(body);
    let binding = match (&client.public_key, payload.public_key.as_deref()) {
        // A new client binds with the public key in its payload, which signs this very request.
        (None, Some(offered)) => {
            let offered = parse_public_key(offered)?;
            check_signature(&offered, &signed, &signature)?;
            client.public_key = Some(offered);
            tracing::debug!("Fake Keeper bound a client.");
            true
        }
        (None, None) => {
            return Err(Reply::access_denied(
                "the client is not bound yet: send publicKey with the one-time token",
            ));
        }
        // A client that did not get the binding response may bind again with the same key.
        (Some(registered), Some(offered)) => {
            if parse_public_key(offered)? != *registered {
                return Err(Reply::access_denied("the one-time token was already used"));
            }
            check_signature(registered, &signed, &signature)?;
            true
        }
        (Some(registered), None) => {
            check_signature(registered, &signed, &signature)?;
            false
        }
    };
    Ok(Verified {
        transmission_key,
        client_id,
        binding,
        payload,
        json,
    })
}

/// The backend rejects unknown client versions; the SDKs send `m` + a language letter +
/// the SDK version (`mp17.3.0` Python, `mr17.3.0` Rust, `ms17.5.0` JavaScript).
fn check_client_version(version: Option<&str>) -> Result<(), Reply> {
    let valid = version.is_some_and(|v| {
        let mut chars = v.chars();
        chars.next() == Some('m')
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.as_str().split('.').count() >= 2
            && chars
                .as_str()
                .split('.')
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
    });
    if valid {
        return Ok(());
    }
    Err(Reply::json(
        StatusCode::BAD_REQUEST,
        &json!({
            "error": "invalid_client_version",
            "result_code": "invalid_client_version",
            "message": "invalid client version",
            "additional_info": "the client version is not registered",
        }),
    ))
}

fn parse_public_key(b64: &str) -> Result<PublicKey, Reply> {
    crypto::decode_b64(b64)
        .and_then(|bytes| crypto::parse_point(&bytes))
        .map_err(|_| Reply::bad_request("publicKey is not an uncompressed P-256 point"))
}

fn check_signature(signer: &PublicKey, signed: &[u8], signature: &[u8]) -> Result<(), Reply> {
    crypto::verify_signature(signer, signed, signature).map_err(|error| match error {
        CryptoError::SignatureEncoding => Reply::bad_request("the signature is not DER"),
        _ => Reply::access_denied("Signature is invalid"),
    })
}

fn answer(state: &mut State, endpoint: &str, verified: &Verified) -> Reply {
    let mut response = match endpoint {
        "get_secret" => state.secrets_response(
            verified.payload.requested_records.as_deref(),
            verified.payload.requested_folders.as_deref(),
        ),
        "get_folders" => state.folders_response(),
        _ => {
            return Reply::bad_request(&format!(
                "the fake Keeper server does not implement {endpoint}"
            ));
        }
    };
    if verified.binding
        && let Some(client) = state.clients.get(&verified.client_id)
    {
        // The application key travels encrypted with the one-time token's bytes, which only
        // the client that holds the token can open.
        let app_key = crypto::gcm_encrypt(&client.token, &state.app.key);
        let owner = crypto::point_bytes(&state.app.owner.public_key());
        response.insert("encryptedAppKey".into(), crypto::url_b64(&app_key).into());
        response.insert("appOwnerPublicKey".into(), crypto::url_b64(&owner).into());
    }
    if endpoint == "get_secret" {
        let uids = response_record_uids(&response);
        tracing::debug!(records = ?uids, "Fake Keeper sent records.");
    }
    Reply::encrypted(&verified.transmission_key, &response)
}

/// The UIDs a `get_secret` response carries, for the debug log (UIDs are not secret).
fn response_record_uids(response: &Map<String, Value>) -> Vec<&str> {
    let direct = response
        .get("records")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    let in_folders = response
        .get("folders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.get("records").and_then(Value::as_array))
        .flatten();
    direct
        .chain(in_folders)
        .filter_map(|r| r.get("recordUid").and_then(Value::as_str))
        .collect()
}
