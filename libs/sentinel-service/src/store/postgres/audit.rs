//! The audit log and the switches in PostgreSQL.

use bulwark_sentinel::audit::{Entry, Filter, Outcome};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::remediation::{SwitchChange, Switches};
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use crate::store::StoreError;

/// Schema version 2.
pub(super) const MIGRATION: &str = "CREATE TABLE sentinel_audit (
        id bigserial PRIMARY KEY,
        at bigint NOT NULL,
        fingerprint bigint,
        rule text NOT NULL,
        namespace text NOT NULL,
        pod text NOT NULL,
        owner text NOT NULL,
        action text NOT NULL,
        outcome text NOT NULL,
        reason text,
        detail text NOT NULL,
        replica text NOT NULL,
        hold_until bigint
    );
    CREATE INDEX sentinel_audit_at ON sentinel_audit (at);
    CREATE INDEX sentinel_audit_fingerprint ON sentinel_audit (fingerprint)
        WHERE fingerprint IS NOT NULL;
    CREATE TABLE sentinel_settings (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        enabled boolean NOT NULL,
        dry_run boolean NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );";

pub(super) async fn append(pool: &PgPool, e: &Entry) -> Result<u64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO sentinel_audit (at, fingerprint, rule, namespace, pod, owner, action,
             outcome, reason, detail, replica, hold_until)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(e.at_ns)
    .bind(e.fingerprint.map(|f| f.0 as i64))
    .bind(&e.rule)
    .bind(&e.namespace)
    .bind(&e.pod)
    .bind(&e.owner)
    .bind(&e.action)
    .bind(e.outcome.as_str())
    .bind(&e.reason)
    .bind(&e.detail)
    .bind(&e.replica)
    .bind(e.hold_until_ns)
    .fetch_one(pool)
    .await?;
    Ok(id as u64)
}

fn filtered(select: &str, f: &Filter) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(select);
    q.push(" WHERE true");
    if let Some(fp) = f.fingerprint {
        q.push(" AND fingerprint = ").push_bind(fp.0 as i64);
    }
    if let Some(ns) = &f.namespace {
        q.push(" AND namespace = ").push_bind(ns.clone());
    }
    if let Some(o) = f.outcome {
        q.push(" AND outcome = ").push_bind(o.as_str());
    }
    if let Some(id) = f.after_id {
        q.push(" AND id > ")
            .push_bind(i64::try_from(id).unwrap_or(i64::MAX));
    }
    if let Some(t) = f.since_ns {
        q.push(" AND at >= ").push_bind(t);
    }
    if let Some(t) = f.relevant_at_ns {
        q.push(" AND (hold_until > ")
            .push_bind(t)
            .push(" OR (outcome IN ('success', 'failed') AND at > ")
            .push_bind(t.saturating_sub(bulwark_sentinel::remediation::HOUR_NS))
            .push("))");
    }
    q
}

fn entry(r: &PgRow) -> Result<Entry, StoreError> {
    let outcome: String = r.try_get("outcome")?;
    Ok(Entry {
        id: r.try_get::<i64, _>("id")? as u64,
        at_ns: r.try_get("at")?,
        fingerprint: r
            .try_get::<Option<i64>, _>("fingerprint")?
            .map(|f| Fingerprint(f as u64)),
        rule: r.try_get("rule")?,
        namespace: r.try_get("namespace")?,
        pod: r.try_get("pod")?,
        owner: r.try_get("owner")?,
        action: r.try_get("action")?,
        outcome: Outcome::parse(&outcome)
            .ok_or_else(|| StoreError::Migrate(format!("unknown audit outcome {outcome:?}")))?,
        reason: r.try_get("reason")?,
        detail: r.try_get("detail")?,
        replica: r.try_get("replica")?,
        hold_until_ns: r.try_get("hold_until")?,
    })
}

pub(super) async fn list(
    pool: &PgPool,
    filter: &Filter,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Entry>, usize), StoreError> {
    let total: i64 = filtered("SELECT count(*) FROM sentinel_audit", filter)
        .build_query_scalar()
        .fetch_one(pool)
        .await?;
    let mut q = filtered("SELECT * FROM sentinel_audit", filter);
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .push(" OFFSET ")
        .push_bind(i64::try_from(offset).unwrap_or(i64::MAX));
    let rows = q.build().fetch_all(pool).await?;
    let entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
    Ok((entries, total as usize))
}

pub(super) async fn switches(pool: &PgPool) -> Result<Option<Switches>, StoreError> {
    let row = sqlx::query("SELECT enabled, dry_run FROM sentinel_settings")
        .fetch_optional(pool)
        .await?;
    row.map(|r| {
        Ok(Switches {
            enabled: r.try_get("enabled")?,
            dry_run: r.try_get("dry_run")?,
        })
    })
    .transpose()
}

/// Sets the switches given, in one statement (two operators changing one switch each do not
/// undo each other); the row starts from `defaults`. Returns the switches now in force.
pub(super) async fn set_switches(
    pool: &PgPool,
    change: SwitchChange,
    defaults: Switches,
) -> Result<Switches, StoreError> {
    let row = sqlx::query(
        "INSERT INTO sentinel_settings (enabled, dry_run)
         VALUES (COALESCE($1, $3), COALESCE($2, $4))
         ON CONFLICT (id) DO UPDATE SET
             enabled = COALESCE($1, sentinel_settings.enabled),
             dry_run = COALESCE($2, sentinel_settings.dry_run),
             updated_at = now()
         RETURNING enabled, dry_run",
    )
    .bind(change.enabled)
    .bind(change.dry_run)
    .bind(defaults.enabled)
    .bind(defaults.dry_run)
    .fetch_one(pool)
    .await?;
    Ok(Switches {
        enabled: row.try_get("enabled")?,
        dry_run: row.try_get("dry_run")?,
    })
}
