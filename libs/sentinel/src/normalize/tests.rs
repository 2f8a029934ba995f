//! Tests: each kind of volatile value, what is kept, and that messages rebuild exactly.

use super::{Normalized, Normalizer, rebuild};

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
