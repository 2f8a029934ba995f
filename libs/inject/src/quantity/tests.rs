//! Tests of Kubernetes quantities.

use super::parse;

#[track_caller]
fn check(text: &str, expect: Option<f64>) {
    assert_eq!(parse(text), expect, "{text}");
}

#[test]
fn valid_quantities() {
    check("0", Some(0.0));
    check("100m", Some(0.1));
    check("1.5", Some(1.5));
    check(".5", Some(0.5));
    check("+2", Some(2.0));
    check("64Mi", Some(64.0 * 1024.0 * 1024.0));
    check("1Gi", Some(1024.0 * 1024.0 * 1024.0));
    check("2k", Some(2000.0));
    check("1e3", Some(1000.0));
    check("5E-1", Some(0.5));
    check("1n", Some(1e-9));
}

#[test]
fn invalid_quantities() {
    for bad in [
        "", "-1", "m", ".", "1..2", "1MB", "1 Mi", "1e", "1e+", "lots", "1mi", "+", "1+2",
    ] {
        check(bad, None);
    }
}
