//! A fake Keeper Secrets Manager server on loopback that speaks the real KSM wire protocol,
//! so that the official SDKs, and our own code built on them, can bind and read secrets in tests.
//!
//! It implements the server side of what `research/injector.md` §2 documents: ECIES
//! transmission keys to its own P-256 key, AES-GCM payloads and responses, ECDSA P-256/SHA-256
//! request signatures checked against each client's registered key, one-time-token binding
//! (`encryptedAppKey`, `appOwnerPublicKey`), record keys wrapped by the application key or by a
//! shared folder's key, `get_secret` (with `requestedRecords` and `requestedFolders`),
//! `get_folders` (subfolder keys and names in AES-CBC), and file downloads. The official Python
//! SDK reads every one of these from it in `tests/it/keeper.rs`.
//!
//! A client needs this configuration ([`FakeKeeper::token_config`] writes it):
//!
//! - `hostname`: [`FakeKeeper::hostname`], `127.0.0.N` (port 443) or `127.0.0.1:PORT`;
//! - `clientKey`: a one-time token from [`FakeKeeper::one_time_token`] (or pass the token to
//!   the SDK with the hostname given separately: `host:token` tokens break when the host
//!   carries a port);
//! - `serverPublicKey`: [`FakeKeeper::server_public_key`], which clients accept instead of
//!   Keeper's built-in keys;
//! - `serverPublicKeyId`: [`FakeKeeper::server_public_key_id`]; an unknown id is answered with
//!   the key-rotation error, which the Rust crate retries forever in this mode;
//! - trust for [`FakeKeeper::ca_pem`]: `SSL_CERT_FILE` for the official Rust crate,
//!   `REQUESTS_CA_BUNDLE` for the Python SDK.
//!
//! The official Rust crate ignores any port in `hostname` and always calls port 443, so the
//! server binds the first free `127.0.0.N:443` (N from 2 to 254), which works as root; elsewhere
//! it falls back to an ephemeral port on 127.0.0.1, which only clients that honour the port
//! (Python, our own) can reach.
//!
//! Tests control it while it runs: change records ([`FakeKeeper::set_record`],
//! [`FakeKeeper::update_field`], [`FakeKeeper::remove_record`]), throttle requests, rotate the
//! key id, simulate an outage, and read what clients sent ([`FakeKeeper::requests`],
//! [`FakeKeeper::payloads`]). It logs endpoints, statuses and UIDs at debug level, never a
//! secret value.
//!
//! Known differences from the real service: one application per server; only `get_secret`,
//! `get_folders` and downloads (updates, creation, uploads and deletion answer `bad_request`);
//! no token expiry, `expiresOn`, `warnings`, links or thumbnails; one key pair behind every
//! key id.

mod crypto;
mod model;
mod protocol;
mod server;
mod state;
pub(crate) mod tls;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use p256::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use tokio::sync::watch;

pub use self::model::{Field, File, Folder, Record, new_uid};
use self::server::Shared;
use self::state::{Client, State};

/// The title of the fake application (`appData`).
const APP_TITLE: &str = "Bulwark test application";

