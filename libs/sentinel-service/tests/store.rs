//! One suite for both stores: the memory store and PostgreSQL (a throwaway server) must give
//! the same answers; PostgreSQL must also count a line once when two replicas record it, which
//! psql confirms from outside.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use bulwark_loki::pager::line_id;
use bulwark_loki::{Cursor, Entry};
use bulwark_sentinel::audit::{Entry as AuditEntry, Filter as AuditFilter, Outcome};
use bulwark_sentinel::detect::{Detector, Stream};
use bulwark_sentinel::fingerprint::Fingerprint;
use bulwark_sentinel::model::Labels;
use bulwark_sentinel::remediation::{SwitchChange, Switches};
use bulwark_sentinel::rules::{Priority, RuleSet};
use bulwark_sentinel::store::{Filter, Page};
use bulwark_sentinel_service::store::postgres::PgStore;
use bulwark_sentinel_service::store::{Line, Memory, Store};
use bulwark_test_util::postgres::TestPostgres;

const ALL: Page = Page {
    page: 1,
    page_size: 100,
};

fn lines(specs: &[(&str, i64, &str)]) -> Vec<Line> {
    let detector = Detector::new(RuleSet::defaults());
    let mut ws = detector.workspace();
    specs
        .iter()
        .map(|(pod, ts, text)| {
            let labels = Arc::new(Labels::new([
                ("namespace", "shop"),
                ("pod", *pod),
                ("container", "app"),
            ]));
            let entry = Entry {
                ts_ns: *ts,
                labels: Arc::clone(&labels),
                line: (*text).to_owned(),
            };
            let stream = Stream::new(&labels);
            let d = detector.detect(&mut ws, &stream, text);
            Line {
                line_id: line_id(&entry),
                timestamp_ns: *ts,
                fingerprint: d.fingerprint,
                namespace: "shop".into(),
                workload: stream.workload.into(),
                pod: (*pod).into(),
                container: "app".into(),
                rule: d.rule_name().into(),
                priority: d.priority(),
                normalized: d.normalized.text.clone(),
                values: d.values(),
            }
        })
        .collect()
}

