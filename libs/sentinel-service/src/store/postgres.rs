//! The PostgreSQL store: several replicas share one state and count each line once.
//!
//! Tables (created by the embedded migrations at start, under an advisory lock, recorded in
//! `sentinel_schema`): `sentinel_errors` (one row per fingerprint: counts, first and last
//! seen, three samples), `sentinel_lines` (the identity of each counted line), and
//! `sentinel_cursors` (where reading resumes, per query), `sentinel_audit` (the remediation
//! audit log) and `sentinel_settings` (the operator's switches, one row).
//!
//! A page is recorded in one transaction: the lines' identities are inserted with
//! `ON CONFLICT DO NOTHING RETURNING id`, and only the lines that returned count, so two
//! replicas recording the same line (both read every line) add it once, whichever commits
//! first. Line identities are kept for [`LINE_MEMORY`]: replicas agree exactly as long as
//! neither reads lines older than that.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bulwark_config::Secret;
use bulwark_loki::Cursor;
use bulwark_sentinel::audit::{Entry, Filter as AuditFilter};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::remediation::{SwitchChange, Switches};
use bulwark_sentinel::rules::Priority;
use bulwark_sentinel::store::{
    ErrorView, Filter, Page, SampleView, Stats, merge_samples, rfc3339, sample_message,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, QueryBuilder, Row};

use super::{Line, Store, StoreError};

mod audit;

/// How long the identity of a counted line is kept.
pub const LINE_MEMORY: Duration = Duration::from_secs(24 * 3600);

/// The schema, one migration per version, applied in order and never edited once released.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE sentinel_errors (
        fingerprint bigint PRIMARY KEY,
        namespace text NOT NULL,
        workload text NOT NULL,
        container text NOT NULL,
        rule text NOT NULL,
        priority smallint NOT NULL,
        normalized text NOT NULL,
        count bigint NOT NULL,
        first_seen bigint NOT NULL,
        last_seen bigint NOT NULL,
        first_pod text NOT NULL,
        first_message text NOT NULL,
        prev_ts bigint,
        prev_pod text,
        prev_message text,
        last_pod text NOT NULL,
        last_message text NOT NULL
    );
    CREATE INDEX sentinel_errors_last_seen ON sentinel_errors (last_seen);
    CREATE TABLE sentinel_lines (id bytea PRIMARY KEY, ts bigint NOT NULL);
    CREATE INDEX sentinel_lines_ts ON sentinel_lines (ts);
    CREATE TABLE sentinel_cursors (
        query text PRIMARY KEY,
        cursor text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );",
    ),
    (2, audit::MIGRATION),
];

/// The advisory lock that serialises migrations between replicas starting together.
const MIGRATION_LOCK: i64 = 0x5e4e_7117_0000_0001;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    max_errors: usize,
    /// Errors this replica evicted by the bound.
    evicted: Arc<AtomicU64>,
}

