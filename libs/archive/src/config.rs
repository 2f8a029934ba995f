//! The archiver's `config.yaml` (version "2.0"), exactly as the seed documents it, plus
//! validation that names the offending field.

use std::collections::HashSet;

use bulwark_config::{Duration, Validate, Violation};
use serde::Deserialize;

mod upstream;

pub use upstream::{Pause, REFUSED, Refused};

/// The whole config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Must be "2.0".
    pub version: String,
    pub s3: S3,
    #[serde(default)]
    pub defaults: Defaults,
    pub databases: Vec<Database>,
    /// Where `/health`, `/ready` and `/metrics` are served during a run.
    #[serde(default)]
    pub health: bulwark_config::Health,
    /// Rows and tables under legal hold, never archived or deleted.
    #[serde(default)]
    pub legal_holds: Option<LegalHolds>,
    /// Upstream's keys we refuse, each with its reason (see [`REFUSED`]).
    #[serde(default)]
    pub compliance: Option<Refused>,
    #[serde(default)]
    pub monitoring: Option<Refused>,
    #[serde(default)]
    pub notifications: Option<Refused>,
    #[serde(default)]
    pub restore_watermark: Option<Refused>,
}

/// Where archives are written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3 {
    /// `None` for AWS S3; a URL for other S3-compatible servers.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub storage_class: Option<String>,
    /// Server-side encryption: `SSE-S3`, `SSE-KMS` or `none` (upstream's names); unset leaves
    /// it to the bucket's default encryption.
    #[serde(default)]
    pub encryption: Option<Encryption>,
    /// The KMS key (id, alias or ARN) for `SSE-KMS`; unset uses the account's `aws/s3` key.
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// Use an S3 Bucket Key with `SSE-KMS`; unset keeps the bucket's setting.
    #[serde(default)]
    pub bucket_key: Option<bool>,
    /// How long one request may take, to the end of its response (default 30s).
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// How long connecting may take (default 5s).
    #[serde(default)]
    pub connect_timeout: Option<Duration>,
    /// Retries of a failed request, with backoff (default 10).
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// No retry starts later than this after the first attempt (default 3m).
    #[serde(default)]
    pub retry_timeout: Option<Duration>,
    #[serde(default)]
    pub multipart_threshold_mb: Option<Refused>,
    #[serde(default)]
    pub rate_limit_requests_per_second: Option<Refused>,
    #[serde(default)]
    pub local_fallback_dir: Option<Refused>,
    #[serde(default)]
    pub local_fallback_retention_days: Option<Refused>,
    #[serde(default)]
    pub aws_access_key_id: Option<Refused>,
    #[serde(default)]
    pub aws_secret_access_key: Option<Refused>,
}

/// `legal_holds`: a table, in each archived database, naming what is held. Its columns:
/// `table_name` (`schema.table`, or `table` for `public`), `record_id` (the primary key as
/// text; NULL holds the whole table) and `expires_at` (NULL: until removed). A batch reads
/// the holds in its own snapshot, so a row held when the batch is read is neither archived
/// nor deleted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LegalHolds {
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// The hold table, `name` or `schema.name`, in each archived database.
    pub check_table: String,
    /// Upstream's: the database of the hold table; refused, since a hold must be read in the
    /// batch's own snapshot, in the archived database.
    #[serde(default)]
    pub check_database: Option<Refused>,
    #[serde(default)]
    pub api_endpoint: Option<Refused>,
}

fn enabled() -> bool {
    true
}

/// `s3.encryption`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Encryption {
    #[serde(rename = "none")]
    None,
    #[serde(rename = "SSE-S3", alias = "sse-s3", alias = "AES256")]
    SseS3,
    #[serde(rename = "SSE-KMS", alias = "sse-kms", alias = "aws:kms")]
    SseKms,
}

