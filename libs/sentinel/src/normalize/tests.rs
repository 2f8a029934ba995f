//! Tests: each kind of volatile value, what is kept, that messages rebuild exactly, and that
//! the search from the possible starts finds what the plain unanchored search finds.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use regex_automata::Input;

use super::{Normalized, Normalizer, Token, rebuild};

fn n(s: &str) -> String {
    Normalizer::new().normalize(s)
}

#[test]
fn each_kind() {
    for (input, want) in [
        ("at 2024-01-02T03:04:05.123+02:00 failed", "at <TS> failed"),
        ("at 2024-01-02 03:04:05Z and 13:14:15.5", "at <TS> and <TS>"),
        ("req 3F2504E0-4F89-11D3-9A0C-0305E82C3301 x", "req <UUID> x"),
        ("req 3f2504e0-4f89-11d3-9a0c-0305e82c3301", "req <UUID>"),
        (
            "mail ops.team+x@example.co.uk bounced",
            "mail <EMAIL> bounced",
        ),
        ("dial [fe80::1%eth0]:8443", "dial <IP>"),
        (
            "dial [fe80::1]:8443 and 2001:db8::7 and ::1",
            "dial <IP> and <IP> and <IP>",
        ),
        ("dial tcp 10.0.0.12:5432: refused", "dial tcp <IP>: refused"),
        ("pod api-7d9f8b6c5-x2k4q failed", "pod api-<POD> failed"),
        (
            "rs payments-api-5c6d7f8b9d scaled",
            "rs payments-api-<RS> scaled",
        ),
        (
            "took 35ms then 1m30s and 2.5s",
            "took <DUR> then <DUR> and <DUR>",
        ),
        ("retry 3 of 12345, 1.5 ratio", "retry <N> of <N>, <N> ratio"),
        ("HTTP 503 after 200 and 600", "HTTP 503 after <N> and <N>"),
        (
            "GET /orders/105 returned 429, status=502 code: 404",
            "GET /orders/<N> returned 429, status=502 code: 404",
        ),
        ("HTTP/1.1 500 at line 105", "HTTP/<N> 500 at line <N>"),
        (
            "limit of 10044Mi, 95% and 10GB",
            "limit of <N>, <N>% and <N>",
        ),
        (
            "pod fluent-bit-x2k4q and use-https",
            "pod fluent-bit-<POD> and use-https",
        ),
        ("commit deadbeef12 and 0x1f", "commit <HEX> and <HEX>"),
        (
            "key \"my-secret\" and 'x' in can't won't",
            "key \"<Q>\" and '<Q>' in can't won't",
        ),
        ("web-0 and web-12", "web-<N> and web-<N>"),
    ] {
        assert_eq!(n(input), want, "{input}");
    }
}

#[test]
fn words_that_look_like_tokens_are_kept() {
    for keep in [
        "defaced cafe",
        "std::fmt and a::b",
        "kube-proxy fluent-bit my-app-backend",
        "error: connection refused",
        "v1.2 beta",
    ] {
        let got = n(keep);
        assert!(
            !got.contains("<HEX>") && !got.contains("<IP>") && !got.contains("<RS>"),
            "{keep} -> {got}"
        );
    }
}

#[test]
fn same_error_same_normal_form() {
    let a = n("GET /api/v1/users/12345 from 10.1.2.3:443 took 35ms req=0a1b2c3d4e");
    let b = n("GET /api/v1/users/99 from 192.168.0.7:8080 took 1m2s req=ffff0000aa");
    assert_eq!(a, b);
}

#[test]
fn messages_rebuild_exactly_from_normal_form_and_values() {
    let norm = Normalizer::new();
    let mut out = Normalized::default();
    for m in [
        "pod api-7d9f8b6c5-x2k4q at 2024-01-02T03:04:05Z took 35ms from 10.0.0.1:80",
        "no volatile parts at all",
        "  spaced   out\ttabs  ",
        "key \"a \\\" quoted\" é ünïcode 42",
        "",
    ] {
        norm.normalize_into(m, &mut out);
        let values = out.values(m);
        assert_eq!(rebuild(&out.text, &values).as_deref(), Some(m), "{m}");
    }
    assert_eq!(rebuild("short", &[5, 3, 1, b'x']), None);
}

