//! Tests against the fake Loki: every line once across page borders with equal timestamps,
//! late lines inside the overlap, restarts from a saved cursor, failures, and the headers.

use std::collections::HashMap;
use std::time::Duration;

use bulwark_test_util::loki::FakeLoki;

use super::*;
use crate::client::{Auth, Settings};

const QUERY: &str = r#"{namespace=~".+"}"#;

fn client(loki: &FakeLoki) -> Client {
    Client::new(&Settings {
        url: loki.url(),
        tenant_id: None,
        headers: Vec::new(),
        auth: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

/// Reads `[cursor.from, end)` and returns how often each (ts, pod, line) was delivered.
async fn window(
    c: &Client,
    cursor: &mut Cursor,
    end: i64,
    overlap: i64,
    limit: u32,
    seen: &mut HashMap<(i64, String, String), u32>,
) -> Result<WindowStats, PageError> {
    read_window(
        c,
        Window {
            query: QUERY,
            end_ns: end,
            overlap_ns: overlap,
            limit,
        },
        cursor,
        |page| {
            for (e, _) in page {
                let pod = e.labels.get("pod").unwrap_or_default().to_owned();
                *seen.entry((e.ts_ns, pod, e.line.clone())).or_default() += 1;
            }
        },
        async |_| Ok(()),
    )
    .await
}

fn push(loki: &FakeLoki, pod: &str, ts: i64, line: &str) {
    loki.push(&[("namespace", "shop"), ("pod", pod)], ts, line);
}

#[tokio::test]
async fn equal_timestamps_across_page_borders_are_read_once() {
    let loki = FakeLoki::start().unwrap();
    // Seven lines at one timestamp in two streams (one line in both), around other lines.
    for i in 0..4 {
        push(&loki, "a", 1_000, &format!("tie {i}"));
        push(&loki, "b", 1_000, &format!("tie {i}"));
    }
    push(&loki, "a", 999, "before");
    for i in 0..10 {
        push(&loki, "a", 1_001 + i, &format!("after {i}"));
    }
    let c = client(&loki);
    let mut cursor = Cursor::new(0);
    let mut seen = HashMap::new();
    let stats = window(&c, &mut cursor, 2_000, 0, 3, &mut seen)
        .await
        .unwrap();
    assert_eq!(seen.len(), 19);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
    assert_eq!(stats.delivered, 19);
    // The page full of one timestamp was read again with Loki's largest limit.
    assert_eq!(stats.pages, 3, "{stats:?}");
    assert!(
        loki.requests()
            .iter()
            .any(|r| r.params["limit"] == MAX_LIMIT.to_string())
    );
    // Every request stayed within Loki's limit and read forward.
    for r in loki.requests() {
        assert_eq!(r.params["direction"], "forward");
        assert!(r.params["limit"].parse::<u32>().unwrap() <= MAX_LIMIT);
    }
}

#[tokio::test]
async fn late_lines_inside_the_overlap_are_read_once_and_older_ones_not_at_all() {
    let loki = FakeLoki::start().unwrap();
    for ts in [100, 150, 199, 200, 250, 299] {
        push(&loki, "a", ts, &format!("line {ts}"));
    }
    let c = client(&loki);
    let mut cursor = Cursor::new(100);
    let mut seen = HashMap::new();
    window(&c, &mut cursor, 300, 100, 2, &mut seen)
        .await
        .unwrap();
    assert_eq!(cursor.from_ns, 200);
    assert_eq!(seen.len(), 6);
    // Ingested late: one inside the overlap, one before it; and a new one.
    push(&loki, "a", 260, "late inside");
    push(&loki, "a", 150, "late outside");
    push(&loki, "a", 350, "new");
    window(&c, &mut cursor, 400, 100, 2, &mut seen)
        .await
        .unwrap();
    assert_eq!(seen.get(&(260, "a".into(), "late inside".into())), Some(&1));
    assert_eq!(seen.get(&(150, "a".into(), "late outside".into())), None);
    assert_eq!(seen.len(), 8);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
}

#[tokio::test]
async fn a_cursor_saved_mid_window_resumes_without_loss_or_repeat() {
    let loki = FakeLoki::start().unwrap();
    for i in 0..40 {
        push(
            &loki,
            if i % 3 == 0 { "a" } else { "b" },
            1_000 + i / 4,
            &format!("line {i}"),
        );
    }
    let c = client(&loki);
    let mut cursor = Cursor::new(0);
    let mut counted = HashMap::new();
    let mut saved = String::new();
    let mut pages = 0;
    // The first run counts lines and saves the cursor after each page, then "crashes" after
    // the third page: its counts up to the last save survive, as in the store.
    let pending = std::cell::RefCell::new(Vec::new());
    let w = Window {
        query: QUERY,
        end_ns: 2_000,
        overlap_ns: 0,
        limit: 5,
    };
    let outcome = read_window(
        &c,
        w,
        &mut cursor,
        |page| {
            let lines = page.iter().map(|(e, _)| (e.ts_ns, e.line.clone()));
            pending.borrow_mut().extend(lines);
        },
        async |cur| {
            pages += 1;
            if pages <= 3 {
                saved = serde_json::to_string(cur).unwrap();
                for k in pending.borrow_mut().drain(..) {
                    *counted.entry(k).or_insert(0) += 1;
                }
            }
            Ok(())
        },
    )
    .await;
    assert!(outcome.is_ok());
    assert!(counted.len() < 40, "the crash must come mid-window");
    let mut resumed: Cursor = serde_json::from_str(&saved).unwrap();
    read_window(
        &c,
        w,
        &mut resumed,
        |page| {
            for (e, _) in page {
                *counted.entry((e.ts_ns, e.line.clone())).or_insert(0) += 1;
            }
        },
        async |_| Ok(()),
    )
    .await
    .unwrap();
    assert_eq!(counted.len(), 40);
    assert!(counted.values().all(|&n| n == 1), "{counted:?}");
}

#[tokio::test]
async fn failures_are_reported_and_a_retry_completes_the_window() {
    let loki = FakeLoki::start().unwrap();
    for i in 0..10 {
        push(&loki, "a", 100 + i, &format!("line {i}"));
    }
    let c = client(&loki);
    let mut cursor = Cursor::new(0);
    let mut seen = HashMap::new();
    loki.fail_next(&[429]);
    let e = window(&c, &mut cursor, 1_000, 0, 3, &mut seen)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PageError::Loki(l) if l.is_transient() && l.reason() == "throttled"),
        "{e}"
    );
    loki.fail_next(&[0, 503]);
    let e = window(&c, &mut cursor, 1_000, 0, 3, &mut seen)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PageError::Loki(l) if l.reason() == "server_error"),
        "{e}"
    );
    window(&c, &mut cursor, 1_000, 0, 3, &mut seen)
        .await
        .unwrap();
    assert_eq!(seen.len(), 10);
    assert!(seen.values().all(|&n| n == 1));
    loki.fail_next(&[400]);
    let e = window(&c, &mut Cursor::new(0), 1_000, 0, 3, &mut seen)
        .await
        .unwrap_err();
    assert!(matches!(&e, PageError::Loki(l) if !l.is_transient()), "{e}");
}

