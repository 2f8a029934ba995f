//! One refresh cycle and the init and sidecar loops around it.
//!
//! A cycle makes one batched request to Keeper (plus the folder tree and file downloads when
//! the spec needs them), resolves and renders every output file, publishes the set
//! atomically, refreshes the cache, and signals the application if anything changed. When
//! Keeper cannot be reached (a transient error), the cache serves for up to 24 hours, with the
//! seed's `"using cached secrets"` warning; refusals (access revoked, record gone) are never
//! papered over with cached secrets.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bulwark_ksm::{KsmConfig, Options, Query};
use bulwark_sidecar_spec::SidecarSpec;
use tokio_util::sync::CancellationToken;

use crate::cache::{self, Cache, Clock, Entry};
use crate::inputs::{Inputs, Mode};

/// The exit code when the secrets could not be delivered and the pod asked to fail
/// (`keeper.security/fail-on-error`).
pub const EXIT_UNDELIVERED: u8 = 1;
use crate::keeper::{Connect, Keeper, Ksm};
use crate::schedule::Schedule;
use crate::select::{self, Content};
use crate::{metrics, publish, render, signal};

/// Why a cycle delivered nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Keeper(#[from] bulwark_ksm::Error),
    #[error(transparent)]
    Select(#[from] select::Error),
    #[error(transparent)]
    Render(#[from] render::Error),
    #[error(transparent)]
    Publish(#[from] publish::Error),
    /// Keeper refused the pod's one-time token (used, expired or mistyped): no retry helps.
    #[error(
        "{0}: the one-time token cannot be bound; issue a new one and update the KSM configuration Secret"
    )]
    TokenRefused(bulwark_ksm::Error),
    #[error("{keeper}; and no cached secrets to serve: {cache}")]
    NoCache {
        keeper: bulwark_ksm::Error,
        cache: String,
    },
    /// Keeper could not answer within the init container's budget.
    #[error("{last} (gave up after {attempts} attempts in {}s)", after.as_secs())]
    GaveUp {
        attempts: u32,
        after: Duration,
        last: Box<Error>,
    },
}

/// How long the init container keeps trying while Keeper is unreachable or throttling, before
/// it fails with the reason, unless the config says otherwise.
pub const INIT_RETRY_BUDGET: Duration = Duration::from_secs(60);

impl Error {
    /// A bounded metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Keeper(e) | Error::TokenRefused(e) | Error::NoCache { keeper: e, .. } => {
                e.reason()
            }
            Error::Select(e) => e.reason(),
            Error::Render(_) => "render",
            Error::Publish(_) => "write",
            Error::GaveUp { last, .. } => last.reason(),
        }
    }

    /// Whether the pod's inputs are at fault (a refused one-time token; a malformed
    /// configuration never gets this far, see `Inputs::read`), which only a change to them
    /// fixes.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, Error::TokenRefused(_))
    }

    /// When Keeper could not answer for now (unreachable, unavailable or throttling): how
    /// long it asked us to wait, if it did.
    fn transient(&self) -> Option<Option<Duration>> {
        match self {
            Error::Keeper(e) | Error::NoCache { keeper: e, .. } if e.is_transient() => {
                Some(e.retry_after())
            }
            _ => None,
        }
    }
}

/// How a successful cycle served the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// Fetched from Keeper.
    Fetched {
        secrets: usize,
        changes: publish::Changes,
    },
    /// From the cache, because Keeper was unreachable or throttling.
    Cached {
        age: Duration,
        changes: publish::Changes,
        /// How long Keeper asked us to wait, when it throttled.
        retry_after: Option<Duration>,
    },
}

impl Served {
    pub fn changes(&self) -> &publish::Changes {
        match self {
            Served::Fetched { changes, .. } | Served::Cached { changes, .. } => changes,
        }
    }
}

/// The state `/ready` reports: ready while the files are current or cached within 24 hours.
#[derive(Debug, Clone, Default)]
pub struct Status(Arc<Mutex<Option<Result<(), NotReady>>>>);

/// Why the sidecar is not ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("secrets not delivered yet")]
    NotYet,
    /// The last cycle failed: its error's metric reason and message (never a secret).
    #[error("{message}")]
    Failed {
        reason: &'static str,
        message: String,
    },
}

