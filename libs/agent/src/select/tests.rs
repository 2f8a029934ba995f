//! Tests of record selection: the batched plan, titles and UIDs, fields, notation, files and folders.

#![allow(clippy::unwrap_used)]

use bulwark_sidecar_spec::{
    Auth, FileMode, Folder, FolderRef, Format, Index, RecordRef, Secret, Selector, SidecarSpec,
    Source,
};
use serde_json::{Value, json};

use super::*;

const DB: &str = "AAAAAAAAAAAAAAAAAAAAAA";
const DB2: &str = "BBBBBBBBBBBBBBBBBBBBBB";
const API: &str = "CCCCCCCCCCCCCCCCCCCCCC";
const PROD: &str = "FFFFFFFFFFFFFFFFFFFFF1";
const PROD_DB: &str = "FFFFFFFFFFFFFFFFFFFFF2";

fn field(t: &str, label: Option<&str>, value: Value) -> Field {
    Field {
        field_type: t.to_owned(),
        label: label.map(str::to_owned),
        value: value.as_array().unwrap().clone(),
    }
}

fn records() -> Vec<Record> {
    vec![
        Record {
            uid: DB.to_owned(),
            title: "db".to_owned(),
            record_type: "login".to_owned(),
            folder_uid: Some(PROD_DB.to_owned()),
            notes: "rotated monthly".to_owned(),
            fields: vec![
                field("login", None, json!(["app"])),
                field("password", None, json!(["s3cret"])),
                field("name", None, json!([{"first": "Ada", "last": "L"}])),
            ],
            custom: vec![
                field("text", Some("host"), json!(["db.internal"])),
                field("text", Some("list"), json!(["a", "b"])),
                field("text", None, json!([])),
                field("text", None, json!(["x"])),
            ],
            files: vec![FileInfo {
                uid: "file-uid-0000000000000".to_owned(),
                name: "ca.pem".to_owned(),
                title: "CA bundle".to_owned(),
            }],
        },
        Record {
            uid: DB2.to_owned(),
            title: "db".to_owned(),
            record_type: "login".to_owned(),
            folder_uid: Some(PROD.to_owned()),
            ..Record::default()
        },
        Record {
            uid: API.to_owned(),
            title: "API keys".to_owned(),
            record_type: "login".to_owned(),
            folder_uid: Some(PROD_DB.to_owned()),
            fields: vec![field("password", None, json!(["k"]))],
            ..Record::default()
        },
    ]
}

fn folders() -> Vec<FolderInfo> {
    vec![
        FolderInfo {
            uid: PROD.to_owned(),
            parent_uid: None,
            name: "Production".to_owned(),
        },
        FolderInfo {
            uid: PROD_DB.to_owned(),
            parent_uid: Some(PROD.to_owned()),
            name: "Databases".to_owned(),
        },
    ]
}

fn spec(secrets: Vec<Secret>, folders: Vec<Folder>) -> SidecarSpec {
    SidecarSpec {
        version: 1,
        mount_path: "/keeper/secrets".to_owned(),
        auth: Auth::Secret,
        secrets,
        folders,
        refresh_interval: "5m".parse().unwrap(),
        fail_on_error: true,
        strict_lookup: false,
        file_mode: FileMode::OWNER_READ,
        signal: None,
        ca_cert_file: None,
        health_port: 9102,
    }
}

fn record_ref(name: &str, folder: &[&str]) -> RecordRef {
    RecordRef {
        folder: folder.iter().map(|s| (*s).to_owned()).collect(),
        name: name.to_owned(),
    }
}

fn secret(path: &str, source: Source) -> Secret {
    Secret {
        path: path.to_owned(),
        source,
        format: Format::Json,
        template: None,
        env_prefix: None,
        mode: None,
    }
}

fn whole(name: &str) -> Source {
    Source::Record {
        record: record_ref(name, &[]),
        fields: Vec::new(),
    }
}

fn notation(name: &str, selector: Selector) -> Source {
    Source::Notation {
        notation: String::new(),
        record: record_ref(name, &[]),
        selector,
    }
}

