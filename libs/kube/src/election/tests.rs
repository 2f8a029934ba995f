//! Unit tests for settings validation; contention is tested against the fake API server in
//! `tests/it/election.rs`.

use std::time::Duration;

use super::LeaseSettings;

#[test]
fn defaults_are_valid_and_unsafe_timings_are_rejected() {
    assert!(LeaseSettings::new("l", "ns", "a").validate().is_ok());
    let mut s = LeaseSettings::new("l", "ns", "a");
    s.renew_deadline = Duration::from_secs(14);
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("must exceed renew deadline"), "{e}");
    let e = LeaseSettings::new("l", "ns", "")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("must not be empty"), "{e}");
}