/// Defaults for tables that do not set their own values, and how a run goes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub retention_days: u32,
    pub batch_size: u32,
    /// `gzip` (default: every tool reads it) or `zstd`.
    pub compression: crate::object::Codec,
    /// The level (upstream's key): gzip 0 to 9, unset 1, which writes objects about a tenth
    /// larger than upstream's 6 at a third of its CPU time; zstd 1 to 19, unset 3.
    pub compression_level: Option<u32>,
    /// Whether databases are archived at the same time (upstream's key; upstream defaults to
    /// `false`, we to `true`: databases are independent, each under its own lock).
    pub parallel_databases: bool,
    /// How many databases at once when `parallel_databases` (upstream default 3, ours 4).
    pub max_parallel_databases: usize,
    /// A pause after each batch, to spare a busy database: seconds (`2`, as upstream writes
    /// it) or a duration (`500ms`). Upstream declares it and never pauses; we do.
    pub sleep_between_batches: Pause,
    /// `postgresql` only: the run lock is a PostgreSQL advisory lock.
    pub lock_type: Option<String>,
    /// Run `VACUUM (ANALYZE)` on a table after a run that deleted at least
    /// `vacuum_min_rows` of its rows (upstream's key; upstream declares it and never runs it).
    pub vacuum_after: bool,
    /// The fewest deleted rows that make a table worth vacuuming (default 10000).
    pub vacuum_min_rows: u64,
    pub vacuum_strategy: Option<Refused>,
    pub connection_pool_size: Option<Refused>,
    /// Refuse a table whose columns differ from its last archive's (upstream's key); off:
    /// the difference is a warning and `archiver_schema_drift_total`.
    pub fail_on_schema_drift: bool,
    pub watermark_storage_type: Option<Refused>,
    pub checkpoint_storage_type: Option<Refused>,
    pub audit_trail_storage_type: Option<Refused>,
    pub checkpoint_interval: Option<Refused>,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            retention_days: 90,
            batch_size: 10_000,
            compression: crate::object::Codec::Gzip,
            compression_level: None,
            parallel_databases: true,
            max_parallel_databases: 4,
            sleep_between_batches: Pause::default(),
            lock_type: None,
            vacuum_after: false,
            vacuum_min_rows: 10_000,
            vacuum_strategy: None,
            connection_pool_size: None,
            fail_on_schema_drift: false,
            watermark_storage_type: None,
            checkpoint_storage_type: None,
            audit_trail_storage_type: None,
            checkpoint_interval: None,
        }
    }
}

impl LegalHolds {
    /// The hold table as SQL (quoted), when holds are enabled.
    pub fn table(&self) -> Option<String> {
        self.enabled.then(|| {
            self.check_table
                .split('.')
                .map(crate::sql::ident)
                .collect::<Vec<_>>()
                .join(".")
        })
    }
}

impl Defaults {
    /// How many databases a run archives at the same time.
    pub fn databases_in_parallel(&self) -> usize {
        if self.parallel_databases {
            self.max_parallel_databases.max(1)
        } else {
            1
        }
    }
}

/// One PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// The database name, also used in object keys and `--database`.
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    /// The environment variable holding the password (never the password itself).
    #[serde(default)]
    pub password_env: Option<String>,
    pub tables: Vec<Table>,
    #[serde(default)]
    pub read_replica: Option<Refused>,
    #[serde(default)]
    pub connection_pool_size: Option<Refused>,
    #[serde(default)]
    pub password: Option<Refused>,
}

fn default_port() -> u16 {
    5432
}

/// One audit table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    pub name: String,
    #[serde(default = "default_schema")]
    pub schema: String,
    pub timestamp_column: String,
    pub primary_key: String,
    /// Overrides `defaults.retention_days`.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Overrides `defaults.batch_size`.
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// A critical table's failure fails the run: the other tables stop after the batch in
    /// progress, and the run exits 1 (upstream's key).
    #[serde(default)]
    pub critical: bool,
}

fn default_schema() -> String {
    "public".to_owned()
}

/// The largest batch we accept: bigger batches only cost memory and lock time.
pub const MAX_BATCH_SIZE: u32 = 1_000_000;

#[cfg(test)]
impl Target {
    /// `audit` `public.audit_log` by `created_at` and `id`, 90 days, batches of `batch_size`:
    /// the table the unit tests use.
    pub(crate) fn example(batch_size: u32) -> Target {
        Target {
            database: "audit".to_owned(),
            schema: "public".to_owned(),
            table: "audit_log".to_owned(),
            timestamp_column: "created_at".to_owned(),
            primary_key: "id".to_owned(),
            retention_days: 90,
            batch_size,
            critical: false,
        }
    }
}

