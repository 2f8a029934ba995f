//! The KSM client: signed, encrypted requests to `https://<host>/api/rest/sm/v1/<endpoint>`
//! (research/injector.md §2.3), one-time-token binding, key rotation, throttling, and the
//! decryption of records, shared folders, subfolders and files.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Map, Value, json};

use crate::config::KsmConfig;
use crate::crypto::{self, CryptoError, Key};
use crate::model::{Field, File, Folder, Query, Record, Snapshot};

/// The client version sent with every request. The backend accepts only registered SDK
/// versions; this client implements the protocol of the official Rust SDK 17.3.0.
const CLIENT_VERSION: &str = "mr17.3.0";

/// The largest response we read: a KSM application's records are kilobytes.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// What throttling answers without a `retry_after`: the SDKs' base delay.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(11);

/// How the client reaches Keeper.
#[derive(Debug, Clone)]
pub struct Options {
    /// Extra CA certificates (PEM) to trust besides the platform's.
    pub ca_pem: Option<Vec<u8>>,
    /// The limit for each request, connection included.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            ca_pem: None,
            timeout: Duration::from_secs(30),
        }
    }
}

/// Why a request failed. Messages carry endpoints, statuses and UIDs, never secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid KSM configuration: {0}")]
    Config(#[from] crate::ConfigError),
    #[error("invalid CA certificates: {0}")]
    Ca(String),
    #[error("cannot reach Keeper at {host}: {message}")]
    Unreachable { host: String, message: String },
    #[error("Keeper did not answer {endpoint} within {timeout:?}")]
    Timeout { endpoint: String, timeout: Duration },
    #[error("Keeper throttled the request; retry after {retry_after:?}")]
    Throttled { retry_after: Duration },
    #[error("Keeper is unavailable: {endpoint} answered {status}: {message}")]
    Unavailable {
        endpoint: String,
        status: u16,
        message: String,
    },
    #[error("Keeper refused the client ({code}): {message}")]
    Auth { code: String, message: String },
    #[error("unexpected answer from Keeper to {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
}

impl Error {
    /// Whether retrying later (and serving the cache meanwhile) makes sense.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. }
                | Error::Timeout { .. }
                | Error::Throttled { .. }
                | Error::Unavailable { .. }
        )
    }

    /// A bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Config(_) | Error::Ca(_) => "config",
            Error::Unreachable { .. } => "unreachable",
            Error::Timeout { .. } => "timeout",
            Error::Throttled { .. } => "throttled",
            Error::Unavailable { .. } => "unavailable",
            Error::Auth { .. } => "auth",
            Error::Protocol { .. } => "protocol",
        }
    }

    /// How long Keeper asked us to wait, when it throttled.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Throttled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Reads secrets from Keeper Secrets Manager.