impl Status {
    fn set(&self, state: Result<(), NotReady>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
    }

    /// `Ok` once secrets are served; why not otherwise.
    pub fn check(&self) -> Result<(), NotReady> {
        match &*self.0.lock().unwrap_or_else(PoisonError::into_inner) {
            None => Err(NotReady::NotYet),
            Some(state) => state.clone(),
        }
    }
}

/// The sidecar's runtime for one pod.
#[derive(Debug)]
pub struct Agent {
    spec: SidecarSpec,
    mount: PathBuf,
    /// The KSM configuration as the pod received it.
    config: KsmConfig,
    /// Whether that configuration is a one-time token, whose binding must be kept.
    token: bool,
    /// Whether the binding of that token is kept on the volume already.
    binding_kept: AtomicBool,
    /// Cycles served from the cache since the last fetch, for the rate of the warning.
    cached_in_a_row: AtomicU32,
    /// How long init keeps trying while Keeper cannot answer.
    init_retry_for: Duration,
    connect: Arc<dyn Connect>,
    keeper: Mutex<Option<Arc<dyn Keeper>>>,
    cache: Cache,
    clock: Arc<dyn Clock>,
    pod: String,
    /// Where processes are listed for signals, and our own PID.
    proc: PathBuf,
    pub status: Status,
}

impl Agent {
    /// An agent for `inputs`, with extra trust from `ca_pem` (the spec's CA file, read by the
    /// caller), the time from `clock`.
    pub fn new(inputs: &Inputs, ca_pem: Option<Vec<u8>>, clock: Arc<dyn Clock>) -> Self {
        let mount = PathBuf::from(&inputs.spec.mount_path);
        Self {
            cache: Cache::new(&mount, inputs.ksm_config.expose()),
            spec: inputs.spec.clone(),
            mount,
            token: !inputs.ksm.is_bound(),
            config: inputs.ksm.clone(),
            binding_kept: AtomicBool::new(false),
            cached_in_a_row: AtomicU32::new(0),
            init_retry_for: INIT_RETRY_BUDGET,
            connect: Arc::new(Ksm {
                options: Options {
                    ca_pem,
                    timeout: Duration::from_secs(30),
                },
            }),
            keeper: Mutex::new(None),
            clock,
            pod: inputs.pod.clone(),
            proc: PathBuf::from("/proc"),
            status: Status::default(),
        }
    }

    /// Uses `proc` instead of `/proc` to find processes to signal (tests).
    pub fn with_proc(mut self, proc: &Path) -> Self {
        self.proc = proc.to_path_buf();
        self
    }

    /// Lets init try for `budget` instead of [`INIT_RETRY_BUDGET`].
    pub fn with_init_retry_for(mut self, budget: Duration) -> Self {
        self.init_retry_for = budget;
        self
    }

    /// Reaches Keeper through `connect` instead of the KSM client (tests).
    pub fn with_keeper(mut self, connect: Arc<dyn Connect>) -> Self {
        self.connect = connect;
        self
    }

    /// The Keeper client, made on first use. A one-time token that an earlier container of
    /// the pod (or an earlier attempt of this one) already bound is replaced by the
    /// configuration it was bound to.
    fn keeper(&self) -> Result<Arc<dyn Keeper>, Error> {
        let mut slot = self.keeper.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(keeper) = slot.as_ref() {
            return Ok(keeper.clone());
        }
        let mut config = self.config.clone();
        if self.token {
            let kept = match self.cache.load_binding() {
                Ok(Some(bound)) => Some(bound),
                // Caches written before the binding had a file of its own carry it.
                _ => self
                    .cache
                    .load(self.clock.now())
                    .ok()
                    .flatten()
                    .and_then(|cached| cached.entry.bound_config),
            };
            if let Some(bound) = kept.and_then(|b| KsmConfig::parse(&b).ok()) {
                tracing::info!(
                    "Using the KSM configuration bound by an earlier container of this pod."
                );
                self.binding_kept.store(true, Ordering::Relaxed);
                config = bound;
            }
        }
        let keeper = self.connect.connect(config)?;
        *slot = Some(keeper.clone());
        Ok(keeper)
    }