#[tokio::test]
async fn more_lines_at_one_timestamp_than_loki_returns_stop_the_poll() {
    let loki = FakeLoki::start().unwrap();
    for i in 0..=MAX_LIMIT {
        push(&loki, "a", 7, &format!("line {i}"));
    }
    let c = client(&loki);
    let e = window(&c, &mut Cursor::new(0), 100, 0, 100, &mut HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(e, PageError::Saturated { ts_ns: 7 });
}

#[tokio::test]
async fn tenant_headers_and_credentials_are_sent() {
    let loki = FakeLoki::start().unwrap();
    for auth in [
        Auth::Basic {
            username: "grafana".into(),
            password: bulwark_config::Secret::new("s3cret"),
        },
        Auth::Bearer(bulwark_config::Secret::new("tok")),
    ] {
        let c = Client::new(&Settings {
            url: format!("{}/", loki.url()),
            tenant_id: Some("prod|staging".into()),
            headers: vec![("X-Extra".into(), "1".into())],
            auth: Some(auth),
            timeout: Duration::from_secs(5),
        })
        .unwrap();
        c.query_range(QUERY, 0, 1, 10, Direction::Forward)
            .await
            .unwrap();
    }
    let r = loki.requests();
    assert_eq!(r[0].headers["x-scope-orgid"], "prod|staging");
    assert_eq!(r[0].headers["x-extra"], "1");
    // base64("grafana:s3cret")
    assert_eq!(r[0].headers["authorization"], "Basic Z3JhZmFuYTpzM2NyZXQ=");
    assert_eq!(r[1].headers["authorization"], "Bearer tok");
    let e = Client::new(&Settings {
        url: loki.url(),
        tenant_id: None,
        headers: vec![("Bad Header".into(), "1".into())],
        auth: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap_err();
    assert!(e.to_string().contains("Bad Header"), "{e}");
}

#[tokio::test]
async fn an_unreachable_loki_is_a_transient_error() {
    let loki = FakeLoki::start().unwrap();
    let c = client(&loki);
    loki.set_down(true);
    assert_eq!(c.ready().await.unwrap_err().reason(), "server_error");
    loki.set_down(false);
    c.ready().await.unwrap();
    let url = loki.url();
    drop(loki);
    let c = Client::new(&Settings {
        url,
        tenant_id: None,
        headers: Vec::new(),
        auth: None,
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let e = c.ready().await.unwrap_err();
    assert!(e.is_transient() && e.reason() == "connect", "{e}");
}

#[tokio::test]
async fn a_page_that_cannot_be_saved_is_read_again() {
    let loki = FakeLoki::start().unwrap();
    for i in 0..6 {
        push(&loki, "a", 100 + i, &format!("line {i}"));
    }
    let c = client(&loki);
    let mut cursor = Cursor::new(0);
    let w = Window {
        query: QUERY,
        end_ns: 1_000,
        overlap_ns: 0,
        limit: 4,
    };
    let mut kept = Vec::new();
    let pending = std::cell::RefCell::new(Vec::new());
    let mut fail = true;
    for _ in 0..2 {
        let _ = read_window(
            &c,
            w,
            &mut cursor,
            |page| {
                let lines = page.iter().map(|(e, _)| e.line.clone());
                pending.borrow_mut().extend(lines);
            },
            async |_| {
                let page: Vec<String> = pending.borrow_mut().drain(..).collect();
                if std::mem::take(&mut fail) {
                    return Err("store down".into());
                }
                kept.extend(page);
                Ok(())
            },
        )
        .await;
    }
    kept.sort();
    let want: Vec<String> = (0..6).map(|i| format!("line {i}")).collect();
    assert_eq!(kept, want);
}
