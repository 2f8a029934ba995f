//! A fake Kubernetes API server on loopback, for tests that drive kube-rs through a kubeconfig.
//!
//! It speaks real Kubernetes JSON over HTTP/1.1: get, list, watch, create, replace, the four patch
//! types, delete and deletecollection, the `status` and `scale` subresources, `Status` errors,
//! and one global resourceVersion counter like etcd's revision. Objects are untyped JSON kept in
//! memory, so any served resource (see `resources.rs`) works without generated types.
//!
//! Why not the `kube-fake-client` crate: it is built on kube 4.2 and k8s-openapi 0.28 while we use
//! kube 5 and k8s-openapi 0.29, so it would put a second kube tree in every test build;
//! it has no watch, which kube-runtime's watchers use; and it is an in-process tower service for
//! `kube::Client::new`, not an HTTP server, so our binaries could not reach it
//! through the kubeconfig they load in production. A server of our own covers all three
//! and keeps kube out of this crate's dependencies.
//!
//! Build a client in a test from [`FakeKube::kubeconfig_yaml`] (this crate does not depend on kube):
//!
//! ```ignore
//! let fake = FakeKube::start().await?;
//! let kubeconfig = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml("default"))?;
//! let options = kube::config::KubeConfigOptions::default();
//! let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options).await?;
//! let client = kube::Client::try_from(config)?;
//! ```
//!
//! Every request except `/version` and the health checks needs the kubeconfig's bearer token.
//!
//! Known differences from a real API server: no admission, defaulting or schema validation
//! beyond names, `spec.replicas` and namespace phase; core/v1 and events.k8s.io/v1 events are
//! separate stores; deleting a namespace does not delete its objects; server-side apply is a
//! strategic merge without field ownership conflicts; a replace never creates; lists ignore
//! `resourceVersion` and later pages of a paginated list are not a snapshot; JSON only
//! (no protobuf or Table output); no `log`, `exec`, `attach` or `portforward` subresources.

mod error;
mod handlers;
mod patch;
mod resources;
mod selector;
mod server;
mod store;
mod watch;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch as channel;
use tokio::task::JoinHandle;
use tracing::debug;

pub use self::error::Error;
pub use self::resources::GroupResource;
use self::server::{Shared, lock};
use self::store::Store;

/// How many changes a fresh server retains for watches to resume from.
const DEFAULT_HISTORY: usize = 10_000;

/// How often an idle watch that allows bookmarks receives one.
const DEFAULT_BOOKMARK_INTERVAL: Duration = Duration::from_secs(10);

/// A running fake API server. Dropping it stops the server and closes every connection.
pub struct FakeKube {
    shared: Arc<Shared>,
    shutdown: channel::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

/// Options for [`FakeKube`]; start from [`FakeKube::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    history_limit: usize,
    bookmark_interval: Duration,
}

/// A failure to inject: the next `times` requests that match answer `code` with a `Status` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    remaining: usize,
    code: u16,
    method: Option<Method>,
    path_contains: Option<String>,
}

impl FakeKube {
    /// Starts a server with default options on `127.0.0.1` and an ephemeral port.
    pub async fn start() -> io::Result<FakeKube> {
        FakeKube::builder().start().await
    }

    /// Options for a server, such as a small watch history for expiry tests.
    pub fn builder() -> Builder {
        Builder {
            history_limit: DEFAULT_HISTORY,
            bookmark_interval: DEFAULT_BOOKMARK_INTERVAL,
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// The bound loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The bearer token every request except `/version` and the health checks must carry.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// A kubeconfig with one cluster, user (bearer token) and current context, whose default
    /// namespace is `namespace`.
    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        // A JSON string is a valid YAML scalar, which quotes any namespace safely.
        let namespace = Value::from(namespace);
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: bulwark-fake\n  cluster:\n    server: {url}\n\
             users:\n\
             - name: bulwark-fake\n  user:\n    token: {token}\n\
             contexts:\n\
             - name: bulwark-fake\n  context:\n    cluster: bulwark-fake\n    user: bulwark-fake\n    namespace: {namespace}\n\
             current-context: bulwark-fake\n",
            url = self.url(),
            token = self.shared.token,
        )
    }

