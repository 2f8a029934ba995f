//! Tests: exact counts, first and last seen, samples rebuilt exactly, filters and paging,
//! retention and the eviction bound.

use super::MemoryStore;
use crate::fingerprint::Fingerprint;
use crate::normalize::{Normalized, Normalizer};
use crate::rules::Priority;
use crate::store::{Filter, Occurrence, Page};

struct Line<'a> {
    ts: i64,
    ns: &'a str,
    pod: &'a str,
    message: &'a str,
    priority: Priority,
}

fn record(store: &mut MemoryStore, l: &Line<'_>) -> Fingerprint {
    let mut n = Normalized::default();
    Normalizer::new().normalize_into(l.message, &mut n);
    let workload = crate::fingerprint::workload(l.pod);
    let fingerprint = Fingerprint::new(l.ns, workload, "app", &n.text);
    let values = n.values(l.message);
    store.record(&Occurrence {
        timestamp_ns: l.ts,
        fingerprint,
        namespace: l.ns,
        workload,
        pod: l.pod,
        container: "app",
        rule: "timeout",
        priority: l.priority,
        normalized: &n.text,
        values: &values,
    });
    fingerprint
}

fn line(ts: i64, pod: &str, message: &str) -> Line<'static> {
    Line {
        ts,
        ns: "shop",
        pod: Box::leak(pod.to_owned().into_boxed_str()),
        message: Box::leak(message.to_owned().into_boxed_str()),
        priority: Priority::P3,
    }
}

const ALL: Page = Page {
    page: 1,
    page_size: 100,
};

#[test]
fn counts_are_exact_and_samples_rebuild_the_messages() {
    let mut s = MemoryStore::new(100);
    let mut id = None;
    for i in 0..10 {
        let pod = if i % 2 == 0 {
            "api-7d9f8b6c5-x2k4q"
        } else {
            "api-7d9f8b6c5-bn4kd"
        };
        id = Some(record(
            &mut s,
            &line(
                1_000 + i,
                pod,
                &format!("timeout after {i}ms to 10.0.0.{i}:80"),
            ),
        ));
    }
    let e = s.get(id.unwrap()).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(e.count, 10);
    assert_eq!(e.workload, "api");
    assert_eq!(e.normalized, "timeout after <DUR> to <IP>");
    assert_eq!(e.message, "timeout after 9ms to 10.0.0.9:80");
    assert_eq!(e.pod, "api-7d9f8b6c5-bn4kd");
    let samples: Vec<&str> = e.samples.iter().map(|s| s.message.as_str()).collect();
    assert_eq!(
        samples,
        [
            "timeout after 0ms to 10.0.0.0:80",
            "timeout after 8ms to 10.0.0.8:80",
            "timeout after 9ms to 10.0.0.9:80"
        ]
    );
    assert_eq!(e.first_seen, "1970-01-01T00:00:00.000001Z");
    assert_eq!(e.last_seen, "1970-01-01T00:00:00.000001009Z");
    // A late line moves first seen back and becomes the first sample.
    record(
        &mut s,
        &line(
            500,
            "api-7d9f8b6c5-x2k4q",
            "timeout after 1s to 10.9.9.9:80",
        ),
    );
    let e = s.get(id.unwrap()).unwrap();
    assert_eq!(
        (e.count, e.samples[0].message.as_str()),
        (11, "timeout after 1s to 10.9.9.9:80")
    );
}

#[test]
fn list_filters_sorts_and_pages() {
    let mut s = MemoryStore::new(100);
    for (i, (ns, pod, msg, p)) in [
        (
            "shop",
            "api-7d9f8b6c5-x2k4q",
            "timeout talking to db",
            Priority::P3,
        ),
        ("shop", "web-0", "panic: boom", Priority::P1),
        (
            "auth",
            "login-6b5c4d8f9g-bn4kd",
            "Forbidden user",
            Priority::P2,
        ),
        (
            "auth",
            "login-6b5c4d8f9g-bn4kd",
            "another thing",
            Priority::P4,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        record(
            &mut s,
            &Line {
                ts: i as i64,
                ns,
                pod,
                message: msg,
                priority: p,
            },
        );
    }
    let (all, total) = s.list(&Filter::default(), ALL);
    assert_eq!(total, 4);
    let order: Vec<Priority> = all.iter().map(|e| e.priority).collect();
    assert_eq!(
        order,
        [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
    );
    let only = |f: Filter| {
        s.list(&f, ALL)
            .0
            .into_iter()
            .map(|e| e.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        only(Filter {
            namespace: Some("auth".into()),
            ..Filter::default()
        })
        .len(),
        2
    );
    assert_eq!(
        only(Filter {
            workload: Some("login".into()),
            priority: Some(Priority::P2),
            ..Filter::default()
        }),
        ["Forbidden user"]
    );
    assert_eq!(
        only(Filter {
            pod: Some("web".into()),
            ..Filter::default()
        }),
        ["panic: boom"]
    );
    assert_eq!(
        only(Filter {
            search: Some("TALKING".into()),
            ..Filter::default()
        }),
        ["timeout talking to db"]
    );
    assert_eq!(
        only(Filter {
            since_ns: Some(2),
            ..Filter::default()
        })
        .len(),
        2
    );
    assert_eq!(
        only(Filter {
            rule: Some("none".into()),
            ..Filter::default()
        })
        .len(),
        0
    );
    let (page2, total) = s.list(
        &Filter::default(),
        Page {
            page: 2,
            page_size: 3,
        },
    );
    assert_eq!(
        (page2.len(), total, page2[0].priority),
        (1, 4, Priority::P4)
    );
    let stats = s.stats();
    assert_eq!((stats.unique_errors, stats.occurrences), (4, 4));
    assert_eq!(stats.by_namespace["auth"], 2);
}

#[test]
fn retention_and_the_bound_evict_the_least_recently_seen() {
    let mut s = MemoryStore::new(20);
    for i in 0..20 {
        record(
            &mut s,
            &line(
                i,
                "api-0",
                &format!("error kind {}", char::from(b'a' + i as u8)),
            ),
        );
    }
    assert_eq!(s.len(), 20);
    // The 21st error evicts the two (a tenth) seen least recently: kinds a and b.
    record(&mut s, &line(100, "api-0", "error kind z"));
    assert_eq!((s.len(), s.evicted()), (19, 2));
    let (left, _) = s.list(
        &Filter {
            search: Some("kind a".into()),
            ..Filter::default()
        },
        ALL,
    );
    assert!(left.is_empty());
    assert_eq!(s.purge(10), 8);
    assert_eq!(s.len(), 11);
}

#[test]
fn purge_rebuilds_the_names_once_most_are_unused() {
    let mut s = MemoryStore::new(10_000);
    for i in 0..100 {
        record(
            &mut s,
            &line(i, &format!("pod-{i}-x2k4q"), &format!("error kind {i}")),
        );
    }
    let keep = record(
        &mut s,
        &line(1_000, "api-7d9f8b6c5-x2k4q", "timeout after 5ms"),
    );
    let names = s.names.names.len();
    assert_eq!(s.purge(500), 100);
    assert!(
        s.names.names.len() < names / 10,
        "{} names left",
        s.names.names.len()
    );
    let e = s.get(keep).unwrap();
    assert_eq!(
        (e.pod.as_str(), e.message.as_str()),
        ("api-7d9f8b6c5-x2k4q", "timeout after 5ms")
    );
    assert_eq!((e.namespace.as_str(), e.rule.as_str()), ("shop", "timeout"));
}