async fn suite(store: &dyn Store) {
    let page = lines(&[
        (
            "api-7d9f8b6c5-x2k4q",
            1_000,
            "dial tcp 10.0.0.1:5432: connect: connection refused",
        ),
        (
            "api-7d9f8b6c5-bn4kd",
            3_000,
            "dial tcp 10.0.0.3:5432: connect: connection refused",
        ),
        (
            "api-7d9f8b6c5-x2k4q",
            2_000,
            "dial tcp 10.0.0.2:5432: connect: connection refused",
        ),
        (
            "web-0",
            4_000,
            "panic: runtime error: index out of range [3] with length 3",
        ),
    ]);
    let mut cursor = Cursor::new(500);
    for l in &page {
        cursor.admit(&Entry {
            ts_ns: l.timestamp_ns,
            labels: Arc::new(Labels::default()),
            line: l.normalized.clone(),
        });
    }
    assert_eq!(store.record(&page[..2], "q", &cursor).await.unwrap(), 2);
    assert_eq!(store.record(&page[2..], "q", &cursor).await.unwrap(), 2);
    assert_eq!(store.cursor("q").await.unwrap(), Some(cursor));
    assert_eq!(store.cursor("other").await.unwrap(), None);

    let (all, total) = store.list(&Filter::default(), ALL).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!(all[0].priority, Priority::P1);
    let refused = &all[1];
    assert_eq!((refused.count, refused.workload.as_str()), (3, "api"));
    assert_eq!(refused.rule, "connection-refused");
    assert_eq!(
        refused.normalized,
        "dial tcp <IP>: connect: connection refused"
    );
    assert_eq!(
        refused.message,
        "dial tcp 10.0.0.3:5432: connect: connection refused"
    );
    assert_eq!(refused.pod, "api-7d9f8b6c5-bn4kd");
    assert_eq!(refused.first_seen, "1970-01-01T00:00:00.000001Z");
    assert_eq!(refused.last_seen, "1970-01-01T00:00:00.000003Z");
    let samples: Vec<&str> = refused.samples.iter().map(|s| s.message.as_str()).collect();
    assert_eq!(
        samples,
        [
            "dial tcp 10.0.0.1:5432: connect: connection refused",
            "dial tcp 10.0.0.2:5432: connect: connection refused",
            "dial tcp 10.0.0.3:5432: connect: connection refused",
        ]
    );
    assert_eq!(store.get(refused.id).await.unwrap().as_ref(), Some(refused));

    let only = |f: Filter| async move { store.list(&f, ALL).await.unwrap().0.len() };
    assert_eq!(
        only(Filter {
            workload: Some("api".into()),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(Filter {
            pod: Some("bn4kd".into()),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(Filter {
            priority: Some(Priority::P1),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(Filter {
            rule: Some("panic".into()),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(Filter {
            since_ns: Some(3_500),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(Filter {
            search: Some("INDEX OUT".into()),
            ..Filter::default()
        })
        .await,
        1
    );
    assert_eq!(
        only(Filter {
            namespace: Some("auth".into()),
            ..Filter::default()
        })
        .await,
        0
    );
    let (second, total) = store
        .list(
            &Filter::default(),
            Page {
                page: 2,
                page_size: 1,
            },
        )
        .await
        .unwrap();
    assert_eq!((second.len(), total, second[0].id), (1, 2, refused.id));

    let stats = store.stats().await.unwrap();
    assert_eq!((stats.unique_errors, stats.occurrences), (2, 4));
    assert_eq!(stats.by_priority[&Priority::P3], 3);
    assert_eq!(stats.by_namespace["shop"], 4);
    assert_eq!(store.size().await.unwrap().0, 2);

    assert_eq!(store.purge(3_500).await.unwrap(), 1);
    assert_eq!(store.list(&Filter::default(), ALL).await.unwrap().1, 1);

    audit_suite(store).await;
}

fn entry(at_ns: i64, ns: &str, outcome: Outcome, fingerprint: Option<u64>) -> AuditEntry {
    AuditEntry {
        id: 0,
        at_ns,
        fingerprint: fingerprint.map(Fingerprint),
        rule: "oom".into(),
        namespace: ns.into(),
        pod: "api-7f9c-x2".into(),
        owner: "Deployment/api".into(),
        action: "restart-pod".into(),
        outcome,
        reason: (outcome == Outcome::Refused).then(|| "global_budget".into()),
        detail: "deleted pod api-7f9c-x2 \"quoted\" <b>".into(),
        replica: "sentinel-0".into(),
        hold_until_ns: Some(at_ns + 300),
    }
}

/// The audit log and the switches: ids increase, newest first, filters, paging, entries read
/// back whole, the retention applies, the entries that shape the remediation state, and the
/// switches: unset at first, each change setting only what it names, concurrent changes to
/// different switches both kept.
async fn audit_suite(store: &dyn Store) {
    assert_eq!(store.switches().await.unwrap(), None);
    let defaults = Switches {
        enabled: true,
        dry_run: false,
    };
    let off = SwitchChange {
        enabled: Some(false),
        dry_run: None,
    };
    let dry = SwitchChange {
        enabled: None,
        dry_run: Some(true),
    };
    assert_eq!(
        store.set_switches(off, defaults).await.unwrap(),
        Switches {
            enabled: false,
            dry_run: false
        }
    );
    // Two operators at once: an emergency stop and a dry-run; neither undoes the other.
    let (a, b) = tokio::join!(
        store.set_switches(off, defaults),
        store.set_switches(dry, defaults)
    );
    a.unwrap();
    b.unwrap();
    let on = Switches {
        enabled: false,
        dry_run: true,
    };
    assert_eq!(store.switches().await.unwrap(), Some(on));

    let written = [
        entry(4_000, "shop", Outcome::Success, Some(7)),
        entry(4_001, "shop", Outcome::Refused, Some(7)),
        entry(4_002, "web", Outcome::DryRun, Some(u64::MAX)),
    ];
    let mut ids = Vec::new();
    for e in &written {
        ids.push(store.audit(e).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let (all, total) = store
        .audit_log(&AuditFilter::default(), 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 3);
    let mut newest = written[2].clone();
    newest.id = ids[2];
    assert_eq!(all[0], newest, "read back whole, newest first");
    let by_error = AuditFilter {
        fingerprint: Some(Fingerprint(7)),
        ..AuditFilter::default()
    };
    assert_eq!(store.audit_log(&by_error, 0, 10).await.unwrap().1, 2);
    let refused = AuditFilter {
        outcome: Some(Outcome::Refused),
        namespace: Some("shop".into()),
        ..AuditFilter::default()
    };
    let (r, _) = store.audit_log(&refused, 0, 10).await.unwrap();
    assert_eq!(r[0].reason.as_deref(), Some("global_budget"));
    let after = AuditFilter {
        after_id: Some(ids[0]),
        ..AuditFilter::default()
    };
    assert_eq!(store.audit_log(&after, 0, 10).await.unwrap().1, 2);
    let (second, _) = store
        .audit_log(&AuditFilter::default(), 1, 1)
        .await
        .unwrap();
    assert_eq!(second[0].id, ids[1], "offset and limit");
    // What a rebuild reads at 4_100: holds lasting past it and the hour's attempts.
    let relevant = AuditFilter {
        relevant_at_ns: Some(4_100),
        ..AuditFilter::default()
    };
    let (kept, _) = store.audit_log(&relevant, 0, 10).await.unwrap();
    assert_eq!(
        kept.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]],
        "every hold lasts to at_ns + 300"
    );
    let later = AuditFilter {
        relevant_at_ns: Some(4_350),
        ..AuditFilter::default()
    };
    let (kept, _) = store.audit_log(&later, 0, 10).await.unwrap();
    assert_eq!(
        kept.iter().map(|e| e.id).collect::<Vec<_>>(),
        [ids[0]],
        "the success still counts in the hour; every hold is over"
    );
    store.purge(4_001).await.unwrap();
    assert_eq!(
        store
            .audit_log(&AuditFilter::default(), 0, 10)
            .await
            .unwrap()
            .1,
        2
    );
}

/// A store made with `max_errors` 10, after 15 errors recorded one page at a time, oldest
/// first, and a purge that forgets nothing by age: the newest are kept, the oldest evicted.
async fn bound_suite(store: &dyn Store) {
    let specs: Vec<(String, i64, &str)> = (b'a'..=b'o')
        .enumerate()
        .map(|(i, c)| {
            let pod = format!("svc-{}-0", char::from(c));
            (pod, 1_000 * (i as i64 + 1), "disk quota exceeded")
        })
        .collect();
    let specs: Vec<(&str, i64, &str)> = specs.iter().map(|(p, t, m)| (&**p, *t, *m)).collect();
    let all = lines(&specs);
    let workloads: std::collections::HashSet<_> = all.iter().map(|l| l.fingerprint).collect();
    assert_eq!(workloads.len(), 15, "one error per workload");
    let cursor = Cursor::new(0);
    for line in &all {
        store
            .record(std::slice::from_ref(line), "bound", &cursor)
            .await
            .unwrap();
    }
    assert_eq!(
        store.purge(0).await.unwrap(),
        0,
        "nothing is past the retention"
    );
    let (held, evicted) = store.size().await.unwrap();
    assert!((9..=10).contains(&held), "{held} errors held");
    assert_eq!(evicted, 15 - held as u64);
    let (listed, total) = store.list(&Filter::default(), ALL).await.unwrap();
    assert_eq!(total, held);
    let kept: Vec<&str> = listed.iter().map(|e| e.workload.as_str()).collect();
    assert!(kept.contains(&"svc-o"), "the newest is kept: {kept:?}");
    assert!(!kept.contains(&"svc-a"), "the oldest is evicted: {kept:?}");
    for w in &kept {
        assert!(
            w.as_bytes()[4] >= b'f',
            "only the least recently seen go: {kept:?}"
        );
    }
}

#[tokio::test]
async fn the_memory_store_passes_the_suite() {
    suite(&Memory::new(100)).await;
    bound_suite(&Memory::new(10)).await;
}

#[tokio::test]
async fn postgres_passes_the_suite_and_counts_a_line_once_across_replicas() {
    let pg = TestPostgres::start().unwrap();
    pg.create_database("sentinel").unwrap();
    let url = pg.url("sentinel");
    let store = PgStore::connect(&url, None, 100).await.unwrap();
    suite(&store).await;
    pg.create_database("bounded").unwrap();
    bound_suite(
        &PgStore::connect(&pg.url("bounded"), None, 10)
            .await
            .unwrap(),
    )
    .await;
    let kept = pg
        .psql(
            "bounded",
            "SELECT string_agg(workload, ' ' ORDER BY workload) FROM sentinel_errors",
        )
        .unwrap();
    assert_eq!(
        kept.trim(),
        "svc-g svc-h svc-i svc-j svc-k svc-l svc-m svc-n svc-o",
        "as psql sees it: 15 errors over a bound of 10 leave the newest 9"
    );

    // Two replicas (two pools; migrations already applied are skipped) record the same
    // 200 lines at once, in pages of different sizes.
    let a = PgStore::connect(&url, None, 100).await.unwrap();
    let b = PgStore::connect(&url, None, 100).await.unwrap();
    let specs: Vec<(String, i64, String)> = (0..200)
        .map(|i| {
            (
                "web-1".to_owned(),
                10_000 + i,
                format!("timeout after {i}ms calling db"),
            )
        })
        .collect();
    let specs: Vec<(&str, i64, &str)> = specs
        .iter()
        .map(|(p, t, l)| (p.as_str(), *t, l.as_str()))
        .collect();
    let all = lines(&specs);
    let cursor = Cursor::new(0);
    let (ra, rb) = tokio::join!(
        async {
            let mut n = 0;
            for chunk in all.chunks(7) {
                n += a.record(chunk, "q", &cursor).await.unwrap();
            }
            n
        },
        async {
            let mut n = 0;
            for chunk in all.chunks(13) {
                n += b.record(chunk, "q", &cursor).await.unwrap();
            }
            n
        }
    );
    assert_eq!(ra + rb, 200, "each line is new to exactly one replica");
    let counted = pg
        .psql(
            "sentinel",
            "SELECT count FROM sentinel_errors WHERE normalized = 'timeout after <DUR> calling db'",
        )
        .unwrap();
    assert_eq!(counted.trim(), "200");
    // The audit log, as an operator's psql sees it.
    let audit = pg
        .psql(
            "sentinel",
            "SELECT outcome || ' ' || owner || ' ' || to_hex(fingerprint) FROM sentinel_audit ORDER BY id",
        )
        .unwrap();
    assert_eq!(
        audit.trim(),
        "refused Deployment/api 7\ndry_run Deployment/api ffffffffffffffff"
    );
    let switches = pg
        .psql("sentinel", "SELECT enabled, dry_run FROM sentinel_settings")
        .unwrap();
    assert_eq!(switches.trim(), "f|t");
    let lines = pg
        .psql("sentinel", "SELECT count(*) FROM sentinel_lines")
        .unwrap();
    assert_eq!(lines.trim(), "204");
    let schema = pg
        .psql(
            "sentinel",
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM sentinel_schema",
        )
        .unwrap();
    assert_eq!(schema.trim(), "1,2");
}
