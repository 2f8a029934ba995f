//! Tests: COPY text rows become valid JSON lines with the right JSON types.

use super::{Columns, FieldCount, Fields, Kind};

fn columns() -> Columns {
    Columns::new(&[
        ("id".to_owned(), Kind::of("int8", "")),
        ("ok".to_owned(), Kind::of("bool", "")),
        ("doc".to_owned(), Kind::of("jsonb", "")),
        ("amount".to_owned(), Kind::of("numeric", "")),
        ("note \"q\"".to_owned(), Kind::of("text", "")),
        ("at".to_owned(), Kind::of("timestamptz", "")),
    ])
}

fn line(row: &[u8]) -> serde_json::Value {
    let mut out = Vec::new();
    let mut fields = Fields::default();
    columns().row(row, &mut out, &mut fields).unwrap();
    assert_eq!(out.last(), Some(&b'\n'));
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn values_keep_their_json_types() {
    let v = line(b"42\tt\t{\"a\": [1, 2]}\t12.50\tplain\t2026-01-02 03:04:05.5+00");
    assert_eq!(
        v,
        serde_json::json!({"id": 42, "ok": true, "doc": {"a": [1, 2]}, "amount": "12.50",
            "note \"q\"": "plain", "at": "2026-01-02T03:04:05.5+00:00"})
    );
    // Numerics keep every digit: a string of the database's own text.
    let mut out = Vec::new();
    columns()
        .row(
            b"1\tf\t{}\t12345678901234567890.0123456789\tx\ty",
            &mut out,
            &mut Fields::default(),
        )
        .unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("\"amount\":\"12345678901234567890.0123456789\",")
    );
}

#[test]
fn nulls_specials_and_escapes() {
    let v = line(b"\\N\tf\t\\N\tNaN\ttab\\there \\\\ back \"quote\"\\nnew \x01\t\\N");
    assert_eq!(v["id"], serde_json::Value::Null);
    assert_eq!(v["ok"], false);
    assert_eq!(v["doc"], serde_json::Value::Null);
    assert_eq!(v["amount"], "NaN");
    assert_eq!(v["note \"q\""], "tab\there \\ back \"quote\"\nnew \u{1}");
    for special in ["Infinity", "-Infinity"] {
        let row = format!("1\tt\t1\t{special}\tx\ty");
        assert_eq!(line(row.as_bytes())["amount"], special);
    }
}

#[test]
fn invalid_utf8_becomes_the_replacement_character() {
    let v = line(b"1\tt\t1\t1\tbad \xff byte\ty");
    assert_eq!(v["note \"q\""], "bad \u{fffd} byte");
}

#[test]
fn a_row_with_the_wrong_number_of_fields_is_an_error() {
    let mut out = Vec::new();
    let err = columns()
        .row(b"1\tt", &mut out, &mut Fields::default())
        .unwrap_err();
    assert_eq!(
        err,
        FieldCount {
            found: 2,
            expected: 6
        }
    );
}

#[test]
fn fields_hold_the_unescaped_text_of_the_last_row() {
    let mut fields = Fields::default();
    let mut out = Vec::new();
    columns()
        .row(b"7\tt\t{}\t1\tfirst\ty", &mut out, &mut fields)
        .unwrap();
    columns()
        .row(
            b"42\t\\N\t{}\t1\ta\\tb\t2026-01-02 03:04:05+00",
            &mut out,
            &mut fields,
        )
        .unwrap();
    assert_eq!(fields.get(0), Some(&b"42"[..]));
    assert_eq!(fields.get(1), None);
    assert_eq!(fields.get(4), Some(&b"a\tb"[..]));
    assert_eq!(fields.get(5), Some(&b"2026-01-02 03:04:05+00"[..]));
    assert_eq!(fields.get(6), None);
}

#[test]
fn sql_null_and_json_null_stay_apart_in_json_columns() {
    // SQL NULL in a jsonb column: the key is left out; the JSON value null is written.
    let v = line(b"1\t\\N\t\\N\t\\N\t\\N\t\\N");
    assert_eq!(
        v,
        serde_json::json!({"id": 1, "ok": null, "amount": null, "note \"q\"": null, "at": null})
    );
    let v = line(b"2\tf\tnull\t1\tx\t\\N");
    assert_eq!(v["doc"], serde_json::Value::Null);
    assert!(v.as_object().unwrap().contains_key("doc"));
    // The first column left out: the line is still one valid object.
    let only = Columns::new(&[
        ("doc".to_owned(), Kind::of("json", "")),
        ("id".to_owned(), Kind::of("int4", "")),
    ]);
    let mut out = Vec::new();
    only.row(b"\\N\t7", &mut out, &mut Fields::default())
        .unwrap();
    assert_eq!(out, b"{\"id\":7}\n");
}

#[test]
fn timestamps_are_rfc_3339_where_it_can_say_them() {
    let mut out = Vec::new();
    for (pg, json) in [
        (
            "2026-06-07 23:18:09.170185+00",
            "\"2026-06-07T23:18:09.170185+00:00\"",
        ),
        ("2026-06-07 23:18:09+05:30", "\"2026-06-07T23:18:09+05:30\""),
        ("2026-06-07 23:18:09-03", "\"2026-06-07T23:18:09-03:00\""),
        ("2026-06-07 23:18:09.5", "\"2026-06-07T23:18:09.5\""),
        ("infinity", "\"infinity\""),
        ("0044-03-15 12:00:00+00 BC", "\"0044-03-15 12:00:00+00 BC\""),
        (
            "1850-01-01 00:00:00+00:53:28",
            "\"1850-01-01 00:00:00+00:53:28\"",
        ),
    ] {
        out.clear();
        super::timestamp(pg.as_bytes(), &mut out);
        assert_eq!(String::from_utf8_lossy(&out), json, "{pg}");
    }
}

#[test]
fn bytea_is_base64() {
    let mut out = Vec::new();
    super::bytea(b"\\x00ff10", &mut out);
    assert_eq!(out, b"\"AP8Q\"");
    out.clear();
    super::bytea(b"\\x", &mut out);
    assert_eq!(out, b"\"\"");
    out.clear();
    super::bytea(b"not hex", &mut out);
    assert_eq!(out, b"\"not hex\"");
}
