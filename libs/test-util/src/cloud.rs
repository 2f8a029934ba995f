//! Fake GCP and Azure secret services on loopback, checking requests as the real services do,
//! for the sidecar's cloud-stored KSM configurations (AWS is moto's, see [`crate::moto`]).
//!
//! - [`FakeGcp`]: the metadata server (plain HTTP, as on a node: it refuses a request without
//!   `Metadata-Flavor: Google` or with `X-Forwarded-For`, and issues an access token) and
//!   Secret Manager v1 over HTTPS (`GET /v1/projects/P/secrets/S/versions/V:access`, the
//!   bearer token it issued, `latest` resolving to the newest version, Google's JSON errors).
//! - [`FakeAzure`]: Microsoft Entra ID's token endpoint and a Key Vault over HTTPS. The token
//!   endpoint takes only the client credentials grant with a JWT assertion whose audience is
//!   `api://AzureADTokenExchange` and which equals the federated token it was given, for the
//!   configured tenant and client, with the Key Vault scope; Key Vault wants that token, an
//!   `api-version` it serves, and answers with its JSON error shapes.
//!
//! Each server runs on its own thread, so that synchronous and asynchronous tests can use it,
//! and stops when dropped. Every request is recorded (`requests`) for tests to inspect.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use bulwark_http::ResponseBody;

/// One request a fake received: method, path with query, and headers (lower-case names).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A server on its own thread with its own runtime; stopped on drop.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Handle = Arc<dyn Fn(Recorded) -> (StatusCode, Value) + Send + Sync>;

impl Server {
    fn start(tls: Option<Arc<rustls::ServerConfig>>, handle: Handle) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let shutdown = tokio_util::sync::CancellationToken::new();
                let handler = move |request: Request<Incoming>, _peer: SocketAddr| {
                    let handle = handle.clone();
                    async move { respond(&handle, request).await }
                };
                let serve = bulwark_http::serve(
                    listener,
                    tls,
                    handler,
                    shutdown.clone(),
                    std::time::Duration::from_secs(1),
                );
                tokio::pin!(serve);
                tokio::select! {
                    () = &mut serve => {}
                    _ = stopped => {
                        shutdown.cancel();
                        serve.await;
                    }
                }
            });
        });
        Ok(Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn respond(handle: &Handle, request: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        target: parts
            .uri
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, value) = handle(recorded);
    bulwark_http::response(
        status,
        "application/json; charset=utf-8",
        Bytes::from(value.to_string()),
    )
}

/// A serving identity for loopback signed by a fresh CA, and that CA's PEM.
fn identity() -> Result<(Arc<rustls::ServerConfig>, String), String> {
    let identity =
        crate::keeper::tls::generate(Ipv4Addr::LOCALHOST.into()).map_err(|e| e.to_string())?;
    Ok((identity.config, identity.ca_pem))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A random token, as the services issue them.
fn token(prefix: &str) -> String {
    let bytes: [u8; 24] = rand::random();
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The value of `key` in a form body.
fn form_value(body: &str, key: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (decode(k) == key).then(|| decode(v))
    })
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = text
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'+', _) => out.push(b' '),
            (b'%', Some(b)) => {
                out.push(b);
                i += 2;
            }
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A fake GCP: the metadata server and Secret Manager.
pub struct FakeGcp {
    metadata: Server,
    secret_manager: Server,
    ca_pem: String,
    state: Arc<Mutex<GcpState>>,
}

#[derive(Default)]
struct GcpState {
    tokens: Vec<String>,
    /// `projects/P/secrets/S` to its versions, oldest first.
    secrets: BTreeMap<String, Vec<Vec<u8>>>,
    requests: Vec<Recorded>,
}

impl std::fmt::Debug for FakeGcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeGcp")
            .field("metadata", &self.metadata.addr)
            .field("secret_manager", &self.secret_manager.addr)
            .finish_non_exhaustive()
    }
}

