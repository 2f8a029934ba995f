//! The lock key is part of the contract between archiver versions: a run of an older and a
//! newer version on the same database must take the same lock. The expected values were
//! computed apart from this code (Python's `hashlib`).

use super::lock_key;

#[test]
fn lock_keys_are_stable_and_per_database() {
    assert_eq!(lock_key("audit"), -2093402688546370170);
    assert_eq!(lock_key("billing"), -4112539327399697951);
}
