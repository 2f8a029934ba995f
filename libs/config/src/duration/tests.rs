//! Tests for duration parsing and printing.

use super::Duration;

#[track_caller]
fn ok(input: &str, ms: u64) {
    let d: Duration = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
    assert_eq!(d.get().as_millis(), u128::from(ms), "{input}");
}

#[track_caller]
fn bad(input: &str, reason: &str) {
    let e = input.parse::<Duration>().unwrap_err().to_string();
    assert!(e.contains(reason), "{input}: {e}");
    assert!(e.contains("expected a number followed by"), "{e}");
}

#[test]
fn parses_seed_forms() {
    ok("30s", 30_000);
    ok("5m", 300_000);
    ok("24h", 86_400_000);
    ok("12h", 43_200_000);
    ok("10m", 600_000);
    ok("500ms", 500);
    ok("7d", 604_800_000);
    ok("1h30m", 5_400_000);
    ok(" 2s ", 2_000);
    ok("0s", 0);
}

#[test]
fn rejects_ambiguous_and_malformed() {
    bad("30", "missing unit");
    bad("", "empty");
    bad("s", "missing number");
    bad("5 m", "missing unit");
    bad("5w", "unknown unit");
    bad("-5s", "missing number");
    bad("1.5h", "missing unit");
    bad("99999999999999999999s", "number too large");
    bad("18446744073709551615d", "too large");
}

#[test]
fn display_round_trips() {
    for s in ["0s", "500ms", "30s", "5m", "1h30m", "1d2h3m4s5ms"] {
        let d: Duration = s.parse().unwrap();
        assert_eq!(d.to_string(), s);
    }
}