    /// Writes [`kubeconfig_yaml`](Self::kubeconfig_yaml) to `dir/kubeconfig`, readable by the owner
    /// only since it holds a token, and returns its path.
    pub fn write_kubeconfig(&self, dir: &Path, namespace: &str) -> io::Result<PathBuf> {
        use std::io::Write as _;
        let path = dir.join("kubeconfig");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path)?;
        file.write_all(self.kubeconfig_yaml(namespace).as_bytes())?;
        Ok(path)
    }

    /// Stops the server and waits until every connection is closed.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            // The task only ends by returning or by being aborted; either way it is gone.
            let _ = task.await;
        }
    }

    /// Stores an object as if it had been written through the API, waking watches.
    ///
    /// The resource comes from `apiVersion` and `kind`; a namespaced object without
    /// `metadata.namespace` goes to `default`. An existing object is replaced without
    /// preconditions, and `status`, `generation` and `creationTimestamp` are stored as given,
    /// so tests can seed any state. Returns the stored object.
    pub fn insert(&self, object: Value) -> Result<Value, Error> {
        self.shared.write(|store| store.upsert(object))
    }

    /// An object by `apiVersion` (`v1`, `apps/v1`, ...), plural resource, namespace and name.
    pub fn get(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let resource = resources::find_by_api_version(api_version, plural)?;
        self.shared
            .store()
            .get(resource, namespace.unwrap_or(""), name)
            .ok()
    }

    /// Every object of a resource, in one namespace or (with `None`) all of them, ordered by
    /// namespace and name; empty for an unknown resource.
    pub fn list(&self, api_version: &str, plural: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(resource) = resources::find_by_api_version(api_version, plural) else {
            return Vec::new();
        };
        let selectors = selector::Selectors::default();
        self.shared
            .store()
            .list(resource, namespace, &selectors)
            .into_iter()
            .map(|(_, object)| object)
            .collect()
    }

    /// Deletes an object at once, ignoring finalizers, waking watches; returns what was deleted.
    pub fn remove(
        &self,
        api_version: &str,
        plural: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let resource = resources::find_by_api_version(api_version, plural)?;
        self.shared
            .write(|store| store.force_delete(resource, namespace.unwrap_or(""), name))
    }

    /// Forgets the change history, so that a watch from any older resourceVersion gets 410.
    pub fn compact(&self) {
        self.shared.write(Store::compact);
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().revision()
    }

    /// Every request served so far, as method and path with query, in arrival order.
    pub fn requests(&self) -> Vec<(Method, String)> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the requests served so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Makes the next `times` requests, whatever they are, fail with `code`.
    pub fn fail_next(&self, times: usize, code: u16) {
        self.inject(Fault::new(times, code));
    }

    /// Adds a fault. Faults are checked in the order they were added, after authentication.
    pub fn inject(&self, fault: Fault) {
        if fault.remaining > 0 {
            lock(&self.shared.faults).push(fault);
        }
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            // Aborting the server task drops its set of connection tasks, which aborts them too.
            task.abort();
        }
    }
}

impl fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token is left out: test output must not carry credentials, even fake ones.
        f.debug_struct("FakeKube")
            .field("addr", &self.shared.addr)
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// How many changes to retain for watches; resuming from before them answers 410.
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes;
        self
    }

    /// How often idle watches that allow bookmarks receive one.
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval;
        self
    }

    /// Binds `127.0.0.1:0` and serves on a tokio task of the current runtime.
    pub async fn start(self) -> io::Result<FakeKube> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let seed = nanos ^ u64::from(std::process::id()) << 32 ^ u64::from(addr.port());
        let mut store = Store::new(self.history_limit, seed);
        let token = format!(
            "bulwark-fake-{:016x}{:016x}",
            store.next_random(),
            store.next_random()
        );
        let (revisions, _) = channel::channel(store.revision());
        let (shutdown, shutdown_rx) = channel::channel(false);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            revisions,
            shutdown: shutdown_rx.clone(),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            token,
            addr,
            bookmark_interval: self.bookmark_interval,
        });
        let task = tokio::spawn(server::serve(listener, shared.clone(), shutdown_rx));
        debug!(message = "Fake Kubernetes API server started.", %addr);
        Ok(FakeKube {
            shared,
            shutdown,
            task: Some(task),
        })
    }
}

impl Fault {
    /// The next `times` requests fail with `code`.
    pub fn new(times: usize, code: u16) -> Self {
        Fault {
            remaining: times,
            code,
            method: None,
            path_contains: None,
        }
    }

    /// Only requests with this method fail.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Only requests whose path and query contain this string fail.
    pub fn path_contains(mut self, fragment: impl Into<String>) -> Self {
        self.path_contains = Some(fragment.into());
        self
    }

    fn matches(&self, method: &Method, target: &str) -> bool {
        self.remaining > 0
            && self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| target.contains(p))
    }
}
