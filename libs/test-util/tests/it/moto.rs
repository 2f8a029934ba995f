//! The moto S3 server, driven through bulwark-storage's S3 client (hyper and rustls): objects,
//! listing, multipart uploads, missing keys, and the server's own lifecycle.

use std::sync::Arc;

use bulwark_storage::{
    S3Credentials, S3Options, Secret,
    object_store::{self, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, path::Path},
};
use bulwark_test_util::moto::{self, MotoServer};
use futures::TryStreamExt;

/// A store on a fresh bucket of the shared moto server.
fn store(prefix: &str) -> Arc<dyn ObjectStore> {
    let moto = MotoServer::shared().unwrap();
    let bucket = moto.create_unique_bucket(prefix).unwrap();
    bulwark_storage::s3(&S3Options {
        bucket,
        endpoint: Some(moto.endpoint().to_owned()),
        region: Some(moto::REGION.to_owned()),
        allow_http: true,
        credentials: Some(S3Credentials {
            access_key_id: moto::ACCESS_KEY_ID.to_owned(),
            secret_access_key: Secret::new(moto::SECRET_ACCESS_KEY),
            session_token: None,
        }),
        ..S3Options::default()
    })
    .unwrap()
}

async fn list(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn moto_puts_gets_lists_and_deletes_objects() {
    let store = store("objects");
    let first = Path::from("db/audit_log/part-1.jsonl");
    let second = Path::from("db/audit_log/part-2.jsonl");
    let other = Path::from("db/other/part-1.jsonl");

    for (path, body) in [(&first, "one"), (&second, "two"), (&other, "other")] {
        store.put(path, PutPayload::from(body)).await.unwrap();
    }
    let body = store.get(&second).await.unwrap().bytes().await.unwrap();
    let listed = list(&*store, "db/audit_log").await;
    store.delete(&first).await.unwrap();

    assert_eq!(&body[..], b"two");
    assert_eq!(
        listed,
        ["db/audit_log/part-1.jsonl", "db/audit_log/part-2.jsonl"]
    );
    assert_eq!(
        list(&*store, "db/audit_log").await,
        ["db/audit_log/part-2.jsonl"]
    );
    assert_eq!(list(&*store, "db").await.len(), 2);
}

#[tokio::test]
async fn moto_takes_a_multipart_upload_of_several_mib() {
    let store = store("multipart");
    let path = Path::from("db/audit_log/big.jsonl");
    // 12 MiB in 5 MiB parts: two full parts and a short last one.
    let data: Vec<u8> = (0..12 * 1024 * 1024).map(|i| (i % 251) as u8).collect();

    let upload = store.put_multipart(&path).await.unwrap();
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 5 * 1024 * 1024);
    for chunk in data.chunks(1024 * 1024) {
        writer.write(chunk);
    }
    writer.finish().await.unwrap();

    let meta = store.head(&path).await.unwrap();
    let body = store.get(&path).await.unwrap().bytes().await.unwrap();
    assert_eq!(meta.size, data.len() as u64);
    // S3 marks a multipart object's ETag with its part count.
    assert!(
        meta.e_tag
            .as_deref()
            .is_some_and(|tag| tag.ends_with("-3\"")),
        "{meta:?}"
    );
    assert!(
        body[..] == data[..],
        "the object differs from what was uploaded"
    );
}

#[tokio::test]
async fn moto_get_of_a_missing_key_is_not_found() {
    let store = store("missing");

    let error = store.get(&Path::from("nothing/here")).await.unwrap_err();

    assert!(
        matches!(error, object_store::Error::NotFound { .. }),
        "{error:?}"
    );
}

#[test]
fn moto_rejects_invalid_bucket_names_before_asking_the_server() {
    let moto = MotoServer::shared().unwrap();

    for name in ["ab", "Upper", "under_score", "-edge", &"x".repeat(64)] {
        let error = moto.create_bucket(name).unwrap_err();
        assert!(
            matches!(error, moto::Error::InvalidBucketName { .. }),
            "{name}: {error:?}"
        );
    }
}

#[test]
fn moto_stops_when_dropped() {
    let moto = MotoServer::start().unwrap();
    let addr = moto.endpoint().trim_start_matches("http://").to_owned();
    moto.create_bucket("before-drop").unwrap();

    drop(moto);

    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "moto still listens on {addr}"
    );
}
