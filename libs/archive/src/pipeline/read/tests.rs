//! Tests of the batch query.

use super::batch_query;
use crate::config::Target;

fn target() -> Target {
    Target {
        database: "audit".to_owned(),
        schema: "public".to_owned(),
        table: "Audit Log".to_owned(),
        timestamp_column: "created_at".to_owned(),
        primary_key: "id".to_owned(),
        retention_days: 90,
        batch_size: 1000,
        critical: false,
    }
}

#[test]
fn the_first_batch_starts_at_the_oldest_row() {
    assert_eq!(
        batch_query(&target(), "*", None, "2026-01-01 00:00:00+00", None, 250),
        "COPY (SELECT * FROM \"public\".\"Audit Log\" t WHERE \"created_at\" < '2026-01-01 00:00:00+00'::timestamptz \
         ORDER BY t.\"created_at\", t.\"id\" LIMIT 250) TO STDOUT"
    );
}

#[test]
fn the_next_batches_start_strictly_after_the_last_key_read() {
    let after = ["2025-06-01 10:00:00+00".to_owned(), "o'brien".to_owned()];
    let query = batch_query(
        &target(),
        "*",
        None,
        "2026-01-01 00:00:00+00",
        Some(&after),
        10,
    );
    assert!(
        query.contains(
            " AND (\"created_at\", \"id\") > ('2025-06-01 10:00:00+00'::timestamptz, 'o''brien') ORDER BY"
        ),
        "{query}"
    );
}