fn field_sel(name: &str, index: Option<Index>, property: Option<&str>) -> Selector {
    Selector::Field {
        name: name.to_owned(),
        index,
        property: property.map(str::to_owned),
    }
}

fn one(spec: &SidecarSpec) -> Result<Output, Error> {
    select(spec, &records(), &folders()).map(|mut o| o.remove(0))
}

#[test]
fn plan_batches_uids_and_asks_for_everything_when_titles_are_used() {
    let by_uid = spec(
        vec![
            secret("/k/a", whole(DB)),
            secret("/k/b", whole(API)),
            secret("/k/c", whole(DB)),
        ],
        vec![Folder {
            folder: FolderRef::Uid(PROD.to_owned()),
            output_dir: "/k/prod".to_owned(),
        }],
    );
    assert_eq!(
        plan(&by_uid),
        Plan {
            all_records: false,
            record_uids: vec![DB.to_owned(), API.to_owned()]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            folder_uids: vec![PROD.to_owned()],
            folders: false,
        }
    );
    let by_title = spec(
        vec![secret("/k/a", whole(DB)), secret("/k/b", whole("db"))],
        vec![],
    );
    assert_eq!(
        plan(&by_title),
        Plan {
            all_records: true,
            ..Plan::default()
        }
    );
    let by_path = spec(
        vec![],
        vec![Folder {
            folder: FolderRef::Path(vec!["Production".to_owned()]),
            output_dir: "/k/prod".to_owned(),
        }],
    );
    assert!(plan(&by_path).all_records && plan(&by_path).folders);
}

#[test]
fn whole_records_follow_the_field_model() {
    let out = one(&spec(vec![secret("/k/db.json", whole(DB))], vec![])).unwrap();
    assert_eq!(out.record_uid, DB);
    assert_eq!(out.mode, FileMode::OWNER_READ);
    assert_eq!(
        out.content,
        Content::Values(
            serde_json::from_value(json!({
                "login": "app", "password": "s3cret", "name": {"first": "Ada", "last": "L"},
                "host": "db.internal", "list": ["a", "b"], "text": [], "text_2": "x",
                "notes": "rotated monthly"
            }))
            .unwrap()
        )
    );
}

#[test]
fn titles_resolve_deterministically_unless_strict() {
    let mut s = spec(vec![secret("/k/db.json", whole("db"))], vec![]);
    // Two records are titled "db": the smallest UID wins, on every refresh.
    assert_eq!(one(&s).unwrap().record_uid, DB);
    s.strict_lookup = true;
    let err = one(&s).unwrap_err();
    assert_eq!(err.reason(), "ambiguous");
    assert_eq!(
        err.to_string(),
        format!(
            "/k/db.json: 2 records are titled \"db\" ({DB}, {DB2}); keeper.security/strict-lookup forbids choosing one: use a UID"
        )
    );
    // A folder path narrows the search.
    let s = spec(
        vec![secret(
            "/k/db.json",
            Source::Record {
                record: record_ref("db", &["Production"]),
                fields: Vec::new(),
            },
        )],
        vec![],
    );
    assert_eq!(one(&s).unwrap().record_uid, DB2);
}

#[test]
fn unknown_records_and_fields_are_errors_naming_the_file() {
    let err = one(&spec(vec![secret("/k/x", whole("nope"))], vec![])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "/k/x: no record \"nope\" is shared with this application"
    );
    let s = spec(
        vec![secret(
            "/k/x",
            Source::Record {
                record: record_ref(DB, &[]),
                fields: vec!["password".to_owned(), "pin".to_owned()],
            },
        )],
        vec![],
    );
    let err = one(&s).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("/k/x: record {DB} has no field \"pin\"")
    );
    assert!(!err.to_string().contains("s3cret"));
}

#[test]
fn selected_fields_only() {
    let s = spec(
        vec![secret(
            "/k/x",
            Source::Record {
                record: record_ref(DB, &[]),
                fields: vec!["password".to_owned(), "host".to_owned()],
            },
        )],
        vec![],
    );
    assert_eq!(
        one(&s).unwrap().content,
        Content::Values(
            serde_json::from_value(json!({"password": "s3cret", "host": "db.internal"})).unwrap()
        )
    );
}