impl FakeGcp {
    pub fn start() -> Result<Self, String> {
        let state = Arc::new(Mutex::new(GcpState::default()));
        let for_metadata = state.clone();
        let metadata = Server::start(
            None,
            Arc::new(move |request| {
                let mut state = lock(&for_metadata);
                state.requests.push(request.clone());
                if request.headers.get("metadata-flavor").map(String::as_str) != Some("Google")
                    || request.headers.contains_key("x-forwarded-for")
                {
                    return (
                        StatusCode::FORBIDDEN,
                        json!("Missing Metadata-Flavor:Google header."),
                    );
                }
                if request.method != "GET"
                    || request.target
                        != "/computeMetadata/v1/instance/service-accounts/default/token"
                {
                    return (StatusCode::NOT_FOUND, json!("Not Found"));
                }
                let issued = token("ya29.");
                state.tokens.push(issued.clone());
                (
                    StatusCode::OK,
                    json!({"access_token": issued, "expires_in": 3599, "token_type": "Bearer"}),
                )
            }),
        )
        .map_err(|e| e.to_string())?;
        let (tls, ca_pem) = identity()?;
        let for_secrets = state.clone();
        let secret_manager = Server::start(
            Some(tls),
            Arc::new(move |request| {
                let mut state = lock(&for_secrets);
                state.requests.push(request.clone());
                gcp_access(&state, &request)
            }),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            metadata,
            secret_manager,
            ca_pem,
            state,
        })
    }

    /// Adds a version to `projects/PROJECT/secrets/SECRET`, creating the secret.
    pub fn add_version(&self, secret: &str, data: &[u8]) {
        lock(&self.state)
            .secrets
            .entry(secret.to_owned())
            .or_default()
            .push(data.to_vec());
    }

    /// `host:port` of the metadata server, for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        self.metadata.addr.to_string()
    }

    /// `https://127.0.0.1:PORT`, for `BULWARK_GCP_SECRET_MANAGER_URL`.
    pub fn secret_manager_url(&self) -> String {
        format!("https://{}", self.secret_manager.addr)
    }

    /// The CA that signed Secret Manager's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }
}

fn google_error(status: StatusCode, text: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"error": {"code": status.as_u16(), "message": message, "status": text}}),
    )
}

fn gcp_access(state: &GcpState, request: &Recorded) -> (StatusCode, Value) {
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| state.tokens.iter().any(|issued| issued == t)) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        );
    }
    let Some(name) = request
        .target
        .strip_prefix("/v1/")
        .and_then(|rest| rest.strip_suffix(":access"))
    else {
        return google_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Not Found");
    };
    if request.method != "GET" {
        return google_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed",
        );
    }
    let parts: Vec<&str> = name.split('/').collect();
    let ["projects", project, "secrets", secret, "versions", version] = parts.as_slice() else {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid resource field value in the request.",
        );
    };
    let key = format!("projects/{project}/secrets/{secret}");
    let Some(versions) = state.secrets.get(&key) else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Secret [{key}] not found or has no versions."),
        );
    };
    let index = match *version {
        "latest" => versions.len(),
        n => n.parse().unwrap_or(0),
    };
    match index.checked_sub(1).and_then(|i| versions.get(i)) {
        Some(data) => (
            StatusCode::OK,
            json!({"name": format!("{key}/versions/{index}"), "payload": {"data": STANDARD.encode(data)}}),
        ),
        None => google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Secret Version [{name}] not found."),
        ),
    }
}

/// A fake Azure: Microsoft Entra ID's token endpoint and a Key Vault, on one HTTPS server.
pub struct FakeAzure {
    server: Server,
    ca_pem: String,
    state: Arc<Mutex<AzureState>>,
}

struct AzureState {
    tenant_id: String,
    client_id: String,
    federated_token: String,
    tokens: Vec<String>,
    secrets: BTreeMap<String, String>,
    requests: Vec<Recorded>,
}

/// The Key Vault API versions the fake serves, as the real one does.
const KEY_VAULT_VERSIONS: [&str; 6] = ["7.0", "7.1", "7.2", "7.3", "7.4", "7.5"];

impl std::fmt::Debug for FakeAzure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAzure")
            .field("addr", &self.server.addr)
            .finish_non_exhaustive()
    }
}

impl FakeAzure {
    /// A tenant with one application `client_id`, federated with the service account token
    /// `federated_token` (see [`federated_token`]).
    pub fn start(tenant_id: &str, client_id: &str, federated_token: &str) -> Result<Self, String> {
        let state = Arc::new(Mutex::new(AzureState {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            federated_token: federated_token.to_owned(),
            tokens: Vec::new(),
            secrets: BTreeMap::new(),
            requests: Vec::new(),
        }));
        let (tls, ca_pem) = identity()?;
        let shared = state.clone();
        let server = Server::start(
            Some(tls),
            Arc::new(move |request| {
                let mut state = lock(&shared);
                state.requests.push(request.clone());
                if request.target.starts_with("/secrets/") {
                    key_vault(&state, &request)
                } else {
                    entra(&mut state, &request)
                }
            }),
        )
        .map_err(|e| e.to_string())?;
        Ok(Self {
            server,
            ca_pem,
            state,
        })
    }

