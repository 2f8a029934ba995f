//! Tests of the pipeline's failpoints (its steps are tested against PostgreSQL in `tests/`).

use super::{Options, failpoint};

#[test]
fn failpoints_stop_after_the_named_step_of_the_named_batch() {
    let at = |point: &str| Options {
        failpoint: Some(point.to_owned()),
        ..Options::default()
    };
    assert!(failpoint(&Options::default(), "uploaded", 1).is_ok());
    assert!(failpoint(&at("uploaded"), "uploaded", 1).is_err());
    assert!(failpoint(&at("uploaded"), "uploaded", 2).is_ok());
    assert!(failpoint(&at("uploaded"), "manifest", 1).is_ok());
    assert!(failpoint(&at("deleted@3"), "deleted", 2).is_ok());
    let err = failpoint(&at("deleted@3"), "deleted", 3).unwrap_err();
    assert_eq!(err.to_string(), "stopped at failpoint deleted@3");
}
