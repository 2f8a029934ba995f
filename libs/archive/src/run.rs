//! One archiver run over the selected tables: object storage from the config, one run lock
//! per database on a dedicated connection, tables a few at a time with failures isolated,
//! and the [`Outcome`] the binary turns into the exit code a CronJob reports.

use std::sync::Arc;

use futures::StreamExt;

use bulwark_config::Secret;
use bulwark_storage::S3Encryption;
use object_store::ObjectStore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection};

use crate::config::{Config, Database, Encryption, Target};
use crate::error::Error;
use crate::pipeline::{self, Options, Report};
use crate::restore::{self, Conflict};
use crate::{lock, manifest};

/// How a run ended, from the best to the worst; a run over several tables ends as its worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Every table done.
    Done,
    /// Some tables failed; the others are done (the log names them).
    Partial,
    /// An archive did not match what was read, or no longer matches its manifest.
    Verification,
    /// Another run holds the lock of a database; nothing was done there.
    Locked,
    /// A table marked `critical` failed; the run stopped the other tables after their batch
    /// in progress.
    Critical,
}

/// Tables of one database archived at the same time, each on its own two connections.
pub const TABLES_IN_PARALLEL: usize = 2;

/// What a run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Archive,
    Verify,
    Restore(Conflict),
}

/// The password of every database that `targets` touch, from the variables their
/// `password_env` names, in config order (`None` for the others).
pub fn passwords(
    config: &Config,
    targets: &[Target],
    loader: &bulwark_config::Loader<'_>,
) -> Result<Vec<Option<Secret>>, bulwark_config::Error> {
    config
        .databases
        .iter()
        .enumerate()
        .map(|(i, db)| match &db.password_env {
            Some(var) if targets.iter().any(|t| t.database == db.name) => loader
                .secret_from_env(var, &format!("databases[{i}].password_env"))
                .map(Some),
            _ => Ok(None),
        })
        .collect()
}

/// The object store the config names: `file:///dir` as `s3.endpoint` is a local directory
/// (the local run's default), anything else an S3-compatible endpoint with credentials from
/// the environment (static keys, IRSA web identity, instance metadata).
pub fn store(config: &Config) -> Result<Arc<dyn ObjectStore>, bulwark_storage::Error> {
    if let Some(dir) = config
        .s3
        .endpoint
        .as_deref()
        .and_then(|e| e.strip_prefix("file://"))
    {
        return bulwark_storage::local(std::path::Path::new(dir));
    }
    bulwark_storage::s3(&bulwark_storage::S3Options {
        bucket: config.s3.bucket.clone(),
        endpoint: config.s3.endpoint.clone(),
        region: config.s3.region.clone(),
        allow_http: config
            .s3
            .endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://")),
        encryption: match config.s3.encryption {
            None | Some(Encryption::None) => None,
            Some(Encryption::SseS3) => Some(S3Encryption::S3),
            Some(Encryption::SseKms) => Some(S3Encryption::Kms {
                key_id: config.s3.kms_key_id.clone(),
                bucket_key: config.s3.bucket_key,
            }),
        },
        timeout: config.s3.timeout.map(|d| d.get()),
        connect_timeout: config.s3.connect_timeout.map(|d| d.get()),
        max_retries: config.s3.max_retries,
        retry_timeout: config.s3.retry_timeout.map(|d| d.get()),
        ..bulwark_storage::S3Options::default()
    })
}

/// Connects to `db` as the config says.
pub async fn connect(
    db: &Database,
    password: Option<&Secret>,
) -> Result<PgConnection, sqlx::Error> {
    let mut options = PgConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .username(&db.user)
        .database(&db.name)
        .application_name("bulwark-archiver")
        // Our own logs and phase metrics say what a run does; sqlx's would log every restore
        // insert as a slow statement.
        .disable_statement_logging();
    if let Some(password) = password {
        options = options.password(password.expose());
    }
    options.connect().await
}

/// Runs `command` over the `targets` of `db`.
pub async fn run_database(
    db: &Database,
    password: Option<&Secret>,
    targets: &[Target],
    store: &dyn ObjectStore,
    options: &Options,
    command: Command,
) -> Outcome {
    let mut lock = match connect(db, password).await {
        Ok(conn) => conn,
        Err(error) => {
            let error = Error::Db(error);
            tracing::error!(database = db.name, host = db.host, port = db.port, user = db.user, error = %error, "Cannot connect.");
            return Outcome::Partial;
        }
    };
    if command != Command::Verify {
        match lock::try_lock(&mut lock, &db.name).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(
                    database = db.name,
                    "Another run holds the lock; nothing was done."
                );
                return Outcome::Locked;
            }
            Err(error) => {
                tracing::error!(database = db.name, error = %error, "Cannot take the run lock.");
                return Outcome::Partial;
            }
        }
    }
    let tables = targets.iter().filter(|t| t.database == db.name);
    let outcomes: Vec<Outcome> = futures::stream::iter(tables)
        .map(|target| run_table(db, password, target, store, options, command))
        .buffer_unordered(TABLES_IN_PARALLEL)
        .collect()
        .await;
    drop(lock);
    outcomes.into_iter().max().unwrap_or(Outcome::Done)
}