#[test]
fn notation_selects_like_the_sdks() {
    let cases = [
        (field_sel("password", None, None), json!("s3cret")),
        (field_sel("name", None, Some("first")), json!("Ada")),
        (
            field_sel("name", Some(Index::At(0)), Some("last")),
            json!("L"),
        ),
        (
            Selector::CustomField {
                name: "host".to_owned(),
                index: None,
                property: None,
            },
            json!("db.internal"),
        ),
        (
            Selector::CustomField {
                name: "list".to_owned(),
                index: Some(Index::All),
                property: None,
            },
            json!(["a", "b"]),
        ),
        (
            // By type when no label matches: the first custom field of that type.
            Selector::CustomField {
                name: "text".to_owned(),
                index: None,
                property: None,
            },
            json!("db.internal"),
        ),
        (
            Selector::CustomField {
                name: "list".to_owned(),
                index: Some(Index::At(1)),
                property: None,
            },
            json!("b"),
        ),
        (Selector::Title, json!("db")),
        (Selector::Type, json!("login")),
        (Selector::Notes, json!("rotated monthly")),
    ];
    for (selector, expect) in cases {
        let out = one(&spec(
            vec![secret("/k/x", notation(DB, selector.clone()))],
            vec![],
        ));
        assert_eq!(out.unwrap().content, Content::Value(expect), "{selector:?}");
    }
    for (selector, what) in [
        (
            field_sel("password", Some(Index::At(3)), None),
            "field \"password\" value 3",
        ),
        (
            field_sel("name", None, Some("middle")),
            "field \"name\" property \"middle\"",
        ),
        (field_sel("otp", None, None), "field \"otp\""),
    ] {
        let err = one(&spec(vec![secret("/k/x", notation(DB, selector))], vec![])).unwrap_err();
        assert_eq!(err.to_string(), format!("/k/x: record {DB} has no {what}"));
    }
}

#[test]
fn files_by_name_or_title() {
    for name in ["ca.pem", "CA bundle"] {
        let s = spec(
            vec![secret(
                "/k/ca.pem",
                Source::File {
                    record: record_ref(DB, &[]),
                    file: name.to_owned(),
                },
            )],
            vec![],
        );
        assert_eq!(
            one(&s).unwrap().content,
            Content::File {
                record_uid: DB.to_owned(),
                file_uid: "file-uid-0000000000000".to_owned()
            }
        );
    }
}

#[test]
fn folders_give_one_json_file_per_record() {
    for folder in [
        FolderRef::Uid(PROD_DB.to_owned()),
        FolderRef::Path(vec!["Production".to_owned(), "Databases".to_owned()]),
    ] {
        let s = spec(
            vec![],
            vec![Folder {
                folder,
                output_dir: "/keeper/secrets/dbs/".to_owned(),
            }],
        );
        let out = select(&s, &records(), &folders()).unwrap();
        let paths: Vec<&str> = out.iter().map(|o| o.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/keeper/secrets/dbs/api-keys.json",
                "/keeper/secrets/dbs/db.json"
            ]
        );
        assert!(out.iter().all(|o| o.format == Format::Json));
    }
    let s = spec(
        vec![],
        vec![Folder {
            folder: FolderRef::Path(vec!["Staging".to_owned()]),
            output_dir: "/k/stg".to_owned(),
        }],
    );
    assert_eq!(
        select(&s, &records(), &folders()).unwrap_err().to_string(),
        "/k/stg: no folder \"Staging\" is shared with this application"
    );
}

#[test]
fn uids_are_22_url_safe_characters() {
    assert!(is_uid(DB));
    assert!(is_uid("abc-_0123456789ABCDEFGH"[..22].as_ref()));
    assert!(!is_uid("db"));
    assert!(!is_uid("AAAAAAAAAAAAAAAAAAAAA="));
}
