//! Where errors are counted: one trait, the memory store (the default) and PostgreSQL (for
//! several replicas sharing one state), held to one test suite (`tests/store.rs`).
//!
//! A page of lines is recorded with the cursor that read it in one step, so that a restart
//! resumes exactly where the counts stop. PostgreSQL also keeps each counted line's identity
//! for [`postgres::LINE_MEMORY`], so that two replicas reading the same lines count each once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bulwark_loki::Cursor;
use bulwark_loki::pager::LineId;
use bulwark_sentinel::audit::{self, Entry, MemoryLog};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::remediation::{SwitchChange, Switches};
use bulwark_sentinel::rules::Priority;
use bulwark_sentinel::store::memory::MemoryStore;
use bulwark_sentinel::store::{ErrorView, Filter, Occurrence, Page, Stats};

pub mod postgres;

/// One counted line, owned, as a page carries it to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub line_id: LineId,
    pub timestamp_ns: i64,
    pub fingerprint: Fingerprint,
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    pub container: String,
    pub rule: String,
    pub priority: Priority,
    pub normalized: String,
    /// The message's replaced values (see `bulwark_sentinel::normalize`).
    pub values: Box<[u8]>,
}

impl Line {
    fn occurrence(&self) -> Occurrence<'_> {
        Occurrence {
            timestamp_ns: self.timestamp_ns,
            fingerprint: self.fingerprint,
            namespace: &self.namespace,
            workload: &self.workload,
            pod: &self.pod,
            container: &self.container,
            rule: &self.rule,
            priority: self.priority,
            normalized: &self.normalized,
            values: &self.values,
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("PostgreSQL schema: {0}")]
    Migrate(String),
    #[error("the saved cursor is unreadable: {0}")]
    Cursor(String),
}

/// The store, as ingestion and the API use it.
#[async_trait]
pub trait Store: std::fmt::Debug + Send + Sync + 'static {
    /// Counts `lines` (read by `query`, ending a page that left `cursor`) and saves the
    /// cursor with them; returns how many were new to the store.
    async fn record(&self, lines: &[Line], query: &str, cursor: &Cursor)
    -> Result<u64, StoreError>;
    /// The cursor saved for `query`.
    async fn cursor(&self, query: &str) -> Result<Option<Cursor>, StoreError>;
    async fn get(&self, id: Fingerprint) -> Result<Option<ErrorView>, StoreError>;
    async fn list(
        &self,
        filter: &Filter,
        page: Page,
    ) -> Result<(Vec<ErrorView>, usize), StoreError>;
    async fn stats(&self) -> Result<Stats, StoreError>;
    /// Forgets errors last seen before `cutoff_ns`; returns how many. A store whose bound
    /// is not kept on every insert (PostgreSQL) applies it here too.
    async fn purge(&self, cutoff_ns: i64) -> Result<usize, StoreError>;
    /// Unique errors held, and errors evicted by a bound so far.
    async fn size(&self) -> Result<(usize, u64), StoreError>;
    /// Appends `entry` to the remediation audit log (its `id` is assigned); returns the id.
    async fn audit(&self, entry: &Entry) -> Result<u64, StoreError>;
    /// Audit entries passing `filter`, newest first, from `offset`, at most `limit`; with the
    /// number that pass.
    async fn audit_log(
        &self,
        filter: &audit::Filter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Entry>, usize), StoreError>;
    /// The switches an operator set, if any (shared by every replica).
    async fn switches(&self) -> Result<Option<Switches>, StoreError>;
    /// Sets the switches `change` names, atomically, starting from `defaults` when none were
    /// set; returns the switches now in force.
    async fn set_switches(
        &self,
        change: SwitchChange,
        defaults: Switches,
    ) -> Result<Switches, StoreError>;
}

/// Audit entries the memory store keeps (the newest; the retention applies too).
pub const AUDIT_CAPACITY: usize = 10_000;

/// The store the config asks for: memory, or PostgreSQL (connected, schema migrated).
pub async fn open(
    config: &bulwark_sentinel::config::Store,
    password: Option<&bulwark_config::Secret>,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    use bulwark_sentinel::config::StoreKind;
    Ok(match (config.kind, &config.url) {
        (StoreKind::Postgres, Some(url)) => {
            std::sync::Arc::new(postgres::PgStore::connect(url, password, config.max_errors).await?)
        }
        _ => std::sync::Arc::new(Memory::new(config.max_errors)),
    })
}

/// The memory store behind the trait.
#[derive(Debug)]
pub struct Memory {
    errors: Mutex<MemoryStore>,
    cursors: Mutex<HashMap<String, Cursor>>,
    audit: Mutex<MemoryLog>,
    switches: Mutex<Option<Switches>>,
}

impl Memory {
    /// A memory store of at most `max_errors` errors.
    pub fn new(max_errors: usize) -> Self {
        Self {
            errors: Mutex::new(MemoryStore::new(max_errors)),
            cursors: Mutex::new(HashMap::new()),
            audit: Mutex::new(MemoryLog::new(AUDIT_CAPACITY)),
            switches: Mutex::new(None),
        }
    }

    fn errors(&self) -> std::sync::MutexGuard<'_, MemoryStore> {
        self.errors.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self) -> std::sync::MutexGuard<'_, MemoryLog> {
        self.audit.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for Memory {
    async fn record(
        &self,
        lines: &[Line],
        query: &str,
        cursor: &Cursor,
    ) -> Result<u64, StoreError> {
        {
            let mut errors = self.errors();
            for l in lines {
                errors.record(&l.occurrence());
            }
        }
        self.cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(query.to_owned(), cursor.clone());
        Ok(lines.len() as u64)
    }

    async fn cursor(&self, query: &str) -> Result<Option<Cursor>, StoreError> {
        Ok(self
            .cursors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(query)
            .cloned())
    }

    async fn get(&self, id: Fingerprint) -> Result<Option<ErrorView>, StoreError> {
        Ok(self.errors().get(id))
    }

    async fn list(
        &self,
        filter: &Filter,
        page: Page,
    ) -> Result<(Vec<ErrorView>, usize), StoreError> {
        Ok(self.errors().list(filter, page))
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        Ok(self.errors().stats())
    }

    async fn purge(&self, cutoff_ns: i64) -> Result<usize, StoreError> {
        self.log().purge(cutoff_ns);
        Ok(self.errors().purge(cutoff_ns))
    }

    async fn size(&self) -> Result<(usize, u64), StoreError> {
        let errors = self.errors();
        Ok((errors.len(), errors.evicted()))
    }

    async fn audit(&self, entry: &Entry) -> Result<u64, StoreError> {
        Ok(self.log().append(entry.clone()))
    }

    async fn audit_log(
        &self,
        filter: &audit::Filter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Entry>, usize), StoreError> {
        Ok(self.log().list(filter, offset, limit))
    }

    async fn switches(&self) -> Result<Option<Switches>, StoreError> {
        Ok(*self.switches.lock().unwrap_or_else(|e| e.into_inner()))
    }

    async fn set_switches(
        &self,
        change: SwitchChange,
        defaults: Switches,
    ) -> Result<Switches, StoreError> {
        let mut current = self.switches.lock().unwrap_or_else(|e| e.into_inner());
        let now = change.apply(current.unwrap_or(defaults));
        *current = Some(now);
        Ok(now)
    }
}