    /// Keeps the binding of this pod's one-time token as soon as Keeper has accepted it,
    /// whatever becomes of the fetch that bound it: a token binds only once.
    fn keep_binding(&self, keeper: &dyn Keeper) {
        if !self.token || self.binding_kept.load(Ordering::Relaxed) {
            return;
        }
        let config = keeper.config();
        if !config.is_bound() {
            return;
        }
        match self.cache.store_binding(&config.to_json()) {
            Ok(()) => self.binding_kept.store(true, Ordering::Relaxed),
            Err(error) => {
                tracing::error!(%error, "Cannot keep the binding of the one-time token; a restarted container will not be able to use it.")
            }
        }
    }

    /// Runs one cycle: fetch, render, publish and cache; or serve the cache when Keeper is
    /// unreachable.
    pub async fn cycle(&self, mode: Mode) -> Result<Served, Error> {
        let started = Instant::now();
        let fetched = self.fetch().await;
        let took = started.elapsed();
        let result = match fetched {
            Ok((files, secrets)) => {
                metrics::fetched(secrets, took, unix(self.clock.now()));
                let changes = publish::publish(&self.mount, &files)?;
                let entry = Entry {
                    fetched_at: self.clock.now(),
                    // The binding has a file of its own (`keep_binding`).
                    bound_config: None,
                    files,
                };
                if let Err(error) = self.cache.store(&entry) {
                    tracing::warn!(%error, "Cannot update the cache; the secrets were delivered.");
                }
                self.cached_in_a_row.store(0, Ordering::Relaxed);
                tracing::info!(
                    pod = self.pod,
                    mode = mode.as_str(),
                    secrets,
                    written = changes.written.len(),
                    removed = changes.removed.len(),
                    duration_ms = took.as_millis() as u64,
                    "Fetched secrets from Keeper."
                );
                Ok(Served::Fetched { secrets, changes })
            }
            Err(Error::Keeper(keeper)) if keeper.is_transient() => {
                metrics::fetch_failed(keeper.reason(), took);
                self.serve_cached(keeper)
            }
            Err(error) => {
                metrics::fetch_failed(error.reason(), took);
                Err(error)
            }
        };
        match &result {
            Ok(served) => {
                let changed = served.changes();
                metrics::files_changed(changed.written.len() + changed.removed.len());
                self.status.set(Ok(()));
            }
            Err(error) => {
                metrics::failed();
                self.status.set(Err(NotReady::Failed {
                    reason: error.reason(),
                    message: error.to_string(),
                }));
            }
        }
        result
    }

    fn serve_cached(&self, keeper: bulwark_ksm::Error) -> Result<Served, Error> {
        let cached = match self.cache.load(self.clock.now()) {
            Ok(Some(cached)) => cached,
            Ok(None) => {
                return Err(Error::NoCache {
                    keeper,
                    cache: "this pod has never fetched them".to_owned(),
                });
            }
            Err(error) => {
                return Err(Error::NoCache {
                    keeper,
                    cache: error.to_string(),
                });
            }
        };
        let changes = publish::publish(&self.mount, &cached.entry.files)?;
        metrics::served_cached(cached.age);
        let count = self.cached_in_a_row.fetch_add(1, Ordering::Relaxed) + 1;
        // The first time, then at a falling rate: an outage of a day must not fill the log.
        if count.is_power_of_two() {
            tracing::warn!(
                pod = self.pod,
                age = cache::human(cached.age),
                reason = reason_text(&keeper),
                error = %keeper,
                count,
                "using cached secrets"
            );
        }
        Ok(Served::Cached {
            age: cached.age,
            changes,
            retry_after: keeper.retry_after(),
        })
    }

