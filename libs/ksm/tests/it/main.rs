//! The KSM client against the fake Keeper server (which the official Python SDK proves
//! wire-compatible): binding, records, shared folders, subfolders, files, throttling, key
//! rotation, outages and refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bulwark_ksm::{Client, Error, KsmConfig, Options, Query};
use bulwark_test_util::keeper::{FakeKeeper, Field, File, Folder, Record};

const PASSWORD: &str = "pa55-w0rd-never-logged";

fn new_client(keeper: &FakeKeeper, config: &serde_json::Value) -> Client {
    let config = KsmConfig::parse(&config.to_string()).unwrap();
    let options = Options {
        ca_pem: Some(keeper.ca_pem().as_bytes().to_vec()),
        timeout: Duration::from_secs(5),
    };
    Client::new(config, &options).unwrap()
}

fn bound(keeper: &FakeKeeper) -> Client {
    new_client(keeper, &keeper.bound_config().unwrap())
}

fn login(title: &str) -> Record {
    Record::login(title, "app", PASSWORD)
}

#[tokio::test]
async fn binds_a_one_time_token_then_reads_with_the_bound_config() {
    let keeper = FakeKeeper::start().unwrap();
    let db = login("db");
    keeper.set_record(db.clone()).unwrap();
    let token = keeper.one_time_token();
    let client = new_client(&keeper, &keeper.token_config(&token));
    assert!(!client.config().is_bound());
    let snapshot = client.fetch(&Query::default()).await.unwrap();
    assert_eq!(snapshot.records.len(), 1);
    let record = &snapshot.records[0];
    assert_eq!(record.uid, db.uid());
    assert_eq!(record.title, "db");
    assert_eq!(record.record_type, "login");
    let password = record
        .fields
        .iter()
        .find(|f| f.field_type == "password")
        .unwrap();
    assert_eq!(password.value, [serde_json::json!(PASSWORD)]);
    // The bound configuration works on its own, as a cache of it would.
    let bound = client.config();
    assert!(bound.is_bound());
    let again = Client::new(
        KsmConfig::parse(&bound.to_json()).unwrap(),
        &Options {
            ca_pem: Some(keeper.ca_pem().as_bytes().to_vec()),
            timeout: Duration::from_secs(5),
        },
    )
    .unwrap();
    assert_eq!(
        again.fetch(&Query::default()).await.unwrap().records.len(),
        1
    );
    assert_eq!(keeper.bound_clients(), 1);
    // Nothing secret in Debug output.
    for text in [
        format!("{client:?}"),
        format!("{bound:?}"),
        format!("{snapshot:?}"),
    ] {
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!text.contains(&token), "{text}");
    }
}

