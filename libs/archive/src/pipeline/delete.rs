//! Deleting a batch's rows: exactly the rows the batch read, in one transaction.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::config::Target;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::sql::ident;

/// How an archived batch's rows are deleted: exactly the keys of its manifest, in one
/// transaction.
///
/// A batch of this run is deleted by its `(timestamp, key)` range in the snapshot it was
/// read in ([`Deletes::run_in_snapshot`]): rows inserted since are not visible there, and a
/// row changed since fails the delete, which then falls back to [`Deletes::run`]. That
/// one (also for batches of an interrupted run) deletes the range and returns the keys it
/// deleted; if any of them is not in the manifest (a row was inserted into the range after
/// it was read), the transaction is rolled back and the manifest's keys are deleted one by
/// one instead. Either way nothing that was not archived is deleted.
pub(super) struct Deletes {
    by_range: String,
    by_keys: String,
    /// The range delete without `RETURNING`, for the snapshot the batch was read in.
    in_snapshot: String,
}

impl Deletes {
    /// The deletes of `target`, whose primary key is of type `pk_type` (as `format_type`
    /// prints it, such as `bigint`): keys are cast to it, so that the deletes use its index.
    pub(super) fn new(target: &Target, pk_type: &str) -> Self {
        let table = format!("{}.{}", ident(&target.schema), ident(&target.table));
        let (ts, pk) = (ident(&target.timestamp_column), ident(&target.primary_key));
        let range = format!(
            "DELETE FROM {table} WHERE {ts} >= $1::timestamptz AND {ts} <= $3::timestamptz \
             AND ({ts}, {pk}) >= ($1::timestamptz, $2::text::{pk_type}) \
             AND ({ts}, {pk}) <= ($3::timestamptz, $4::text::{pk_type}) \
             AND {ts} < $5::timestamptz"
        );
        Self {
            by_range: format!("{range} RETURNING {pk}::text"),
            in_snapshot: range,
            by_keys: format!(
                "DELETE FROM {table} WHERE {pk} = ANY($1::text[]::{pk_type}[]) AND {ts} < $2::timestamptz"
            ),
        }
    }

    /// Deletes `manifest`'s rows on `conn`, whose transaction is in the snapshot the batch was
    /// read in (see `hand_over`), and commits. Rows of the range visible there are exactly
    /// the batch's, so its range is deleted without returning keys; if any of them changed
    /// since (a serialization failure) or the count differs, the transaction is rolled back
    /// and [`Deletes::run`] deletes by keys.
    pub(super) async fn run_in_snapshot(
        &self,
        conn: &mut PgConnection,
        manifest: &Manifest,
    ) -> Result<u64, Error> {
        let deleted = sqlx::query_with(AssertSqlSafe(self.in_snapshot.as_str()), range(manifest)?)
            .execute(&mut *conn)
            .await;
        match deleted {
            Ok(done) if done.rows_affected() == manifest.rows => {
                sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
                Ok(done.rows_affected())
            }
            Ok(_) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                self.run(conn, manifest).await
            }
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40001") => {
                sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await?;
                tracing::warn!(
                    object = manifest.object,
                    "Rows of the batch changed after it was read; deleting the archived keys."
                );
                self.run(conn, manifest).await
            }
            Err(e) => {
                let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
                Err(e.into())
            }
        }
    }

    /// Deletes `manifest`'s rows; returns how many were deleted.
    pub(super) async fn run(
        &self,
        conn: &mut PgConnection,
        manifest: &Manifest,
    ) -> Result<u64, Error> {
        let mut tx = conn.begin().await?;
        let gone: Vec<String> =
            sqlx::query_scalar_with(AssertSqlSafe(self.by_range.as_str()), range(manifest)?)
                .fetch_all(&mut *tx)
                .await?;
        let archived: std::collections::HashSet<&str> =
            manifest.keys.iter().map(String::as_str).collect();
        let deleted = if gone.iter().all(|k| archived.contains(k.as_str())) {
            tx.commit().await?;
            gone.len() as u64
        } else {
            tx.rollback().await?;
            tracing::warn!(
                object = manifest.object,
                "Rows that were not archived appeared in the batch's key range; deleting the archived keys one by one."
            );
            let mut tx = conn.begin().await?;
            let deleted = sqlx::query(AssertSqlSafe(self.by_keys.as_str()))
                .bind(&manifest.keys)
                .bind(&manifest.cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            deleted
        };
        if deleted != manifest.rows {
            tracing::warn!(
                object = manifest.object,
                deleted,
                archived = manifest.rows,
                "Fewer rows deleted than archived: some were deleted by someone else, or by an interrupted run."
            );
        }
        Ok(deleted)
    }
}

/// The parameters of the range deletes: `$1`, `$2` the first `(timestamp, key)` of the batch,
/// `$3`, `$4` its last, `$5` the cutoff.
fn range(manifest: &Manifest) -> Result<sqlx::postgres::PgArguments, Error> {
    use sqlx::Arguments;
    let mut args = sqlx::postgres::PgArguments::default();
    for value in [
        &manifest.first[0],
        &manifest.first[1],
        &manifest.last[0],
        &manifest.last[1],
        &manifest.cutoff,
    ] {
        args.add(value)
            .map_err(|e| Error::Copy(format!("binding a delete's range: {e}")))?;
    }
    Ok(args)
}

#[cfg(test)]
mod tests;