/// Runs `command` on one table, on its own connections (two to archive: one reads the next
/// batch while the other deletes the last).
async fn run_table(
    db: &Database,
    password: Option<&Secret>,
    target: &Target,
    store: &dyn ObjectStore,
    options: &Options,
    command: Command,
) -> Outcome {
    let table = format!("{}.{}", target.schema, target.table);
    if command == Command::Archive && options.stop.as_ref().is_some_and(|s| s.is_cancelled()) {
        tracing::warn!(
            database = db.name,
            table,
            "Not started: the run is stopping."
        );
        return Outcome::Done;
    }
    let outcome = match connect(db, password).await {
        Ok(mut conn) => match command {
            Command::Archive => match connect(db, password).await {
                Ok(mut deleter) => {
                    let report =
                        pipeline::archive_table(&mut conn, &mut deleter, store, options, target)
                            .await;
                    match report {
                        Ok(report) => vacuum(&mut conn, options, target, &report)
                            .await
                            .map(|()| report),
                        Err(error) => Err(error),
                    }
                }
                Err(error) => Err(error.into()),
            },
            Command::Verify => {
                manifest::verify_table(store, options, target)
                    .await
                    .map(|batches| Report {
                        batches,
                        ..Report::default()
                    })
            }
            Command::Restore(conflict) => {
                restore::restore_table(&mut conn, store, options, target, conflict)
                    .await
                    .map(|rows| Report {
                        rows,
                        ..Report::default()
                    })
            }
        },
        Err(error) => Err(error.into()),
    };
    match outcome {
        Ok(report) => {
            tracing::info!(
                database = db.name,
                table,
                rows = report.rows,
                batches = report.batches,
                bytes = report.bytes,
                recovered = report.recovered,
                "Table done."
            );
            Outcome::Done
        }
        Err(error) => {
            crate::metrics::error(error.kind());
            tracing::error!(database = db.name, table, kind = error.kind(), error = %error, "Table failed; the other tables go on.");
            if target.critical {
                tracing::error!(
                    database = db.name,
                    table,
                    "A critical table failed: the run stops after the batches in progress."
                );
                if let Some(stop) = &options.stop {
                    stop.cancel();
                }
                return Outcome::Critical;
            }
            match error {
                Error::Verify { .. } => Outcome::Verification,
                _ => Outcome::Partial,
            }
        }
    }
}

/// What a run would do to one table, for `--dry-run`: the table's settings, and, when its
/// database answers, the cutoff, the planner's estimate of the rows due and the batches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    #[serde(flatten)]
    pub target: Target,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cutoff: Option<String>,
    /// The planner's estimate (no scan of the table): run `ANALYZE` for a better one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_due_estimate: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches_estimate: Option<u64>,
    /// The planner's estimate of the rows due that a legal hold keeps, when `legal_holds` is
    /// configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_held: Option<u64>,
    /// Why the database could not be asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The plan of every table in `targets`, asking each database (read only) for the cutoff
/// and the planner's estimate of the rows due; a database that cannot be asked leaves its
/// tables' plans without estimates, with the error.
pub async fn plan(config: &Config, targets: &[Target], passwords: &[Option<Secret>]) -> Vec<Plan> {
    let mut plans = Vec::new();
    for (db, password) in config.databases.iter().zip(passwords) {
        let tables: Vec<&Target> = targets.iter().filter(|t| t.database == db.name).collect();
        if tables.is_empty() {
            continue;
        }
        let mut conn = match connect(db, password.as_ref()).await {
            Ok(conn) => Some(conn),
            Err(error) => {
                let error = Error::Db(error);
                tracing::error!(database = db.name, error = %error, "Cannot connect; the plan has no estimates.");
                for target in &tables {
                    plans.push(Plan {
                        target: (*target).clone(),
                        cutoff: None,
                        rows_due_estimate: None,
                        batches_estimate: None,
                        rows_held: None,
                        error: Some(error.to_string()),
                    });
                }
                None
            }
        };
        let Some(conn) = conn.as_mut() else { continue };
        let hold = config.legal_holds.as_ref().and_then(|h| h.table());
        for target in tables {
            let estimated = async {
                let (cutoff, rows) = estimate(conn, target).await?;
                let held = match &hold {
                    Some(hold) => Some(held_estimate(conn, target, hold, &cutoff).await?),
                    None => None,
                };
                Ok::<_, Error>((cutoff, rows, held))
            }
            .await;
            plans.push(match estimated {
                Ok((cutoff, rows, held)) => Plan {
                    target: target.clone(),
                    cutoff: Some(cutoff),
                    rows_due_estimate: Some(rows),
                    batches_estimate: Some(rows.div_ceil(u64::from(target.batch_size.max(1)))),
                    rows_held: held,
                    error: None,
                },
                Err(error) => Plan {
                    target: target.clone(),
                    cutoff: None,
                    rows_due_estimate: None,
                    batches_estimate: None,
                    rows_held: None,
                    error: Some(error.to_string()),
                },
            });
        }
    }
    plans
}