impl Config {
    /// The retention of `table`, falling back to the defaults.
    pub fn retention_days(&self, table: &Table) -> u32 {
        table.retention_days.unwrap_or(self.defaults.retention_days)
    }

    /// The batch size of `table`, falling back to the defaults.
    pub fn batch_size(&self, table: &Table) -> u32 {
        table.batch_size.unwrap_or(self.defaults.batch_size)
    }
}

/// A table selected for this run, with its effective settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Target {
    pub database: String,
    pub schema: String,
    pub table: String,
    pub timestamp_column: String,
    pub primary_key: String,
    pub retention_days: u32,
    pub batch_size: u32,
    pub critical: bool,
}

impl Config {
    /// The tables a run processes: all, or those of `--database` and/or `--table`
    /// (`table` may be `name` or `schema.name`). Names that match nothing are an error, so a
    /// typo never turns into a run that silently does nothing.
    pub fn select(
        &self,
        database: Option<&str>,
        table: Option<&str>,
    ) -> Result<Vec<Target>, Violation> {
        if let Some(db) = database
            && !self.databases.iter().any(|d| d.name == db)
        {
            let known: Vec<&str> = self.databases.iter().map(|d| d.name.as_str()).collect();
            return Err(Violation::new(
                "--database",
                format!("no database named {db:?}; configured: {}", known.join(", ")),
            ));
        }
        let targets: Vec<Target> = self
            .databases
            .iter()
            .filter(|d| database.is_none_or(|name| d.name == name))
            .flat_map(|d| d.tables.iter().map(move |t| (d, t)))
            .filter(|(_, t)| {
                table
                    .is_none_or(|name| name == t.name || name == format!("{}.{}", t.schema, t.name))
            })
            .map(|(d, t)| Target {
                database: d.name.clone(),
                schema: t.schema.clone(),
                table: t.name.clone(),
                timestamp_column: t.timestamp_column.clone(),
                primary_key: t.primary_key.clone(),
                retention_days: self.retention_days(t),
                batch_size: self.batch_size(t),
                critical: t.critical,
            })
            .collect();
        if targets.is_empty()
            && let Some(name) = table
        {
            return Err(Violation::new(
                "--table",
                format!("no table named {name:?} in the selected databases"),
            ));
        }
        Ok(targets)
    }
}

impl Validate for Config {
    /// `${VAR}` in values, as upstream's config allows.
    const SUBSTITUTES_ENV: bool = true;

