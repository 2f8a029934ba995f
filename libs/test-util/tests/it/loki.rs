//! The fake Loki's `query_range` semantics, read with curl (an independent client): start
//! inclusive, end exclusive, the limit across streams from either end, the time formats, the
//! selector and line filter, and the refusals.

use std::process::Command;

use bulwark_test_util::loki::FakeLoki;
use serde_json::Value;

/// `(ts, pod, line)` of every value in the answer, streams merged in timestamp order.
fn query(loki: &FakeLoki, params: &[(&str, &str)]) -> Result<Vec<(i64, String, String)>, String> {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-G", "-w", "\n%{http_code}"]);
    for (k, v) in params {
        cmd.arg("--data-urlencode").arg(format!("{k}={v}"));
    }
    let out = cmd
        .arg(format!("{}/loki/api/v1/query_range", loki.url()))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    if code != "200" {
        return Err(format!("{code} {body}"));
    }
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["data"]["resultType"], "streams");
    let mut out = Vec::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let pod = s["stream"]["pod"].as_str().unwrap().to_owned();
        for e in s["values"].as_array().unwrap() {
            let ts: i64 = e[0].as_str().unwrap().parse().unwrap();
            out.push((ts, pod.clone(), e[1].as_str().unwrap().to_owned()));
        }
    }
    out.sort();
    Ok(out)
}

fn fixture() -> FakeLoki {
    let loki = FakeLoki::start().unwrap();
    for (pod, s, line) in [
        ("a", 1, "error one"),
        ("b", 1, "error one"),
        ("a", 2, "info two"),
        ("b", 3, "error three"),
        ("a", 4, "error four"),
    ] {
        loki.push(&[("namespace", "shop"), ("pod", pod)], at(s), line);
    }
    loki.push(
        &[("namespace", "other"), ("pod", "c")],
        at(2) + 500_000_000,
        "error other",
    );
    loki
}

/// 2025-12-05T00:00:00Z plus `s` seconds, in nanoseconds.
fn at(s: i64) -> i64 {
    (1_764_892_800 + s) * 1_000_000_000
}

const ALL: &str = r#"{namespace="shop"}"#;

#[test]
fn start_is_inclusive_and_end_exclusive_in_every_time_format() {
    let loki = fixture();
    let (ns1, ns4) = (at(1).to_string(), at(4).to_string());
    for (start, end) in [
        // Nanoseconds; seconds (up to 10 digits); float seconds, whose fraction Loki rounds to
        // milliseconds (so the end below is 4 s, excluded); RFC 3339.
        (ns1.as_str(), ns4.as_str()),
        ("1764892801", "1764892804"),
        ("1764892801.0", "1764892803.9999"),
        ("2025-12-05T00:00:01Z", "2025-12-05T00:00:04Z"),
    ] {
        let got = query(
            &loki,
            &[
                ("query", ALL),
                ("start", start),
                ("end", end),
                ("limit", "100"),
            ],
        )
        .unwrap();
        let ts: Vec<i64> = got
            .iter()
            .map(|e| e.0 / 1_000_000_000 - 1_764_892_800)
            .collect();
        assert_eq!(ts, [1, 1, 2, 3], "{start}..{end}");
    }
}

#[test]
fn the_limit_counts_across_streams_from_the_direction_end() {
    let loki = fixture();
    let end = at(10).to_string();
    let base = [
        ("query", ALL),
        ("start", "1764892800"),
        ("end", end.as_str()),
        ("limit", "2"),
    ];
    let forward = query(&loki, &[&base[..], &[("direction", "forward")]].concat()).unwrap();
    assert_eq!(
        forward.iter().map(|e| e.0).collect::<Vec<_>>(),
        [at(1), at(1)]
    );
    // Backward is the default: the newest lines.
    let backward = query(&loki, &base).unwrap();
    assert_eq!(
        backward.iter().map(|e| e.0).collect::<Vec<_>>(),
        [at(3), at(4)]
    );
}

#[test]
fn selectors_filters_and_refusals() {
    let loki = fixture();
    let end = at(10).to_string();
    let q = |logql: &str| {
        query(
            &loki,
            &[
                ("query", logql),
                ("start", "1764892800"),
                ("end", end.as_str()),
                ("limit", "100"),
            ],
        )
    };
    assert_eq!(q(r#"{namespace=~".+"} |~ "(?i)ERROR""#).unwrap().len(), 5);
    assert_eq!(
        q(r#"{namespace="shop", pod!="a"} |= "error""#)
            .unwrap()
            .len(),
        2
    );
    assert_eq!(q(r#"{namespace!~"sh.*"}"#).unwrap().len(), 1);
    let e = query(&loki, &[("query", ALL), ("limit", "5001")]).unwrap_err();
    assert!(
        e.starts_with("400") && e.contains("max entries limit"),
        "{e}"
    );
    let e = q("sum(rate({a=\"b\"}[1m]))").unwrap_err();
    assert!(e.starts_with("400"), "{e}");
}
