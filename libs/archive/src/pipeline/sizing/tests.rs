//! Tests of batch sizing.

use super::{MAX_BATCH_BYTES, next_limit};
use crate::config::Target;
use crate::pipeline::Options;

fn target(batch_size: u32) -> Target {
    Target::example(batch_size)
}

#[test]
fn narrow_rows_fill_the_batch_size() {
    let options = Options::default();
    assert_eq!(
        next_limit(&target(50_000), &options, 100, 100 * 200),
        50_000
    );
}

#[test]
fn wide_rows_get_fewer_rows_up_to_the_byte_cap() {
    let options = Options::default();
    // 1 MiB rows: 64 of them make the default cap.
    let per_row = 1024 * 1024;
    assert_eq!(
        u64::from(next_limit(&target(50_000), &options, 10, 10 * per_row)),
        MAX_BATCH_BYTES / per_row
    );
    let small = Options {
        max_batch_bytes: 10 * 1024,
        ..Options::default()
    };
    assert_eq!(next_limit(&target(50_000), &small, 4, 4 * 1024), 10);
}

#[test]
fn a_batch_always_holds_a_row() {
    let small = Options {
        max_batch_bytes: 10,
        ..Options::default()
    };
    assert_eq!(next_limit(&target(50_000), &small, 1, 1_000_000), 1);
    // No rows read: no width known, the batch size decides.
    assert_eq!(next_limit(&target(7), &Options::default(), 0, 0), 7);
}