    /// Fetches and renders every output file; also returns how many secrets.
    async fn fetch(&self) -> Result<(Vec<publish::File>, usize), Error> {
        let keeper = self.keeper()?;
        let plan = select::plan(&self.spec);
        let non_empty = |v: Vec<String>| (!v.is_empty()).then_some(v);
        let query = if plan.all_records {
            Query {
                records: None,
                folders: None,
                folder_tree: plan.folders,
            }
        } else {
            let (records, folders) = (non_empty(plan.record_uids), non_empty(plan.folder_uids));
            Query {
                // Asking for folders only must not widen to every record.
                records: records.clone().or_else(|| folders.is_some().then(Vec::new)),
                folders,
                folder_tree: plan.folders,
            }
        };
        let fetched = keeper.fetch(&query).await;
        self.keep_binding(&*keeper);
        let fetched = fetched.map_err(|error| match error {
            bulwark_ksm::Error::Auth { .. } if !keeper.config().is_bound() => {
                Error::TokenRefused(error)
            }
            error => Error::Keeper(error),
        })?;
        let outputs = select::select(&self.spec, &fetched.records, &fetched.folders)?;
        let mut files = Vec::with_capacity(outputs.len());
        for output in &outputs {
            let download = match &output.content {
                Content::File {
                    record_uid,
                    file_uid,
                } => Some(keeper.download(record_uid, file_uid).await?),
                _ => None,
            };
            let content = render::render(output, download.as_deref())?;
            files.push(publish::File {
                path: publish::relative(&self.mount, &output.path)?,
                content,
                mode: output.mode.bits(),
            });
        }
        Ok((files, outputs.len()))
    }

    /// Init mode: a cycle, tried again while Keeper is unreachable or throttling (waiting at
    /// least what it asked) for up to [`INIT_RETRY_BUDGET`] or what the config says. `Ok`
    /// when the secrets are delivered.
    pub async fn init(&self) -> Result<Served, Error> {
        let started = tokio::time::Instant::now();
        let schedule = Schedule::for_init(self.init_retry_for);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match self.cycle(Mode::Init).await {
                Ok(served) => return Ok(served),
                Err(error) => error,
            };
            let Some(retry_after) = error.transient() else {
                return Err(error);
            };
            let wait = schedule.after_failure(attempts, retry_after, rand::random());
            if started.elapsed() + wait > self.init_retry_for {
                return Err(Error::GaveUp {
                    attempts,
                    after: started.elapsed(),
                    last: Box::new(error),
                });
            }
            tracing::warn!(
                pod = self.pod,
                error = %error,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "Keeper cannot answer yet; trying again."
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// Sidecar mode: refresh until `shutdown`, signalling the application after changes.
    pub async fn run(&self, shutdown: CancellationToken) {
        let schedule = Schedule::new(self.spec.refresh_interval.get());
        let mut failures = 0u32;
        // The init container has just fetched: start from its cache and refresh when due.
        let mut wait = match self.cache.load(self.clock.now()) {
            Ok(Some(cached)) if cached.age < schedule.after_success(0.0) => {
                let _ = publish::publish(&self.mount, &cached.entry.files);
                self.status.set(Ok(()));
                schedule
                    .after_success(rand::random())
                    .saturating_sub(cached.age)
            }
            _ => Duration::ZERO,
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
            match self.cycle(Mode::Sidecar).await {
                Ok(served) => {
                    if !served.changes().is_empty()
                        && let Some(sig) = &self.spec.signal
                    {
                        let own = i32::try_from(std::process::id()).unwrap_or(0);
                        if let Err(error) = signal::send(&self.proc, own, sig) {
                            tracing::warn!(%error, "Cannot signal the application.");
                        }
                    }
                    // Serving the cache means Keeper did not answer: back off as after a
                    // failure, and wait at least what it asked.
                    wait = match served {
                        Served::Fetched { .. } => {
                            failures = 0;
                            schedule.after_success(rand::random())
                        }
                        Served::Cached { retry_after, .. } => {
                            failures = failures.saturating_add(1);
                            schedule.after_failure(failures, retry_after, rand::random())
                        }
                    };
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let retry_after = error.transient().flatten();
                    tracing::error!(pod = self.pod, error = %error, failures, "Cannot deliver the secrets.");
                    wait = schedule.after_failure(failures, retry_after, rand::random());
                }
            }
        }
    }
}

fn reason_text(error: &bulwark_ksm::Error) -> &'static str {
    match error {
        bulwark_ksm::Error::Throttled { .. } => "keeper API throttled",
        _ => "keeper API unavailable",
    }
}

fn unix(time: SystemTime) -> f64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

#[cfg(test)]
mod tests;
