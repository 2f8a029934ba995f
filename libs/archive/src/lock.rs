//! One run per database at a time: a PostgreSQL advisory lock, held on a connection of its own
//! for the whole run.

use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use crate::error::Error;

/// The stable advisory lock key of a database's archiver runs.
pub fn lock_key(database: &str) -> i64 {
    let digest = Sha256::digest(format!("bulwark-archiver/v1/{database}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// Takes the run lock of `database` on `conn` (a connection kept for the whole run); `false`
/// when another run holds it.
pub async fn try_lock(conn: &mut PgConnection, database: &str) -> Result<bool, Error> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(lock_key(database))
        .fetch_one(conn)
        .await?)
}

#[cfg(test)]
mod tests;
