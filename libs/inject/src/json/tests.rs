//! Tests of the JSON writers against serde_json.

const STRINGS: &[&str] = &[
    "",
    "plain",
    "quote \" backslash \\ slash /",
    "\n\r\t\u{8}\u{c}\u{0}\u{1f}\u{7f}",
    "caf\u{e9} \u{1f512} \u{2028}",
    "\u{1}\"\u{1}",
];

#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    for s in STRINGS {
        let mut out = String::new();
        super::push_string(&mut out, s);
        assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
    }
}

#[test]
fn nested_strings_are_the_literal_escaped_again() {
    for s in STRINGS {
        let mut out = String::from("\"");
        super::push_nested_string(&mut out, s);
        out.push('"');
        let literal = serde_json::to_string(s).unwrap();
        assert_eq!(out, serde_json::to_string(&literal).unwrap(), "{s:?}");
    }
}

#[test]
fn numbers_are_decimal() {
    let mut out = String::new();
    super::push_number(&mut out, 0_u32);
    out.push(',');
    super::push_number(&mut out, u64::MAX);
    out.push(',');
    super::push_number(&mut out, -42_i64);
    assert_eq!(out, "0,18446744073709551615,-42");
}