#[derive(Clone)]
pub struct Client {
    config: Arc<Mutex<KsmConfig>>,
    http: HttpClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &*self.lock())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`, trusting the platform's CAs and `options.ca_pem`.
    pub fn new(config: KsmConfig, options: &Options) -> Result<Self, Error> {
        let tls = bulwark_http::client_config(options.ca_pem.as_deref())
            .map_err(|e| Error::Ca(e.to_string()))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        let http = HttpClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1)
            .build(connector);
        Ok(Self {
            config: Arc::new(Mutex::new(config)),
            http,
            timeout: options.timeout,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, KsmConfig> {
        self.config.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration, bound once the first request bound a one-time token.
    pub fn config(&self) -> KsmConfig {
        self.lock().clone()
    }

    /// Fetches what `query` asks for: one `get_secret` request, plus one `get_folders` request
    /// when folder names are needed.
    pub async fn fetch(&self, query: &Query) -> Result<Snapshot, Error> {
        let mut payload = Map::new();
        if let Some(records) = &query.records {
            payload.insert("requestedRecords".into(), json!(records));
        }
        if let Some(folders) = &query.folders {
            payload.insert("requestedFolders".into(), json!(folders));
        }
        let response = self.post("get_secret", payload).await?;
        let app_key = self.lock().app_key.ok_or_else(|| {
            protocol(
                "get_secret",
                "the first response did not deliver the application key (encryptedAppKey)",
            )
        })?;
        let mut snapshot = Snapshot::default();
        let mut shared_keys = Vec::new();
        for entry in array(&response, "records", "get_secret")? {
            snapshot.records.push(record(entry, &app_key, None)?);
        }
        for folder in array(&response, "folders", "get_secret")? {
            let uid = string(folder, "folderUid").unwrap_or_default().to_owned();
            let key = decode(folder, "folderKey", "get_secret")
                .and_then(|sealed| open_key(&app_key, &sealed, &uid))?;
            for entry in folder
                .get("records")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let inner = string(entry, "innerFolderUid").unwrap_or(&uid);
                snapshot.records.push(record(entry, &key, Some(inner))?);
            }
            shared_keys.push((uid, key));
        }
        if query.folder_tree {
            let response = self.post("get_folders", Map::new()).await?;
            snapshot.folders = folders(&response, &app_key, &shared_keys)?;
        }
        Ok(snapshot)
    }

    /// Downloads and decrypts a file attachment.
    pub async fn download(&self, file: &File) -> Result<Vec<u8>, Error> {
        let endpoint = format!("file {}", file.uid);
        let request = Request::builder()
            .method(Method::GET)
            .uri(&file.url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| protocol(&endpoint, &format!("invalid download URL: {e}")))?;
        let (status, body) = self.send(request, &endpoint).await?;
        if status != StatusCode::OK {
            return Err(status_error(&endpoint, status, &body));
        }
        crypto::gcm_decrypt(&file.key, &body).map_err(|e| crypto_error(&endpoint, &file.uid, e))
    }

    /// Sends one signed request, binding the token and following a key rotation (once).
    async fn post(&self, endpoint: &str, mut payload: Map<String, Value>) -> Result<Value, Error> {
        let transmission_key: Key = crypto::random_bytes();
        let mut rotated = false;
        loop {
            let (config, request) = {
                let config = self.lock().clone();
                payload.insert("clientVersion".into(), CLIENT_VERSION.into());
                payload.insert("clientId".into(), config.client_id.clone().into());
                if config.token.is_some() {
                    let public = crypto::point_bytes(&config.private_key.public_key());
                    payload.insert("publicKey".into(), crypto::std_b64(&public).into());
                }
                let server = config.server_key(config.key_id).ok_or_else(|| {
                    protocol(
                        endpoint,
                        &format!("no server public key with id {}", config.key_id),
                    )
                })?;
                let sealed_key = crypto::ecies_encrypt(&server, &transmission_key);
                let body = crypto::gcm_encrypt(
                    &transmission_key,
                    Value::Object(payload.clone()).to_string().as_bytes(),
                );
                let mut signed = sealed_key.clone();
                signed.extend_from_slice(&body);
                let signature = crypto::sign(&config.private_key, &signed);
                let uri = format!("https://{}/api/rest/sm/v1/{endpoint}", config.hostname);
                let request = Request::builder()
                    .method(Method::POST)
                    .uri(uri)
                    .header("Content-Type", "application/octet-stream")
                    .header("PublicKeyId", config.key_id.to_string())
                    .header("TransmissionKey", crypto::std_b64(&sealed_key))
                    .header(
                        "Authorization",
                        format!("Signature {}", crypto::std_b64(&signature)),
                    )
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| protocol(endpoint, &format!("invalid request: {e}")))?;
                (config, request)
            };
            let (status, body) = self.send(request, endpoint).await?;
            if status == StatusCode::OK {
                let plain = if body.is_empty() {
                    b"{}".to_vec()
                } else {
                    crypto::gcm_decrypt(&transmission_key, &body).map_err(|e| {
                        protocol(endpoint, &format!("cannot decrypt the response: {e}"))
                    })?
                };
                let response: Value = serde_json::from_slice(&plain)
                    .map_err(|e| protocol(endpoint, &format!("the response is not JSON: {e}")))?;
                if config.token.is_some() {
                    self.bind(&config, &response, endpoint)?;
                }
                return Ok(response);
            }
            let error: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = string(&error, "error")
                .or_else(|| string(&error, "result_code"))
                .unwrap_or_default();
            if code == "key" && !rotated {
                let key_id = error
                    .get("key_id")
                    .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| protocol(endpoint, "key rotation without a key_id"))?;
                tracing::info!(
                    endpoint,
                    key_id,
                    "Keeper rotated its key; retrying with the new key id."
                );
                self.lock().key_id = key_id;
                rotated = true;
                continue;
            }
            return Err(status_error(endpoint, status, &body));
        }
    }

    /// Completes a one-time-token binding from the first response.
    fn bind(&self, used: &KsmConfig, response: &Value, endpoint: &str) -> Result<(), Error> {
        let (Some(token), Some(sealed)) = (&used.token, string(response, "encryptedAppKey")) else {
            return Err(protocol(
                endpoint,
                "the binding response has no encryptedAppKey",
            ));
        };
        let app_key = crypto::decode_b64(sealed)
            .and_then(|s| crypto::gcm_decrypt(token, &s))
            .and_then(|k| crypto::key(&k))
            .map_err(|e| Error::Auth {
                code: "binding".to_owned(),
                message: format!("cannot open the application key with the one-time token: {e}"),
            })?;
        let mut config = self.lock();
        config.app_key = Some(app_key);
        config.token = None;
        config.owner_key = string(response, "appOwnerPublicKey").map(str::to_owned);
        tracing::info!(host = config.hostname, "Bound the one-time token.");
        Ok(())
    }

    async fn send(
        &self,
        request: Request<Full<Bytes>>,
        endpoint: &str,
    ) -> Result<(StatusCode, Bytes), Error> {
        let host = request
            .uri()
            .authority()
            .map(ToString::to_string)
            .unwrap_or_default();
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| Error::Unreachable {
                    host: host.clone(),
                    message: bulwark_http::error_chain(&e),
                })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| Error::Unreachable {
                    host: host.clone(),
                    message: format!("reading the response: {e}"),
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                endpoint: endpoint.to_owned(),
                timeout: self.timeout,
            })?
    }
}

fn status_error(endpoint: &str, status: StatusCode, body: &[u8]) -> Error {
    let error: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let code = string(&error, "error")
        .or_else(|| string(&error, "result_code"))
        .unwrap_or("")
        .to_owned();
    // Server messages describe the request, never secret values; keep them short.
    let message: String = string(&error, "message")
        .or_else(|| string(&error, "additional_info"))
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if code == "throttled" {
        let retry_after = error
            .get("retry_after")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs_f64);
        return Error::Throttled { retry_after };
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Error::Unavailable {
            endpoint: endpoint.to_owned(),
            status: status.as_u16(),
            message: if message.is_empty() { code } else { message },
        };
    }
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        || code.contains("access_denied")
        || code.contains("invalid_client")
    {
        return Error::Auth {
            code: if code.is_empty() {
                status.as_u16().to_string()
            } else {
                code
            },
            message,
        };
    }
    Error::Protocol {
        endpoint: endpoint.to_owned(),
        message: format!("HTTP {}: {code} {message}", status.as_u16()),
    }
}

fn protocol(endpoint: &str, message: &str) -> Error {
    Error::Protocol {
        endpoint: endpoint.to_owned(),
        message: message.to_owned(),
    }
}

fn crypto_error(endpoint: &str, uid: &str, error: CryptoError) -> Error {
    protocol(endpoint, &format!("{uid}: {error}"))
}

fn string<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn array<'a>(value: &'a Value, key: &str, endpoint: &str) -> Result<&'a Vec<Value>, Error> {
    match value.get(key) {
        Some(Value::Array(items)) => Ok(items),
        None | Some(Value::Null) => {
            static EMPTY: Vec<Value> = Vec::new();
            Ok(&EMPTY)
        }
        Some(_) => Err(protocol(endpoint, &format!("{key} is not an array"))),
    }
}

fn decode(value: &Value, key: &str, endpoint: &str) -> Result<Vec<u8>, Error> {
    let text = string(value, key).ok_or_else(|| protocol(endpoint, &format!("no {key}")))?;
    crypto::decode_b64(text).map_err(|e| protocol(endpoint, &format!("{key}: {e}")))
}

fn open_key(wrapping: &Key, sealed: &[u8], uid: &str) -> Result<Key, Error> {
    crypto::gcm_decrypt(wrapping, sealed)
        .and_then(|k| crypto::key(&k))
        .map_err(|e| crypto_error("get_secret", uid, e))
}

/// Decrypts one record entry; its key is wrapped by `wrapping` (the application key, or a
/// shared folder's key), or is `wrapping` itself when the entry has no `recordKey`.
fn record(entry: &Value, wrapping: &Key, folder: Option<&str>) -> Result<Record, Error> {
    let uid = string(entry, "recordUid")
        .ok_or_else(|| protocol("get_secret", "a record has no recordUid"))?
        .to_owned();
    let key = match string(entry, "recordKey").filter(|s| !s.is_empty()) {
        Some(_) => open_key(wrapping, &decode(entry, "recordKey", "get_secret")?, &uid)?,
        None => *wrapping,
    };
    let data = crypto::gcm_decrypt(&key, &decode(entry, "data", "get_secret")?)
        .map_err(|e| crypto_error("get_secret", &uid, e))?;
    let data: Value = serde_json::from_slice(&data).map_err(|e| {
        protocol(
            "get_secret",
            &format!("{uid}: record data is not JSON: {e}"),
        )
    })?;
    let fields = |name| -> Vec<Field> {
        data.get(name)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|f| Field {
                field_type: string(f, "type").unwrap_or_default().to_owned(),
                label: string(f, "label").map(str::to_owned),
                value: match f.get("value") {
                    Some(Value::Array(values)) => values.clone(),
                    None | Some(Value::Null) => Vec::new(),
                    Some(other) => vec![other.clone()],
                },
            })
            .collect()
    };
    let mut files = Vec::new();
    for file in entry
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let file_uid = string(file, "fileUid").unwrap_or_default().to_owned();
        let file_key = open_key(&key, &decode(file, "fileKey", "get_secret")?, &file_uid)?;
        let meta = crypto::gcm_decrypt(&file_key, &decode(file, "data", "get_secret")?)
            .map_err(|e| crypto_error("get_secret", &file_uid, e))?;
        let meta: Value = serde_json::from_slice(&meta).unwrap_or(Value::Null);
        files.push(File {
            uid: file_uid,
            name: string(&meta, "name").unwrap_or_default().to_owned(),
            title: string(&meta, "title").unwrap_or_default().to_owned(),
            mime_type: string(&meta, "type").unwrap_or_default().to_owned(),
            size: meta.get("size").and_then(Value::as_u64).unwrap_or(0),
            url: string(file, "url").unwrap_or_default().to_owned(),
            key: file_key,
        });
    }
    Ok(Record {
        uid,
        title: string(&data, "title").unwrap_or_default().to_owned(),
        record_type: string(&data, "type").unwrap_or_default().to_owned(),
        folder_uid: folder
            .map(str::to_owned)
            .or_else(|| string(entry, "folderUid").map(str::to_owned)),
        notes: string(&data, "notes").unwrap_or_default().to_owned(),
        fields: fields("fields"),
        custom: fields("custom"),
        files,
    })
}

/// The folder tree of a `get_folders` response: shared folders' keys are wrapped by the
/// application key (AES-GCM), subfolders' by their shared folder's key (AES-CBC); names are in
/// AES-CBC'd `data`.
fn folders(
    response: &Value,
    app_key: &Key,
    shared: &[(String, Key)],
) -> Result<Vec<Folder>, Error> {
    let entries = array(response, "folders", "get_folders")?;
    let parent_of = |uid: &str| -> Option<String> {
        entries
            .iter()
            .find(|f| string(f, "folderUid") == Some(uid))
            .and_then(|f| string(f, "parent"))
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
    };
    let mut keys: Vec<(String, Key)> = shared.to_vec();
    let mut out = Vec::new();
    for entry in entries {
        let uid = string(entry, "folderUid").unwrap_or_default().to_owned();
        let parent = string(entry, "parent")
            .filter(|p| !p.is_empty())
            .map(str::to_owned);
        let sealed = decode(entry, "folderKey", "get_folders")?;
        let key = match &parent {
            None => open_key(app_key, &sealed, &uid)?,
            Some(_) => {
                // A subfolder's key is wrapped by the key of the shared folder at its root.
                let mut root = uid.clone();
                let mut depth = 0;
                while let Some(p) = parent_of(&root) {
                    root = p;
                    depth += 1;
                    if depth > 64 {
                        return Err(protocol("get_folders", &format!("{uid}: folder cycle")));
                    }
                }
                let root_key = keys
                    .iter()
                    .find(|(u, _)| *u == root)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| {
                        protocol(
                            "get_folders",
                            &format!("{uid}: no key for shared folder {root}"),
                        )
                    })?;
                crypto::cbc_decrypt(&root_key, &sealed)
                    .and_then(|k| crypto::key(&k))
                    .map_err(|e| crypto_error("get_folders", &uid, e))?
            }
        };
        if !keys.iter().any(|(u, _)| *u == uid) {
            keys.push((uid.clone(), key));
        }
        let name = match string(entry, "data") {
            Some(_) => {
                let plain = crypto::cbc_decrypt(&key, &decode(entry, "data", "get_folders")?)
                    .map_err(|e| crypto_error("get_folders", &uid, e))?;
                let data: Value = serde_json::from_slice(&plain).unwrap_or(Value::Null);
                string(&data, "name").unwrap_or_default().to_owned()
            }
            None => string(entry, "name").unwrap_or_default().to_owned(),
        };
        out.push(Folder {
            uid,
            parent_uid: parent,
            name,
        });
    }
    Ok(out)
}