    fn validate(&self) -> Result<(), Violation> {
        if self.version != "2.0" {
            return Err(Violation::new(
                "version",
                format!("unsupported version {:?}; expected \"2.0\"", self.version),
            ));
        }
        if self.s3.bucket.trim().is_empty() {
            return Err(Violation::new("s3.bucket", "must not be empty"));
        }
        if self.s3.encryption != Some(Encryption::SseKms) {
            if self.s3.kms_key_id.is_some() {
                return Err(Violation::new("s3.kms_key_id", "needs encryption: SSE-KMS"));
            }
            if self.s3.bucket_key.is_some() {
                return Err(Violation::new("s3.bucket_key", "needs encryption: SSE-KMS"));
            }
        }
        if self
            .s3
            .kms_key_id
            .as_deref()
            .is_some_and(|k| k.trim().is_empty())
        {
            return Err(Violation::new(
                "s3.kms_key_id",
                "must not be empty: leave it out to use the account's aws/s3 key",
            ));
        }
        for (field, value) in [
            ("s3.timeout", self.s3.timeout),
            ("s3.connect_timeout", self.s3.connect_timeout),
        ] {
            if value.is_some_and(|d| d.get().is_zero()) {
                return Err(Violation::new(field, "must be more than 0s"));
            }
        }
        self.refused()?;
        if let Some(holds) = &self.legal_holds {
            let parts: Vec<&str> = holds.check_table.split('.').collect();
            if parts.len() > 2
                || parts
                    .iter()
                    .any(|p| p.trim().is_empty() || p.contains('\0'))
            {
                return Err(Violation::new(
                    "legal_holds.check_table",
                    "must be a table name, `name` or `schema.name`",
                ));
            }
        }
        let d = &self.defaults;
        let (levels, _) = d.compression.levels();
        if d.compression_level
            .is_some_and(|level| !levels.contains(&level))
        {
            return Err(Violation::new(
                "defaults.compression_level",
                format!(
                    "must be between {} and {} ({}'s levels)",
                    levels.start(),
                    levels.end(),
                    d.compression.encoding()
                ),
            ));
        }
        if !(1..=64).contains(&d.max_parallel_databases) {
            return Err(Violation::new(
                "defaults.max_parallel_databases",
                "must be between 1 and 64",
            ));
        }
        if d.sleep_between_batches.0 > std::time::Duration::from_secs(3600) {
            return Err(Violation::new(
                "defaults.sleep_between_batches",
                "must be at most an hour",
            ));
        }
        if d.lock_type.as_deref().is_some_and(|t| t != "postgresql") {
            return Err(Violation::new(
                "defaults.lock_type",
                "only postgresql: the run lock is a PostgreSQL advisory lock, which excludes every other run on the database (upstream's redis and file locks do not)",
            ));
        }
        check_retention("defaults.retention_days", self.defaults.retention_days)?;
        check_batch("defaults.batch_size", self.defaults.batch_size)?;
        if self.databases.is_empty() {
            return Err(Violation::new(
                "databases",
                "must list at least one database",
            ));
        }
        let mut names = HashSet::new();
        for (i, db) in self.databases.iter().enumerate() {
            let at = |f: &str| format!("databases[{i}].{f}");
            if db.name.trim().is_empty() {
                return Err(Violation::new(at("name"), "must not be empty"));
            }
            if !names.insert(db.name.as_str()) {
                return Err(Violation::new(
                    at("name"),
                    format!("duplicate database name {:?}", db.name),
                ));
            }
            if db.host.trim().is_empty() {
                return Err(Violation::new(at("host"), "must not be empty"));
            }
            if db.port == 0 {
                return Err(Violation::new(at("port"), "must be between 1 and 65535"));
            }
            if db.user.trim().is_empty() {
                return Err(Violation::new(at("user"), "must not be empty"));
            }
            if db.password_env.as_deref().is_some_and(|v| !is_env_name(v)) {
                return Err(Violation::new(
                    at("password_env"),
                    "must be an environment variable name such as DB_PASSWORD",
                ));
            }
            if db.tables.is_empty() {
                return Err(Violation::new(at("tables"), "must list at least one table"));
            }
            let mut tables = HashSet::new();
            for (j, t) in db.tables.iter().enumerate() {
                let at = |f: &str| format!("databases[{i}].tables[{j}].{f}");
                for (field, value) in [
                    ("name", &t.name),
                    ("schema", &t.schema),
                    ("timestamp_column", &t.timestamp_column),
                    ("primary_key", &t.primary_key),
                ] {
                    if value.is_empty() {
                        return Err(Violation::new(at(field), "must not be empty"));
                    }
                    if value.contains('\0') {
                        return Err(Violation::new(at(field), "must not contain NUL"));
                    }
                }
                if !tables.insert((t.schema.as_str(), t.name.as_str())) {
                    return Err(Violation::new(
                        at("name"),
                        format!("duplicate table {}.{}", t.schema, t.name),
                    ));
                }
                if let Some(days) = t.retention_days {
                    check_retention(&at("retention_days"), days)?;
                }
                if let Some(size) = t.batch_size {
                    check_batch(&at("batch_size"), size)?;
                }
            }
        }
        Ok(())
    }
}

fn check_retention(field: &str, days: u32) -> Result<(), Violation> {
    // Zero days would archive and delete rows written a moment ago.
    if days == 0 {
        return Err(Violation::new(field, "must be at least 1 day"));
    }
    Ok(())
}

fn check_batch(field: &str, size: u32) -> Result<(), Violation> {
    if size == 0 || size > MAX_BATCH_SIZE {
        return Err(Violation::new(
            field,
            format!("must be between 1 and {MAX_BATCH_SIZE}"),
        ));
    }
    Ok(())
}

fn is_env_name(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