    pub fn set_secret(&self, name: &str, value: &str) {
        lock(&self.state)
            .secrets
            .insert(name.to_owned(), value.to_owned());
    }

    /// `https://127.0.0.1:PORT/`, for `AZURE_AUTHORITY_HOST`.
    pub fn authority_host(&self) -> String {
        format!("https://{}/", self.server.addr)
    }

    /// `https://127.0.0.1:PORT`, for `BULWARK_AZURE_KEY_VAULT_URL`.
    pub fn vault_url(&self) -> String {
        format!("https://{}", self.server.addr)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }
}

/// A projected service account token as Azure Workload Identity mounts it: a JWT for the
/// audience `audience` (Azure's is `api://AzureADTokenExchange`) and subject `subject`. Its
/// signature is not checked here (that needs the cluster's keys).
pub fn federated_token(audience: &str, subject: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        json!({"aud": [audience], "sub": subject, "iss": "https://oidc.example", "exp": 4_000_000_000u64})
            .to_string(),
    );
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

fn entra_error(status: StatusCode, error: &str, description: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn entra(state: &mut AzureState, request: &Recorded) -> (StatusCode, Value) {
    let path = format!("/{}/oauth2/v2.0/token", state.tenant_id);
    if request.target != path {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            &format!("AADSTS90002: Tenant not found: {}", request.target),
        );
    }
    if request.method != "POST"
        || !request
            .headers
            .get("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"))
    {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
        );
    }
    let field = |key: &str| form_value(&request.body, key).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "AADSTS90019: client_assertion_type is invalid.",
        );
    }
    if field("client_id") != state.client_id {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "AADSTS700016: Application not found in the directory.",
        );
    }
    let assertion = field("client_assertion");
    let audience_ok = assertion
        .split('.')
        .nth(1)
        .and_then(|claims| URL_SAFE_NO_PAD.decode(claims).ok())
        .and_then(|claims| serde_json::from_slice::<Value>(&claims).ok())
        .is_some_and(|claims| {
            claims["aud"] == json!(["api://AzureADTokenExchange"])
                || claims["aud"] == "api://AzureADTokenExchange"
        });
    if !audience_ok {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS700212: No matching federated identity record found for presented assertion audience.",
        );
    }
    if assertion != state.federated_token {
        return entra_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "AADSTS700213: No matching federated identity record found for presented assertion subject.",
        );
    }
    if field("scope") != "https://vault.azure.net/.default" {
        return entra_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "AADSTS70011: The provided value for the input parameter 'scope' is not valid.",
        );
    }
    let issued = token("eyJ0eXAiOiJKV1Qi.");
    state.tokens.push(issued.clone());
    (
        StatusCode::OK,
        json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": issued}),
    )
}

fn vault_error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (status, json!({"error": {"code": code, "message": message}}))
}

fn key_vault(state: &AzureState, request: &Recorded) -> (StatusCode, Value) {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let version = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("api-version="));
    match version {
        None => {
            return vault_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "The 'api-version' query parameter is missing.",
            );
        }
        Some(v) if !KEY_VAULT_VERSIONS.contains(&v) => {
            return vault_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                &format!("The specified version ({v}) is not recognized."),
            );
        }
        Some(_) => {}
    }
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|t| state.tokens.iter().any(|issued| issued == t)) {
        return vault_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
    }
    if request.method != "GET" {
        return vault_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadParameter",
            "Method not allowed.",
        );
    }
    let name = path.trim_start_matches("/secrets/");
    let name = name.split('/').next().unwrap_or_default();
    match state.secrets.get(name) {
        Some(value) => (
            StatusCode::OK,
            json!({"value": value, "id": format!("https://vault{path}/0123456789abcdef"), "attributes": {"enabled": true}}),
        ),
        None => vault_error(
            StatusCode::NOT_FOUND,
            "SecretNotFound",
            &format!("A secret with (name/id) {name} was not found in this key vault."),
        ),
    }
}
