//! Tests: messages from JSON (escapes included), klog, logfmt and text lines.

use std::borrow::Cow;

use super::{MAX_MESSAGE, message, read};

#[test]
fn json_message_and_error_with_escapes() {
    for (line, want) in [
        (
            r#"{"level":"error","msg":"say \"hi\"","ts":1}"#,
            r#"say "hi""#,
        ),
        (r#"{"message":"tab\there \u00e9"}"#, "tab\there é"),
        (
            r#"{"level":"error","msg":"Reconciler error","error":"dial tcp: refused"}"#,
            "Reconciler error: dial tcp: refused",
        ),
        (r#"{"err":"boom"}"#, "boom"),
        (r#"{"msg":"","error":"only the error"}"#, "only the error"),
        (
            r#"{"msg":"code","error":{"code":5}}"#,
            r#"code: {"code":5}"#,
        ),
        (
            r#"{"msg":null,"err":null,"x":1}"#,
            r#"{"msg":null,"err":null,"x":1}"#,
        ),
        (
            r#"  {"level":"error","text":"no message field"}"#,
            r#"{"level":"error","text":"no message field"}"#,
        ),
    ] {
        assert_eq!(message(line), want, "{line}");
    }
}

#[test]
fn broken_json_is_read_as_text() {
    assert_eq!(message(r#"{"msg":"cut off"#), r#"{"msg":"cut off"#);
}

#[test]
fn klog_plain_and_structured() {
    assert_eq!(
        message("E1205 06:28:43.123456       1 controller.go:114] failed to sync: boom"),
        "failed to sync: boom"
    );
    assert_eq!(
        message(
            r#"E1205 06:28:43.123456       1 controller.go:324] "Reconciler error" err="Operation cannot be fulfilled: \"x\"" controller="deployment""#
        ),
        r#"Reconciler error: Operation cannot be fulfilled: "x""#
    );
}

#[test]
fn logfmt_with_quoted_values() {
    assert_eq!(
        message(r#"time="2024-01-02T03:04:05Z" level=error msg="failed to \"open\" db" err=EOF"#),
        r#"failed to "open" db: EOF"#
    );
    assert_eq!(message("level=error message=plain"), "plain");
    // Without a msg key it is text.
    assert_eq!(message("level=error code=5"), "level=error code=5");
}

#[test]
fn text_lines_lose_their_timestamp_and_level() {
    for (line, want) in [
        (
            "2024-01-02T03:04:05.123Z ERROR connection refused",
            "connection refused",
        ),
        ("2024-01-02 03:04:05,123 [error] disk full", "disk full"),
        ("2024/01/02 03:04:05 panic: boom", "panic: boom"),
        ("ERROR: something", "something"),
        (
            "2024-01-02T03:04:05Z ERROR [main] c.e.App - boom",
            "c.e.App - boom",
        ),
        ("ERROR [pool 1] x", "[pool 1] x"),
        ("plain words", "plain words"),
        ("ERROR", "ERROR"),
    ] {
        assert_eq!(message(line), want, "{line}");
    }
}

#[test]
fn long_messages_are_cut_on_a_character_boundary() {
    let line = "é".repeat(400);
    let m = message(&line);
    assert!(m.len() <= MAX_MESSAGE && m.len() >= MAX_MESSAGE - 1);
    assert!(line.starts_with(&*m));
    let json = format!(r#"{{"msg":"{}"}}"#, "\\u00e9".repeat(400));
    assert_eq!(message(&json).chars().count(), MAX_MESSAGE / 2);
}

#[test]
fn parts_borrow_the_line_and_the_text_allocates_only_when_joined_or_unescaped() {
    let line = r#"{"level":"error","msg":"Reconciler error","error":"dial tcp: refused"}"#;
    let m = read(line);
    assert_eq!(*m.parts(), ["Reconciler error", "dial tcp: refused"]);
    for part in m.parts().iter() {
        assert!(line.as_bytes().as_ptr_range().contains(&part.as_ptr()));
    }
    let mut buf = String::from("left over");
    assert_eq!(m.text(&mut buf), "Reconciler error: dial tcp: refused");

    let plain = "2024-01-02T03:04:05Z ERROR [main] disk full";
    let m = read(plain);
    assert_eq!(*m.parts(), ["disk full"]);
    let mut buf = String::new();
    assert_eq!(m.text(&mut buf), "disk full");
    assert!(buf.is_empty(), "a borrowed message is not copied");
    assert!(matches!(m.into_text(), Cow::Borrowed("disk full")));

    let escaped = r#"{"msg":"say \"hi\""}"#;
    assert_eq!(*read(escaped).parts(), [r#"say "hi""#]);

    // The joined text is cut, not the parts; on a character boundary wherever the cut falls.
    let long = format!(r#"{{"msg":"{}","err":"tail"}}"#, "x".repeat(MAX_MESSAGE));
    let m = read(&long);
    assert_eq!(m.parts()[1], "tail");
    assert_eq!(m.text(&mut buf), "x".repeat(MAX_MESSAGE));
    for msg_len in [MAX_MESSAGE - 3, MAX_MESSAGE - 2, MAX_MESSAGE - 1] {
        let line = format!(r#"{{"msg":"{}","err":"éé tail"}}"#, "x".repeat(msg_len));
        let joined = format!("{}: éé tail", "x".repeat(msg_len));
        let mut end = MAX_MESSAGE;
        while !joined.is_char_boundary(end) {
            end -= 1;
        }
        assert_eq!(
            read(&line).text(&mut buf),
            &joined[..end],
            "msg of {msg_len}"
        );
        assert_eq!(message(&line), &joined[..end]);
    }
    let huge = format!(r#"{{"msg":"a","err":"{}"}}"#, "y".repeat(100_000));
    read(&huge).text(&mut buf);
    assert!(
        buf.capacity() < 4 * MAX_MESSAGE,
        "only what is kept is copied"
    );
}