/// Why the fake server could not start or do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind a loopback address for the fake Keeper server")]
    Bind(#[source] io::Error),
    #[error("cannot start the fake Keeper server thread")]
    Spawn(#[source] io::Error),
    #[error("cannot generate the fake Keeper server's certificate")]
    Certificate {
        #[source]
        source: rcgen::Error,
    },
    #[error("cannot build the fake Keeper server's TLS configuration")]
    Tls {
        #[source]
        source: rustls::Error,
    },
    #[error("cannot write the fake Keeper CA certificate to {}", path.display())]
    WriteCa {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot encode a client private key as PKCS#8")]
    ClientKey,
    #[error("no folder {uid} on the fake Keeper server")]
    UnknownFolder { uid: String },
    #[error("folder {uid} is nested too deeply or in a cycle")]
    FolderTooDeep { uid: String },
    #[error("no record {uid} on the fake Keeper server")]
    UnknownRecord { uid: String },
    #[error("record {uid} has no field {selector:?} (by label or type)")]
    UnknownField { uid: String, selector: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One request the server received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// The API endpoint (`get_secret`, `get_folders`, ...) or `download` for a file download.
    pub endpoint: String,
    /// The `PublicKeyId` header.
    pub key_id: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The decrypted payload (`clientVersion`, `clientId`, `publicKey`, `requestedRecords`, ...)
    /// of a request that passed verification; `{"fileUid"}` for a download.
    pub payload: Option<Value>,
}

/// A running fake Keeper server with one application. Dropping it stops the server.
pub struct FakeKeeper {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    /// Dropped to stop the server thread.
    stop: Option<watch::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeKeeper {
    // Only the address: the state holds keys and secret values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeKeeper")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeKeeper {
    /// Starts a server with an empty application, on its own thread (so it works from
    /// synchronous and asynchronous tests alike), with a fresh CA, certificate and server key.
    pub fn start() -> Result<FakeKeeper> {
        let listener = server::bind().map_err(Error::Bind)?;
        let addr = listener.local_addr().map_err(Error::Bind)?;
        let identity = tls::generate(addr.ip())?;
        let state = State::new(format!("https://{}", host(addr)), APP_TITLE);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            down: watch::Sender::new(false),
        });
        let (stop, stopped) = watch::channel(());
        let thread = server::spawn(listener, identity.config, shared.clone(), stopped)
            .map_err(Error::Spawn)?;
        tracing::debug!(%addr, "Fake Keeper server started.");
        Ok(FakeKeeper {
            shared,
            addr,
            ca_pem: identity.ca_pem,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The bound address: `127.0.0.N:443`, or `127.0.0.1:PORT` where 443 cannot be bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What clients put in their `hostname`: `127.0.0.N`, or `127.0.0.1:PORT` off port 443.
    pub fn hostname(&self) -> String {
        host(self.addr)
    }

    /// Whether the server listens on port 443, which the official Rust crate needs.
    pub fn on_https_port(&self) -> bool {
        self.addr.port() == 443
    }

    /// The PEM of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes [`ca_pem`](Self::ca_pem) to `dir/fake-keeper-ca.pem` and returns its path, for
    /// `SSL_CERT_FILE` or `REQUESTS_CA_BUNDLE`.
    pub fn write_ca(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join("fake-keeper-ca.pem");
        std::fs::write(&path, &self.ca_pem).map_err(|source| Error::WriteCa {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// The server's public key, URL-safe base64 without padding of the uncompressed P-256
    /// point: the `serverPublicKey` config value.
    pub fn server_public_key(&self) -> String {
        let state = self.shared.state();
        crypto::url_b64(&crypto::point_bytes(&state.server_key.public_key()))
    }

    /// The key id clients should send now: the `serverPublicKeyId` config value.
    pub fn server_public_key_id(&self) -> String {
        self.shared.state().current_key_id().to_string()
    }

    /// Mints a one-time token: the `clientKey` config value (or the SDKs' `token` argument,
    /// with the hostname given separately).
    pub fn one_time_token(&self) -> String {
        self.shared.state().mint_token()
    }

    /// The configuration a client binds with: `hostname`, `clientKey`, `serverPublicKey` and
    /// `serverPublicKeyId`.
    pub fn token_config(&self, token: &str) -> Value {
        json!({
            "hostname": self.hostname(),
            "clientKey": token,
            "serverPublicKey": self.server_public_key(),
            "serverPublicKeyId": self.server_public_key_id(),
        })
    }

    /// Registers a client that is already bound and returns its whole configuration, as an
    /// SDK leaves it after binding: `hostname`, `clientId`, `privateKey` (PKCS#8 DER, standard
    /// base64), `appKey`, `appOwnerPublicKey`, `serverPublicKey` and `serverPublicKeyId`.
    pub fn bound_config(&self) -> Result<Value> {
        let token = crypto::random_key();
        let client_key = crypto::random_secret_key();
        let private_key = client_key.to_pkcs8_der().map_err(|_| Error::ClientKey)?;
        let client_id = crypto::client_id(&token);
        let mut state = self.shared.state();
        let rotation = state.rotation();
        state.clients.insert(
            client_id.clone(),
            Client {
                token,
                public_key: Some(client_key.public_key()),
                told_rotation: rotation,
            },
        );
        Ok(json!({
            "hostname": self.hostname(),
            "clientId": client_id,
            "privateKey": crypto::std_b64(private_key.as_bytes()),
            "appKey": crypto::std_b64(&state.app.key),
            "appOwnerPublicKey": crypto::std_b64(&crypto::point_bytes(&state.app.owner.public_key())),
            "serverPublicKey": crypto::url_b64(&crypto::point_bytes(&state.server_key.public_key())),
            "serverPublicKeyId": state.current_key_id().to_string(),
        }))
    }

    /// Stores a record, or replaces the one with the same UID (keeping its key, with a new
    /// revision). Its folder, if any, must exist.
    pub fn set_record(&self, record: Record) -> Result<()> {
        self.shared.state().set_record(record)
    }

    /// Replaces the values of one field of a record: the first whose label is `selector`, else
    /// the first whose type is `selector` (standard fields before custom ones).
    pub fn update_field<V: Into<Value>>(
        &self,
        uid: &str,
        selector: &str,
        value: impl IntoIterator<Item = V>,
    ) -> Result<()> {
        let value = value.into_iter().map(Into::into).collect();
        self.shared.state().update_field(uid, selector, value)
    }

    /// Removes a record; returns whether it existed.
    pub fn remove_record(&self, uid: &str) -> bool {
        self.shared.state().records.remove(uid).is_some()
    }

    /// Stores a shared folder or subfolder (its parent must exist), or renames an existing one.
    pub fn set_folder(&self, folder: Folder) -> Result<()> {
        self.shared.state().set_folder(folder)
    }

    /// Answers the next `n` API requests with 403 `{"error":"throttled","retry_after":...}`;
    /// both SDKs wait `retry_after` (give or take a quarter) before they retry.
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        let mut state = self.shared.state();
        state.throttle = n;
        state.retry_after = retry_after;
    }

    /// Moves the server to a new key id and returns it. Each client's next request with an
    /// older id gets the rotation error (400 `{"error":"key","key_id":N,...}`); after that the
    /// server accepts both the new id (Python switches to it) and the older ones (the Rust
    /// crate with a custom `serverPublicKey` keeps its id). The key pair stays the same,
    /// because clients configured with `serverPublicKey` have no way to learn a new key.
    pub fn rotate_key(&self) -> String {
        let mut state = self.shared.state();
        let next = state.current_key_id() + 1;
        state.key_ids.push(next);
        next.to_string()
    }

    /// Simulates an outage: while down, the server resets every connection as soon as it is
    /// accepted (and cuts open ones), so clients see a connection error. The address stays
    /// bound, so no other fake server can take it meanwhile.
    pub fn set_down(&self, down: bool) {
        self.shared.down.send_replace(down);
    }

    /// While set, every request is answered `503 Service Unavailable` (plain text), as a
    /// load balancer in front of a failed backend would.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.shared.state().unavailable = unavailable;
    }

    /// How many requests reached `endpoint` (`get_secret`, `get_folders`, `download`, ...),
    /// whatever their outcome, including throttled and rejected ones.
    pub fn requests(&self, endpoint: &str) -> usize {
        let state = self.shared.state();
        state.log.iter().filter(|r| r.endpoint == endpoint).count()
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<ApiRequest> {
        self.shared.state().log.clone()
    }

    /// The decrypted payloads of the verified requests to `endpoint`, oldest first.
    pub fn payloads(&self, endpoint: &str) -> Vec<Value> {
        let state = self.shared.state();
        state
            .log
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .filter_map(|r| r.payload.clone())
            .collect()
    }

    /// The decrypted payload of the last verified request to `endpoint`.
    pub fn last_payload(&self, endpoint: &str) -> Option<Value> {
        self.payloads(endpoint).pop()
    }

    /// How many clients have bound (sent their public key with a valid signature).
    pub fn bound_clients(&self) -> usize {
        let state = self.shared.state();
        state
            .clients
            .values()
            .filter(|c| c.public_key.is_some())
            .count()
    }
}

impl Drop for FakeKeeper {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The thread only ends by returning; a panic there has been reported already.
            let _ = thread.join();
        }
    }
}

/// `127.0.0.N` on port 443, where clients need no port; `IP:PORT` elsewhere.
fn host(addr: SocketAddr) -> String {
    if addr.port() == 443 {
        addr.ip().to_string()
    } else {
        addr.to_string()
    }
}