/// The normal form as the plain unanchored leftmost-first search finds the tokens: what
/// [`Normalizer::normalize_into`] must agree with, its starts being only a faster way there.
fn by_plain_search(norm: &Normalizer, message: &str) -> (String, Vec<(usize, usize)>) {
    let mut cache = norm.re.create_cache();
    let (mut text, mut tokens) = (String::new(), Vec::new());
    let mut last = 0;
    let mut input = Input::new(message);
    while let Some(m) = norm.re.search_with(&mut cache, &input) {
        input.set_start(m.end());
        let kind = norm.kinds[m.pattern().as_usize()];
        let matched = &message[m.range()];
        let Some((kept, placeholder)) = norm.replacement(kind, matched, &message[..m.start()])
        else {
            continue;
        };
        text.push_str(&message[last..m.start() + kept.len()]);
        tokens.push((m.start() + kept.len(), m.end()));
        text.push_str(placeholder);
        last = m.end();
    }
    text.push_str(&message[last..]);
    (text, tokens)
}

fn agrees(norm: &Normalizer, message: &str) -> Result<(), TestCaseError> {
    let mut out = Normalized::default();
    norm.normalize_into(message, &mut out);
    let got: Vec<(usize, usize)> = out
        .tokens
        .iter()
        .map(|t: &Token| (t.original.start, t.original.end))
        .collect();
    let (text, tokens) = by_plain_search(norm, message);
    prop_assert_eq!(&out.text, &text, "message {:?}", message);
    prop_assert_eq!(got, tokens, "message {:?}", message);
    Ok(())
}

/// Pieces that start or nearly start tokens of every kind, and what lies around them.
const PIECES: &[&str] = &[
    "2024-01-02T03:04:05.123+02:00",
    "2024-01-02 03:04:05Z",
    "12:34:56",
    "12:34:56,7",
    "3F2504E0-4F89-11D3-9A0C-0305E82C3301",
    "deadbeef-cafe-babe-face-feedfacecafe",
    "ops.team+x@example.co.uk",
    "user42@example.com",
    "a@b",
    "@",
    "x@y.z",
    "[fe80::1%eth0]:8443",
    "[::]",
    "[",
    "]",
    "2001:db8::7",
    "::1",
    "::",
    "a::b",
    "fe80::",
    "1:2:3:4:5:6:7:8",
    "abcd:",
    "10.0.0.12:5432",
    "1.2.3.4",
    "999.1.1",
    "api-7d9f8b6c5-x2k4q",
    "payments-api-5c6d7f8b9d",
    "fluent-bit-x2k4q",
    "use-https",
    "kube-proxy",
    "web-0",
    "35ms",
    "1m30s",
    "2.5s",
    "3µs",
    "42",
    "1.5",
    "512Mi",
    "10GB",
    "95%",
    "0x1f",
    "0x",
    "deadbeef12",
    "defaced",
    "cafe",
    "abcdef0",
    "ABCDEF1",
    "\"my-secret\"",
    "'x'",
    "'a b'",
    "\"",
    "'",
    "\\",
    "status",
    "code:",
    "returned",
    "HTTP/1.1",
    "HTTP",
    "503",
    "200",
    "x2024-01-02T03:04:05Z",
    "_12",
    "a_b",
    "é",
    "µ",
    "v1.2",
    "k8s",
    "-",
    ".",
    ":",
    "=",
    "/",
    "_",
    "%",
    "+",
    "a",
    "Z",
    "bcdfg",
    "x2k4q",
    "2024",
    "2024-",
    "1-2",
    "a-1",
    "9-",
    // Digits beyond ASCII, which `\d` takes: Arabic-Indic and full-width.
    "٢٠٢٤-٠١-٠٢ ٠٣:٠٤:٠٥",
    "١",
    "٢٣",
    "２０２４",
    "x1٢٣٤-01-02T03:04:05",
    "a١b",
    "ab1٢٣٤-",
];
const GLUE: &[&str] = &[
    "", " ", "  ", "-", ".", ":", "=", "/", ",", "\"", "'", "@", "_", "x", "1", "é", "١",
];

#[test]
fn starts_agree_with_the_search() {
    let norm = Normalizer::new();
    // Pieces of tokens glued by characters that can join or split them.
    let glued = proptest::collection::vec(
        (
            proptest::sample::select(PIECES),
            proptest::sample::select(GLUE),
        ),
        0..8,
    )
    .prop_map(|parts| {
        parts
            .into_iter()
            .map(|(p, g)| format!("{p}{g}"))
            .collect::<String>()
    });
    // And bytes drawn from the characters tokens are made of.
    let chars = "[0-9a-fA-FxgkzT\\-:.@\"'\\[\\]%+_ µé/=١٢２]{0,40}";
    let mut runner = TestRunner::new(Config {
        cases: 4_000,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&glued, |m| agrees(&norm, &m))
        .unwrap_or_else(|e| panic!("{e}"));
    runner
        .run(&chars, |m| agrees(&norm, &m))
        .unwrap_or_else(|e| panic!("{e}"));
    for m in PIECES.iter().chain(GLUE) {
        agrees(&norm, m).unwrap_or_else(|e| panic!("{e}"));
    }
}
