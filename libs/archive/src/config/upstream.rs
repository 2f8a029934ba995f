//! What the archiver makes of the upstream archiver's config keys: the ones it reads in a
//! form of their own (`Pause`), and the ones it refuses, each with its reason, instead of
//! ignoring them or rejecting them as merely unknown.

use bulwark_config::{Duration, Violation};
use serde::{Deserialize, Deserializer};

use super::Config;

/// A key of the upstream archiver's config that we do not implement: it is read (so that an
/// upstream config parses) and then refused by validation, with the reason, instead of being
/// silently ignored or rejected as merely unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

impl<'de> Deserialize<'de> for Refused {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Refused)
    }
}

/// A pause: upstream writes it as a number of seconds (`2`), ours as a duration (`2s`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pause(pub std::time::Duration);

impl<'de> Deserialize<'de> for Pause {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(Duration),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) if s.is_finite() && s >= 0.0 => {
                std::time::Duration::try_from_secs_f64(s)
                    .map(Pause)
                    .map_err(|_| serde::de::Error::custom(format!("{s} seconds is too long")))
            }
            Raw::Seconds(s) => Err(serde::de::Error::custom(format!(
                "{s} is not a number of seconds"
            ))),
            Raw::Text(d) => Ok(Pause(d.get())),
        }
    }
}

/// Upstream's keys that we refuse, and why (the config's path, with `[]` for any index).
pub const REFUSED: &[(&str, &str)] = &[
    (
        "legal_holds.check_database",
        "the hold table must be in the archived database: a hold is read in the batch's own snapshot, which another database cannot share",
    ),
    (
        "legal_holds.api_endpoint",
        "not implemented: holds come from legal_holds.check_table, read in each batch's snapshot",
    ),
    (
        "compliance",
        "not implemented: retention limits are the tables' retention_days, and encryption is s3.encryption",
    ),
    (
        "monitoring",
        "/health, /ready and /metrics are served on one port, health.listen (default 0.0.0.0:9187); --metrics-file writes the final metrics",
    ),
    (
        "notifications",
        "not implemented: alert on the archiver's metrics (archiver_last_success_timestamp_seconds, archiver_errors_total) with Prometheus",
    ),
    (
        "restore_watermark",
        "not needed: restore reads every archive's manifest; select with --database and --table",
    ),
    (
        "s3.multipart_threshold_mb",
        "a batch goes up in one request up to 8 MiB and in 8 MiB parts beyond; remove the key",
    ),
    (
        "s3.rate_limit_requests_per_second",
        "not implemented: a throttled request is retried with backoff (s3.max_retries, s3.retry_timeout)",
    ),
    (
        "s3.local_fallback_dir",
        "not needed: a batch that cannot be uploaded and verified is not deleted, so nothing needs a fallback copy",
    ),
    (
        "s3.local_fallback_retention_days",
        "not needed: a batch that cannot be uploaded and verified is not deleted",
    ),
    (
        "s3.aws_access_key_id",
        "credentials in the config file are refused: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from a Secret, or use IRSA",
    ),
    (
        "s3.aws_secret_access_key",
        "credentials in the config file are refused: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from a Secret, or use IRSA",
    ),
    (
        "defaults.vacuum_strategy",
        "only VACUUM (ANALYZE) is run (vacuum_after): VACUUM FULL would lock the table against the application's writes",
    ),
    (
        "defaults.connection_pool_size",
        "each table uses two connections and each database one more for the run lock; remove the key",
    ),
    (
        "defaults.watermark_storage_type",
        "not needed: progress is the manifests in the bucket; remove the key",
    ),
    (
        "defaults.checkpoint_storage_type",
        "not needed: progress is the manifests in the bucket; remove the key",
    ),
    (
        "defaults.audit_trail_storage_type",
        "not needed: every batch's manifest is its audit record; remove the key",
    ),
    (
        "defaults.checkpoint_interval",
        "not needed: every batch is recorded by its manifest; remove the key",
    ),
    (
        "databases[].read_replica",
        "refused: the rows must be read where they are deleted, in the same snapshot; a replica lags behind the primary",
    ),
    (
        "databases[].connection_pool_size",
        "each table uses two connections and each database one more for the run lock; remove the key",
    ),
    (
        "databases[].password",
        "a password in the config file is refused: name the variable that holds it with password_env",
    ),
];

/// The reason [`REFUSED`] gives for `path`.
fn refusal(path: &str) -> &'static str {
    REFUSED
        .iter()
        .find(|(p, _)| *p == path)
        .map_or("not supported", |(_, why)| why)
}

impl Config {
    /// The first of upstream's refused keys that the config sets, with its reason.
    pub(super) fn refused(&self) -> Result<(), Violation> {
        let d = &self.defaults;
        let s3 = &self.s3;
        let mut set: Vec<String> = [
            ("compliance", self.compliance),
            ("monitoring", self.monitoring),
            ("notifications", self.notifications),
            ("restore_watermark", self.restore_watermark),
            ("s3.multipart_threshold_mb", s3.multipart_threshold_mb),
            (
                "s3.rate_limit_requests_per_second",
                s3.rate_limit_requests_per_second,
            ),
            ("s3.local_fallback_dir", s3.local_fallback_dir),
            (
                "s3.local_fallback_retention_days",
                s3.local_fallback_retention_days,
            ),
            ("s3.aws_access_key_id", s3.aws_access_key_id),
            ("s3.aws_secret_access_key", s3.aws_secret_access_key),
            ("defaults.vacuum_strategy", d.vacuum_strategy),
            ("defaults.connection_pool_size", d.connection_pool_size),
            ("defaults.watermark_storage_type", d.watermark_storage_type),
            (
                "defaults.checkpoint_storage_type",
                d.checkpoint_storage_type,
            ),
            (
                "defaults.audit_trail_storage_type",
                d.audit_trail_storage_type,
            ),
            ("defaults.checkpoint_interval", d.checkpoint_interval),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some())
        .map(|(path, _)| path.to_owned())
        .collect();
        if let Some(holds) = &self.legal_holds {
            for (key, value) in [
                ("legal_holds.check_database", holds.check_database),
                ("legal_holds.api_endpoint", holds.api_endpoint),
            ] {
                if value.is_some() {
                    set.insert(0, key.to_owned());
                }
            }
        }
        for (i, db) in self.databases.iter().enumerate() {
            for (key, value) in [
                ("read_replica", db.read_replica),
                ("connection_pool_size", db.connection_pool_size),
                ("password", db.password),
            ] {
                if value.is_some() {
                    set.push(format!("databases[{i}].{key}"));
                }
            }
        }
        match set.first() {
            None => Ok(()),
            Some(path) => {
                let generic = path
                    .split_once('[')
                    .and_then(|(head, rest)| {
                        Some(format!("{head}[]{}", &rest[rest.find(']')? + 1..]))
                    })
                    .unwrap_or_else(|| path.clone());
                Err(Violation::new(
                    path.clone(),
                    format!("upstream's key is not supported: {}", refusal(&generic)),
                ))
            }
        }
    }
}