impl PgStore {
    /// Connects to `url` (with `password` when given) and brings the schema up to date; the
    /// store keeps at most about `max_errors` errors (the bound is applied by each purge).
    pub async fn connect(
        url: &str,
        password: Option<&Secret>,
        max_errors: usize,
    ) -> Result<Self, StoreError> {
        let mut options: PgConnectOptions = url.parse()?;
        options = options.application_name("bulwark-sentinel");
        if let Some(p) = password {
            options = options.password(p.expose());
        }
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        migrate(&pool).await?;
        Ok(Self {
            pool,
            max_errors,
            evicted: Arc::default(),
        })
    }
}

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // `IF NOT EXISTS` would log a notice at every start.
    sqlx::query("SET LOCAL client_min_messages = warning")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS sentinel_schema (version integer PRIMARY KEY)")
        .execute(&mut *tx)
        .await?;
    let applied: Option<i32> = sqlx::query_scalar("SELECT max(version) FROM sentinel_schema")
        .fetch_one(&mut *tx)
        .await?;
    let applied = applied.unwrap_or(0);
    let newest = MIGRATIONS.last().map_or(0, |m| m.0);
    if applied > newest {
        return Err(StoreError::Migrate(format!(
            "the database is at schema version {applied}, newer than this sentinel's {newest}"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO sentinel_schema (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
        tracing::info!(version, "Store schema migrated.");
    }
    tx.commit().await?;
    Ok(())
}

fn message(l: &Line) -> String {
    sample_message(&l.normalized, &l.values)
}

fn priority_of(n: i16) -> Priority {
    match n {
        1 => Priority::P1,
        2 => Priority::P2,
        3 => Priority::P3,
        _ => Priority::P4,
    }
}

fn priority_number(p: Priority) -> i16 {
    match p {
        Priority::P1 => 1,
        Priority::P2 => 2,
        Priority::P3 => 3,
        Priority::P4 => 4,
    }
}

fn view(row: &PgRow) -> Result<ErrorView, sqlx::Error> {
    let normalized: String = row.try_get("normalized")?;
    let mut samples = vec![SampleView {
        timestamp: rfc3339(row.try_get("first_seen")?),
        pod: row.try_get("first_pod")?,
        message: row.try_get("first_message")?,
    }];
    let count: i64 = row.try_get("count")?;
    if let (Some(ts), Some(pod), Some(msg)) = (
        row.try_get::<Option<i64>, _>("prev_ts")?,
        row.try_get::<Option<String>, _>("prev_pod")?,
        row.try_get::<Option<String>, _>("prev_message")?,
    ) {
        samples.push(SampleView {
            timestamp: rfc3339(ts),
            pod,
            message: msg,
        });
    }
    let last = SampleView {
        timestamp: rfc3339(row.try_get("last_seen")?),
        pod: row.try_get("last_pod")?,
        message: row.try_get("last_message")?,
    };
    if count > 1 {
        samples.push(last.clone());
    }
    Ok(ErrorView {
        id: Fingerprint(row.try_get::<i64, _>("fingerprint")? as u64),
        namespace: row.try_get("namespace")?,
        workload: row.try_get("workload")?,
        container: row.try_get("container")?,
        pod: last.pod,
        message: last.message,
        normalized,
        rule: row.try_get("rule")?,
        priority: priority_of(row.try_get("priority")?),
        count: count as u64,
        first_seen: rfc3339(row.try_get("first_seen")?),
        last_seen: rfc3339(row.try_get("last_seen")?),
        samples,
    })
}

fn filtered(select: &str, filter: &Filter) -> QueryBuilder<Postgres> {
    let mut q = QueryBuilder::new(select);
    q.push(" WHERE true");
    if let Some(v) = &filter.namespace {
        q.push(" AND namespace = ").push_bind(v.clone());
    }
    if let Some(v) = &filter.workload {
        q.push(" AND workload = ").push_bind(v.clone());
    }
    if let Some(v) = &filter.rule {
        q.push(" AND rule = ").push_bind(v.clone());
    }
    if let Some(v) = &filter.pod {
        q.push(" AND strpos(last_pod, ")
            .push_bind(v.clone())
            .push(") > 0");
    }
    if let Some(p) = filter.priority {
        q.push(" AND priority = ").push_bind(priority_number(p));
    }
    if let Some(s) = filter.since_ns {
        q.push(" AND last_seen >= ").push_bind(s);
    }
    if let Some(s) = &filter.search {
        q.push(" AND strpos(lower(namespace || ' ' || workload || ' ' || last_pod || ' ' || last_message), lower(")
            .push_bind(s.clone())
            .push(")) > 0");
    }
    q
}

type Sample = (String, String);

/// Adds `batch` (new lines of one fingerprint) to its row: the row is created if missing and
/// locked, so that replicas adding to one error take turns; samples merge as the memory
/// store's do ([`merge_samples`]).
async fn upsert(
    tx: &mut sqlx::Transaction<'static, Postgres>,
    fp: Fingerprint,
    batch: &[&Line],
) -> Result<(), StoreError> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO sentinel_errors (fingerprint, namespace, workload, container, rule,
            priority, normalized, count, first_seen, last_seen, first_pod, first_message,
            last_pod, last_message)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $8, '', '', '', '')
         ON CONFLICT (fingerprint) DO NOTHING",
    )
    .bind(fp.0 as i64)
    .bind(&first.namespace)
    .bind(&first.workload)
    .bind(&first.container)
    .bind(&first.rule)
    .bind(priority_number(first.priority))
    .bind(&first.normalized)
    .bind(first.timestamp_ns)
    .execute(&mut **tx)
    .await?;
    let row = sqlx::query("SELECT * FROM sentinel_errors WHERE fingerprint = $1 FOR UPDATE")
        .bind(fp.0 as i64)
        .fetch_one(&mut **tx)
        .await?;
    let mut count: i64 = row.try_get("count")?;
    let mut kept: Vec<(i64, Sample)> = Vec::new();
    if count > 0 {
        kept.push((
            row.try_get("first_seen")?,
            (row.try_get("first_pod")?, row.try_get("first_message")?),
        ));
        if let (Some(ts), Some(pod), Some(msg)) = (
            row.try_get::<Option<i64>, _>("prev_ts")?,
            row.try_get::<Option<String>, _>("prev_pod")?,
            row.try_get::<Option<String>, _>("prev_message")?,
        ) {
            kept.push((ts, (pod, msg)));
        }
        if count > 1 {
            kept.push((
                row.try_get("last_seen")?,
                (row.try_get("last_pod")?, row.try_get("last_message")?),
            ));
        }
    }
    let mut latest = first;
    for l in batch {
        count += 1;
        kept = merge_samples(kept, (l.timestamp_ns, (l.pod.clone(), message(l))));
        if l.timestamp_ns >= latest.timestamp_ns {
            latest = l;
        }
    }
    let (first_ts, (first_pod, first_message)) = kept[0].clone();
    let last = kept.last().cloned().unwrap_or_else(|| kept[0].clone());
    let prev = (kept.len() == 3).then(|| kept[1].clone());
    sqlx::query(
        "UPDATE sentinel_errors SET count = $2, rule = $3, priority = $4,
            first_seen = $5, first_pod = $6, first_message = $7,
            prev_ts = $8, prev_pod = $9, prev_message = $10,
            last_seen = $11, last_pod = $12, last_message = $13
         WHERE fingerprint = $1",
    )
    .bind(fp.0 as i64)
    .bind(count)
    .bind(&latest.rule)
    .bind(priority_number(latest.priority))
    .bind(first_ts)
    .bind(first_pod)
    .bind(first_message)
    .bind(prev.as_ref().map(|p| p.0))
    .bind(prev.as_ref().map(|p| p.1.0.clone()))
    .bind(prev.map(|p| p.1.1))
    .bind(last.0)
    .bind(last.1.0)
    .bind(last.1.1)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn record(
        &self,
        lines: &[Line],
        query: &str,
        cursor: &Cursor,
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<Vec<u8>> = lines
            .iter()
            .map(|l| l.line_id.to_be_bytes().to_vec())
            .collect();
        let ts: Vec<i64> = lines.iter().map(|l| l.timestamp_ns).collect();
        let new: Vec<Vec<u8>> = sqlx::query_scalar(
            "INSERT INTO sentinel_lines (id, ts) SELECT * FROM unnest($1::bytea[], $2::bigint[])
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .bind(&ts)
        .fetch_all(&mut *tx)
        .await?;
        let new: HashSet<Vec<u8>> = new.into_iter().collect();
        let mut batches: BTreeMap<Fingerprint, Vec<&Line>> = BTreeMap::new();
        for (l, id) in lines.iter().zip(&ids) {
            if new.contains(id) {
                batches.entry(l.fingerprint).or_default().push(l);
            }
        }
        for (fp, batch) in &batches {
            upsert(&mut tx, *fp, batch).await?;
        }
        let cursor =
            serde_json::to_string(cursor).map_err(|e| StoreError::Cursor(e.to_string()))?;
        sqlx::query(
            "INSERT INTO sentinel_cursors (query, cursor) VALUES ($1, $2)
             ON CONFLICT (query) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
        )
        .bind(query)
        .bind(cursor)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(new.len() as u64)
    }

    async fn cursor(&self, query: &str) -> Result<Option<Cursor>, StoreError> {
        let saved: Option<String> =
            sqlx::query_scalar("SELECT cursor FROM sentinel_cursors WHERE query = $1")
                .bind(query)
                .fetch_optional(&self.pool)
                .await?;
        saved
            .map(|v| serde_json::from_str(&v).map_err(|e| StoreError::Cursor(e.to_string())))
            .transpose()
    }

    async fn get(&self, id: Fingerprint) -> Result<Option<ErrorView>, StoreError> {
        let row = sqlx::query("SELECT * FROM sentinel_errors WHERE fingerprint = $1")
            .bind(id.0 as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(view).transpose()?)
    }

    async fn list(
        &self,
        filter: &Filter,
        page: Page,
    ) -> Result<(Vec<ErrorView>, usize), StoreError> {
        let total: i64 = filtered("SELECT count(*) FROM sentinel_errors", filter)
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let mut q = filtered("SELECT * FROM sentinel_errors", filter);
        q.push(" ORDER BY priority, last_seen DESC, fingerprint LIMIT ")
            .push_bind(page.page_size as i64)
            .push(" OFFSET ")
            .push_bind((page.page.saturating_sub(1) * page.page_size) as i64);
        let rows = q.build().fetch_all(&self.pool).await?;
        let views = rows.iter().map(view).collect::<Result<Vec<_>, _>>()?;
        Ok((views, total as usize))
    }

    async fn stats(&self) -> Result<Stats, StoreError> {
        let mut s = Stats::default();
        let rows = sqlx::query(
            "SELECT priority, namespace, count(*) AS errors, sum(count)::bigint AS lines,
                    max(last_seen) AS last
             FROM sentinel_errors GROUP BY priority, namespace",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut last = None;
        for r in &rows {
            let lines: i64 = r.try_get("lines")?;
            let errors: i64 = r.try_get("errors")?;
            s.unique_errors += errors as u64;
            s.occurrences += lines as u64;
            *s.by_priority
                .entry(priority_of(r.try_get("priority")?))
                .or_default() += lines as u64;
            *s.by_namespace.entry(r.try_get("namespace")?).or_default() += lines as u64;
            last = last.max(Some(r.try_get::<i64, _>("last")?));
        }
        s.last_seen = last.map(rfc3339);
        Ok(s)
    }

    async fn purge(&self, cutoff_ns: i64) -> Result<usize, StoreError> {
        sqlx::query("DELETE FROM sentinel_audit WHERE at < $1")
            .bind(cutoff_ns)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query("DELETE FROM sentinel_errors WHERE last_seen < $1")
            .bind(cutoff_ns)
            .execute(&self.pool)
            .await?;
        // The bound: past `max_errors`, the errors seen least recently go, down to nine
        // tenths of it, as the memory store evicts (there on the insert that crosses it, here
        // with each purge). Replicas purging together delete from the same end, so the
        // second finds the rows gone rather than deleting more.
        let max = i64::try_from(self.max_errors).unwrap_or(i64::MAX);
        let evicted = sqlx::query(
            "DELETE FROM sentinel_errors WHERE fingerprint IN (
                SELECT fingerprint FROM sentinel_errors ORDER BY last_seen, fingerprint
                LIMIT (SELECT CASE WHEN count(*) > $1 THEN count(*) - $1 + $1 / 10 ELSE 0 END
                       FROM sentinel_errors))",
        )
        .bind(max)
        .execute(&self.pool)
        .await?;
        self.evicted
            .fetch_add(evicted.rows_affected(), Ordering::Relaxed);
        let memory = i64::try_from(LINE_MEMORY.as_nanos()).unwrap_or(i64::MAX);
        let newest: Option<i64> = sqlx::query_scalar("SELECT max(ts) FROM sentinel_lines")
            .fetch_one(&self.pool)
            .await?;
        if let Some(newest) = newest {
            sqlx::query("DELETE FROM sentinel_lines WHERE ts < $1")
                .bind(newest.saturating_sub(memory))
                .execute(&self.pool)
                .await?;
        }
        Ok(done.rows_affected() as usize)
    }

    async fn size(&self) -> Result<(usize, u64), StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM sentinel_errors")
            .fetch_one(&self.pool)
            .await?;
        Ok((n as usize, self.evicted.load(Ordering::Relaxed)))
    }

    async fn audit(&self, entry: &Entry) -> Result<u64, StoreError> {
        audit::append(&self.pool, entry).await
    }

    async fn audit_log(
        &self,
        filter: &AuditFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Entry>, usize), StoreError> {
        audit::list(&self.pool, filter, offset, limit).await
    }

    async fn switches(&self) -> Result<Option<Switches>, StoreError> {
        audit::switches(&self.pool).await
    }

    async fn set_switches(
        &self,
        change: SwitchChange,
        defaults: Switches,
    ) -> Result<Switches, StoreError> {
        audit::set_switches(&self.pool, change, defaults).await
    }
}