#[tokio::test]
async fn one_request_per_fetch_with_requested_records() {
    let keeper = FakeKeeper::start().unwrap();
    let (a, b, c) = (login("a"), login("b"), login("c"));
    for r in [&a, &b, &c] {
        keeper.set_record(r.clone()).unwrap();
    }
    let client = bound(&keeper);
    let query = Query {
        records: Some(vec![a.uid().to_owned(), c.uid().to_owned()]),
        ..Query::default()
    };
    let snapshot = client.fetch(&query).await.unwrap();
    let mut uids: Vec<&str> = snapshot.records.iter().map(|r| r.uid.as_str()).collect();
    uids.sort_unstable();
    let mut expect = [a.uid(), c.uid()];
    expect.sort_unstable();
    assert_eq!(uids, expect);
    assert_eq!(keeper.requests("get_secret"), 1);
    assert_eq!(keeper.requests("get_folders"), 0);
    let payload = keeper.last_payload("get_secret").unwrap();
    assert_eq!(payload["requestedRecords"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn shared_folders_subfolders_and_files() {
    let keeper = FakeKeeper::start().unwrap();
    let prod = Folder::shared("Production");
    let dbs = Folder::subfolder("Databases", prod.uid());
    keeper.set_folder(prod.clone()).unwrap();
    keeper.set_folder(dbs.clone()).unwrap();
    let content: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let mysql = login("mysql")
        .custom(Field::labeled("text", "host", ["db.internal"]))
        .file(File::new("ca.pem", content.clone()).with_title("CA bundle"))
        .in_folder(dbs.uid());
    let top = login("top").in_folder(prod.uid());
    keeper.set_record(mysql.clone()).unwrap();
    keeper.set_record(top.clone()).unwrap();
    let client = bound(&keeper);
    let snapshot = client
        .fetch(&Query {
            folder_tree: true,
            ..Query::default()
        })
        .await
        .unwrap();
    let record = snapshot
        .records
        .iter()
        .find(|r| r.uid == mysql.uid())
        .unwrap();
    assert_eq!(record.folder_uid.as_deref(), Some(dbs.uid()));
    assert_eq!(record.custom[0].label.as_deref(), Some("host"));
    let top_record = snapshot
        .records
        .iter()
        .find(|r| r.uid == top.uid())
        .unwrap();
    assert_eq!(top_record.folder_uid.as_deref(), Some(prod.uid()));
    let mut names: Vec<(String, Option<String>)> = snapshot
        .folders
        .iter()
        .map(|f| (f.name.clone(), f.parent_uid.clone()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("Databases".to_owned(), Some(prod.uid().to_owned())),
            ("Production".to_owned(), None)
        ]
    );
    let file = &record.files[0];
    assert_eq!(
        (file.name.as_str(), file.title.as_str()),
        ("ca.pem", "CA bundle")
    );
    assert_eq!(client.download(file).await.unwrap(), content);
    assert_eq!(keeper.requests("get_secret"), 1);
    assert_eq!(keeper.requests("get_folders"), 1);

    // By folder UID: only that folder's records.
    let only = client
        .fetch(&Query {
            folders: Some(vec![dbs.uid().to_owned()]),
            ..Query::default()
        })
        .await
        .unwrap();
    let uids: Vec<&str> = only.records.iter().map(|r| r.uid.as_str()).collect();
    assert_eq!(uids, [mysql.uid()]);
}

#[tokio::test]
async fn throttling_is_a_transient_error_with_keepers_delay() {
    let keeper = FakeKeeper::start().unwrap();
    keeper.set_record(login("a")).unwrap();
    let client = bound(&keeper);
    keeper.throttle_next(1, Duration::from_secs(7));
    let err = client.fetch(&Query::default()).await.unwrap_err();
    assert_eq!(
        err,
        Error::Throttled {
            retry_after: Duration::from_secs(7)
        }
    );
    assert!(err.is_transient());
    assert_eq!(err.reason(), "throttled");
    assert_eq!(
        client.fetch(&Query::default()).await.unwrap().records.len(),
        1
    );
}

#[tokio::test]
async fn key_rotation_is_followed_once() {
    let keeper = FakeKeeper::start().unwrap();
    keeper.set_record(login("a")).unwrap();
    let client = bound(&keeper);
    let new_id = keeper.rotate_key();
    assert_eq!(
        client.fetch(&Query::default()).await.unwrap().records.len(),
        1
    );
    let config = client.config().to_json();
    assert!(
        config.contains(&format!("\"serverPublicKeyId\":\"{new_id}\"")),
        "{new_id}"
    );
    assert_eq!(keeper.requests("get_secret"), 2);
}

#[tokio::test]
async fn outages_are_transient_and_refusals_are_not() {
    let keeper = FakeKeeper::start().unwrap();
    keeper.set_record(login("a")).unwrap();
    let client = bound(&keeper);
    keeper.set_unavailable(true);
    let err = client.fetch(&Query::default()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert_eq!(err.reason(), "unavailable");
    keeper.set_unavailable(false);
    keeper.set_down(true);
    let err = client.fetch(&Query::default()).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    keeper.set_down(false);
    assert!(client.fetch(&Query::default()).await.is_ok());

    // A client the server does not know.
    let mut stranger = keeper.bound_config().unwrap();
    stranger["clientId"] = "bm90LWEtY2xpZW50".into();
    let err = client_fetch(&keeper, &stranger).await;
    assert!(!err.is_transient(), "{err}");
    assert_eq!(err.reason(), "auth");

    // A used one-time token.
    let token = keeper.one_time_token();
    new_client(&keeper, &keeper.token_config(&token))
        .fetch(&Query::default())
        .await
        .unwrap();
    let err = client_fetch(&keeper, &keeper.token_config(&token)).await;
    assert!(!err.is_transient(), "{err}");
}

async fn client_fetch(keeper: &FakeKeeper, config: &serde_json::Value) -> Error {
    new_client(keeper, config)
        .fetch(&Query::default())
        .await
        .unwrap_err()
}

#[test]
fn configs_are_json_or_base64_and_errors_name_the_key() {
    use base64::Engine;
    let keeper = FakeKeeper::start().unwrap();
    let json = keeper.bound_config().unwrap().to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&json);
    assert!(KsmConfig::parse(&json).unwrap().is_bound());
    assert!(KsmConfig::parse(&b64).unwrap().is_bound());
    assert_eq!(
        KsmConfig::parse(r#"{"clientId":"x"}"#)
            .unwrap_err()
            .to_string(),
        "the KSM configuration has no hostname"
    );
    let err = KsmConfig::parse(r#"{"hostname":"h","appKey":"!!","clientId":"c","privateKey":"p"}"#)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the KSM configuration's appKey is invalid: expected base64 of a 32-byte key"
    );
    assert!(KsmConfig::parse("not a config").is_err());
    let region = KsmConfig::parse(r#"{"clientKey":"EU:dG9rZW4"}"#).unwrap();
    assert_eq!(region.hostname(), "keepersecurity.eu");
}

#[test]
fn a_bare_one_time_token_is_a_configuration() {
    let token = "gLrtbJbzJt0ZBb5dZ4ENtlN3t_kOHXd6CvcW-Q4Cw-k";
    let cases = [
        (format!("EU:{token}"), "keepersecurity.eu"),
        (format!("jp:{token}"), "keepersecurity.jp"),
        (format!("IL5:{token}"), "il5.keepersecurity.us"),
        (format!("keeper.example.org:{token}"), "keeper.example.org"),
        (format!("127.0.0.1:8443:{token}"), "127.0.0.1:8443"),
        (token.to_owned(), "keepersecurity.com"),
        (format!("  US:{token}\n"), "keepersecurity.com"),
    ];
    for (text, host) in cases {
        let config = KsmConfig::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(config.hostname(), host, "{text}");
        assert!(!config.is_bound(), "{text}");
        // The SDKs' own shape after parsing: the token is the clientKey, the host separate.
        let json: serde_json::Value = serde_json::from_str(&config.to_json()).unwrap();
        assert_eq!(json["clientKey"], token, "{text}");
        assert_eq!(json["serverPublicKeyId"], "10", "{text}");
    }
    // The four-part form of isolated regions carries its key id and server key.
    let keeper = FakeKeeper::start().unwrap();
    let four = format!(
        "GOV:{token}:{}:{}",
        keeper.server_public_key_id(),
        keeper.server_public_key()
    );
    let json: serde_json::Value =
        serde_json::from_str(&KsmConfig::parse(&four).unwrap().to_json()).unwrap();
    assert_eq!(json["hostname"], "govcloud.keepersecurity.us");
    assert_eq!(json["serverPublicKeyId"], keeper.server_public_key_id());
    assert_eq!(json["serverPublicKey"], keeper.server_public_key());
    for bad in [
        "",
        "not a config",
        "EU:",
        ":abc",
        "EU:not base64!",
        "{\"hostname\":",
    ] {
        let err = KsmConfig::parse(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("the KSM configuration is"),
            "{bad:?}: {err}"
        );
        assert!(!err.contains("base64!"), "the value leaked: {err}");
    }
}
