//! The helpers that stand in for Go's libraries, on inputs the corpus does not reach.

use super::{atoi, base64_decode, go_int, lower, quote, to_int64, upper};
use gotmpl::Value;

#[test]
fn quote_escapes_what_go_does_not_print() {
    for (s, go) in [
        ("plain", r#""plain""#),
        ("a\"b\\c", r#""a\"b\\c""#),
        ("\u{7}\u{8}\u{c}\n\r\t\u{b}", r#""\a\b\f\n\r\t\v""#),
        ("\u{1}\u{7f}", r#""\x01\x7f""#),
        ("nb\u{a0}sp zw\u{200b}j", r#""nb\u00a0sp zw\u200bj""#),
        ("\u{2028}\u{feff}", r#""\u2028\ufeff""#),
        ("\u{e0001}", r#""\U000e0001""#),
        ("é 🙂 ß", "\"é 🙂 ß\""),
    ] {
        assert_eq!(quote(s), go, "{s:?}");
    }
}

#[test]
fn case_mapping_is_go_simple_mapping() {
    let up: String = "straße ǅ ﬀ".chars().map(upper).collect();
    assert_eq!(up, "STRAßE Ǆ ﬀ");
    let low: String = "İSTANBUL Ǆ".chars().map(lower).collect();
    assert_eq!(low, "istanbul ǆ");
}

#[test]
fn integers_parse_as_go_and_cast_parse_them() {
    for (s, n) in [
        ("42", Some(42)),
        ("-42", Some(-42)),
        ("+7", Some(7)),
        ("0x2A", Some(42)),
        ("0o17", Some(15)),
        ("017", Some(15)),
        ("0b101", Some(5)),
        ("0x_2a", Some(42)),
        ("0x2_a", Some(42)),
        ("1_000", None),
        ("0x", None),
        ("-9223372036854775808", Some(i64::MIN)),
        ("9223372036854775808", None),
        ("4.5", None),
        ("", None),
    ] {
        assert_eq!(go_int(s), n, "{s:?}");
    }
    assert_eq!(to_int64(&Value::String("42.00".into())), 42);
    assert_eq!(to_int64(&Value::String("x".into())), 0);
    assert_eq!(to_int64(&Value::Float(-2.9)), -2);
    assert_eq!(atoi("99999999999999999999"), i64::MAX);
    assert_eq!(atoi("-99999999999999999999"), i64::MIN);
    assert_eq!(atoi("0x10"), 0);
}

#[test]
fn base64_decodes_as_go_std_encoding() {
    // Go skips line breaks, requires padding and allows non-zero trailing bits.
    assert_eq!(base64_decode("aGVs\r\nbG8=").unwrap(), "hello");
    assert_eq!(base64_decode("aGVsbG9=").unwrap(), "hello");
    assert!(base64_decode("aGVsbG8").is_err());
    assert!(
        base64_decode("/w==")
            .unwrap_err()
            .to_string()
            .contains("not UTF-8")
    );
}
