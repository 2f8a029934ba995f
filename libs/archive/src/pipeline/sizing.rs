//! How many rows a batch holds: at most the table's `batch_size`, and about
//! [`MAX_BATCH_BYTES`] of JSON whatever the width of the rows, judged from a sample for the
//! first batch and from the batch before for the others.

use sqlx::{AssertSqlSafe, PgConnection};

use super::Options;
use crate::config::Target;
use crate::error::Error;
use crate::sql::ident;

/// The default most JSON per batch: 64 MiB, about 8 MiB gzip'd.
pub const MAX_BATCH_BYTES: u64 = 64 * 1024 * 1024;

/// The first batch of a table holds this fraction of the rows of the others.
pub(super) const FIRST_BATCH_SHARE: u32 = 4;

/// Rows sampled to size a table's first batch.
const SAMPLE_ROWS: u32 = 100;

/// The row count of a table's first batch, from the JSON width of its first rows due.
pub(super) async fn first_limit(
    conn: &mut PgConnection,
    target: &Target,
    options: &Options,
    cutoff: &str,
) -> Result<u32, Error> {
    let sql = format!(
        // `sample.*`, not `sample`: a column of that name would be taken for the row.
        "SELECT count(*), coalesce(sum(octet_length(row_to_json(sample.*)::text)), 0)::bigint FROM \
         (SELECT * FROM {}.{} t WHERE {ts} < $1::timestamptz ORDER BY t.{ts}, t.{pk} LIMIT {SAMPLE_ROWS}) sample",
        ident(&target.schema),
        ident(&target.table),
        ts = ident(&target.timestamp_column),
        pk = ident(&target.primary_key),
    );
    let (rows, bytes): (i64, i64) = sqlx::query_as(AssertSqlSafe(sql))
        .bind(cutoff)
        .fetch_one(conn)
        .await?;
    let (rows, bytes) = (
        u64::try_from(rows).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    );
    Ok(next_limit(target, options, rows, bytes))
}

/// The row count of the batch after one of `rows` rows and `bytes` bytes of JSON.
pub(super) fn next_limit(target: &Target, options: &Options, rows: u64, bytes: u64) -> u32 {
    let cap = options.batch_bytes();
    let per_row = (bytes / rows.max(1)).max(1);
    u32::try_from(cap / per_row)
        .unwrap_or(u32::MAX)
        .clamp(1, target.batch_size)
}

#[cfg(test)]
mod tests;