/// The planner's estimate of `target`'s rows due that a legal hold in `hold` keeps (a dry run
/// scans nothing).
async fn held_estimate(
    conn: &mut PgConnection,
    target: &Target,
    hold: &str,
    cutoff: &str,
) -> Result<u64, Error> {
    let sql = format!(
        "EXPLAIN SELECT 1 {}",
        crate::pipeline::held_rows(target, hold, &crate::sql::literal(cutoff))
    );
    let top: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await?;
    Ok(plan_rows(&top))
}

/// `rows=N` of an `EXPLAIN` line.
fn plan_rows(line: &str) -> u64 {
    line.split(" rows=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
        .max(0.0) as u64
}

/// The cutoff of `target` and the planner's estimate of its rows older than it.
async fn estimate(conn: &mut PgConnection, target: &Target) -> Result<(String, u64), Error> {
    let days = i32::try_from(target.retention_days).unwrap_or(i32::MAX);
    // The cutoff as the run prints it.
    sqlx::raw_sql("SET TimeZone = 'UTC'")
        .execute(&mut *conn)
        .await?;
    let cutoff: String = sqlx::query_scalar("SELECT (now() - make_interval(days => $1))::text")
        .bind(days)
        .fetch_one(&mut *conn)
        .await?;
    let sql = format!(
        "EXPLAIN SELECT 1 FROM {}.{} WHERE {} < {}::timestamptz",
        crate::sql::ident(&target.schema),
        crate::sql::ident(&target.table),
        crate::sql::ident(&target.timestamp_column),
        crate::sql::literal(&cutoff),
    );
    // The top plan node's line: `Seq Scan on audit_log  (cost=0.00..13.75 rows=600 width=4)`.
    let top: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(&mut *conn)
        .await?;
    let rows = plan_rows(&top);
    Ok((cutoff, rows))
}

/// `VACUUM (ANALYZE)` of `target` when the run deleted enough of its rows to leave dead
/// tuples and stale statistics worth the work (`options.vacuum_min_rows`).
async fn vacuum(
    conn: &mut PgConnection,
    options: &Options,
    target: &Target,
    report: &Report,
) -> Result<(), Error> {
    let Some(min) = options.vacuum_min_rows else {
        return Ok(());
    };
    let stopping = options.stop.as_ref().is_some_and(|s| s.is_cancelled());
    if report.rows < min || stopping {
        return Ok(());
    }
    let table_name = format!("{}.{}", target.schema, target.table);
    // VACUUM skips, with only a warning, a table its user does not own.
    let owner: bool = sqlx::query_scalar(
        "SELECT pg_has_role(current_user, c.relowner, 'MEMBER') FROM pg_class c WHERE c.oid = $1::regclass",
    )
    .bind(format!("{}.{}", crate::sql::ident(&target.schema), crate::sql::ident(&target.table)))
    .fetch_one(&mut *conn)
    .await?;
    if !owner {
        tracing::warn!(
            database = target.database,
            table = table_name,
            "vacuum_after: the archiver's user does not own the table, so it cannot vacuum it."
        );
        return Ok(());
    }
    let table = format!(
        "{}.{}",
        crate::sql::ident(&target.schema),
        crate::sql::ident(&target.table)
    );
    let started = std::time::Instant::now();
    // VACUUM runs alone (not in a transaction or with other statements), on the table only,
    // without the run's statement timeout.
    sqlx::raw_sql("SET statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    // A VACUUM that fails (a lock it waited too long for) leaves an archived table archived:
    // a warning, not a failed table.
    if let Err(error) = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {table}")))
        .execute(&mut *conn)
        .await
    {
        tracing::warn!(database = target.database, table = table_name, error = %Error::Db(error), "vacuum_after: VACUUM (ANALYZE) failed; the table is archived.");
        return Ok(());
    }
    tracing::info!(
        database = target.database,
        table = format!("{}.{}", target.schema, target.table),
        deleted = report.rows,
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "Vacuumed and analyzed the table after the run's deletes."
    );
    Ok(())
}

/// Runs `command` over every database `targets` touch, a few at a time; returns the worst
/// outcome. `passwords` are in config order (see [`passwords`]).
pub async fn run_all(
    config: &Config,
    targets: &[Target],
    passwords: &[Option<Secret>],
    store: &dyn ObjectStore,
    options: &Options,
    command: Command,
) -> Outcome {
    let databases = config
        .databases
        .iter()
        .zip(passwords)
        .filter(|(db, _)| targets.iter().any(|t| t.database == db.name));
    let outcomes: Vec<Outcome> = futures::stream::iter(databases)
        .map(|(db, password)| run_database(db, password.as_ref(), targets, store, options, command))
        .buffer_unordered(config.defaults.databases_in_parallel())
        .collect()
        .await;
    outcomes.into_iter().max().unwrap_or(Outcome::Done)
}
