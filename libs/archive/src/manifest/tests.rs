//! Tests of archive keys and manifests.

use serde_json::json;

use super::{Manifest, hex, object_key, table_prefix};
use crate::config::Target;

fn target() -> Target {
    Target::example(1000)
}

fn key(stamp: &str, pk: &str) -> [String; 2] {
    [stamp.to_owned(), pk.to_owned()]
}

#[test]
fn a_table_s_prefix_is_the_bucket_prefix_then_database_and_table() {
    assert_eq!(table_prefix("", &target()), "audit/public.audit_log");
    assert_eq!(
        table_prefix("/archives/", &target()),
        "archives/audit/public.audit_log"
    );
}

#[test]
fn object_keys_are_partitioned_by_the_first_row_s_day() {
    let first = key("2026-01-31 23:59:58.123+00", "17");
    let last = key("2026-02-01 00:00:01+00", "942");
    let object = object_key(
        "p/audit/public.audit_log",
        &first,
        &last,
        crate::object::Codec::Gzip,
    );
    let (folder, name) = object.rsplit_once('/').unwrap();
    assert_eq!(folder, "p/audit/public.audit_log/year=2026/month=01/day=31");
    assert!(
        name.starts_with("2026-01-31_23_59_58.123_00_17-942_"),
        "{name}"
    );
    assert!(name.ends_with(".jsonl.gz"), "{name}");
    // The same range gives the same key; another range another.
    assert_eq!(
        object,
        object_key(
            "p/audit/public.audit_log",
            &first,
            &last,
            crate::object::Codec::Gzip
        )
    );
    assert_ne!(
        object,
        object_key(
            "p/audit/public.audit_log",
            &first,
            &key("2026-02-01 00:00:01+00", "943"),
            crate::object::Codec::Gzip
        )
    );
}

#[test]
fn odd_keys_stay_in_one_path_segment() {
    let first = key("2026-03-01 00:00:00+00", "a/../b c\u{e9}");
    let object = object_key("p", &first, &first, crate::object::Codec::Gzip);
    assert_eq!(object.matches('/').count(), 4, "{object}");
    assert!(object.split('/').all(|s| s != ".." && s != "."), "{object}");
    let long = key("2026-03-01 00:00:00+00", &"x".repeat(500));
    assert!(object_key("p", &long, &long, crate::object::Codec::Gzip).len() < 250);
}

#[test]
fn manifests_are_json_with_every_key() {
    let manifest = Manifest {
        version: 1,
        database: "audit".to_owned(),
        schema: "public".to_owned(),
        table: "audit_log".to_owned(),
        object: "p/x.jsonl.gz".to_owned(),
        sha256: hex(&[0xab, 0x01]),
        rows: 2,
        bytes: 30,
        cutoff: "2026-01-01 00:00:00+00".to_owned(),
        first: key("2025-12-01 00:00:00+00", "1"),
        last: key("2025-12-02 00:00:00+00", "2"),
        keys: vec!["1".to_owned(), "2".to_owned()],
        columns: Vec::new(),
    };
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["sha256"], "ab01");
    assert_eq!(json["first"], json!(["2025-12-01 00:00:00+00", "1"]));
    assert_eq!(json["keys"], json!(["1", "2"]));
    assert_eq!(serde_json::from_value::<Manifest>(json).unwrap(), manifest);
}

#[test]
fn manifests_and_markers_live_in_the_hidden_state_folder() {
    let table = "p/audit/public.audit_log";
    let object = format!("{table}/year=2026/month=01/day=31/x_1-9_abc.jsonl.gz");
    let manifest = super::manifest_key(table, &object);
    assert_eq!(
        manifest,
        "p/audit/public.audit_log/_manifests/year=2026/month=01/day=31/x_1-9_abc.jsonl.gz.manifest.json"
    );
    assert_eq!(
        super::marker_key(&manifest),
        "p/audit/public.audit_log/_manifests/year=2026/month=01/day=31/x_1-9_abc.jsonl.gz.done"
    );
    // Older archives kept them beside the object; their marker is found the same way.
    assert_eq!(
        super::marker_key(&format!("{object}.manifest.json")),
        format!("{object}.done")
    );
}
