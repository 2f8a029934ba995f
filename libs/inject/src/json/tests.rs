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

#[test]
fn every_escaped_byte_is_found_at_every_position() {
    for len in 0..20 {
        for at in 0..len {
            for special in [b'"', b'\\', 0x00, 0x01, 0x1f] {
                let mut bytes = vec![b'a'; len];
                if at > 0 {
                    // A byte just below a quote or backslash, and above a control character.
                    bytes[at - 1] = special.wrapping_add(1).max(0x20);
                }
                bytes[at] = special;
                let s = std::str::from_utf8(&bytes).unwrap();
                assert!(super::needs_escape(s), "{s:?}");
                assert_eq!(super::escape_at(&bytes), Some(at), "{bytes:?}");
                // A second one after it does not move the first.
                bytes.push(b'"');
                assert_eq!(super::escape_at(&bytes), Some(at), "{bytes:?}");
            }
            for plain in [b' ', b'!', b'#', b'[', b']', b'~', 0x7f] {
                let mut bytes = vec![b'a'; len];
                bytes[at] = plain;
                let s = std::str::from_utf8(&bytes).unwrap();
                assert!(!super::needs_escape(s), "{s:?}");
            }
        }
    }
    // Multi-byte characters have no byte below 0x80, and next to a quote still find it.
    assert!(!super::needs_escape(
        "caf\u{e9} \u{1f512} \u{2028} \u{ff}\u{100}"
    ));
    assert!(super::needs_escape("\u{1f512}\u{1f512}\""));
    assert!(super::needs_escape("\u{1f512}\u{1f512}\u{1}x"));
}
