//! The moto S3 server, driven through bulwark-storage's S3 client (hyper and rustls): objects,
//! listing, multipart uploads, missing keys, and the server's own lifecycle.

use std::sync::Arc;

use bulwark_storage::{
    S3Encryption, S3Options,
    object_store::{self, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart, path::Path},
};
use bulwark_test_util::moto::{self, MotoServer};
use futures::TryStreamExt;

/// A store on a fresh bucket of the shared moto server.
fn store(prefix: &str) -> Arc<dyn ObjectStore> {
    let moto = MotoServer::shared().unwrap();
    let bucket = moto.create_unique_bucket(prefix).unwrap();
    bulwark_storage::s3(&moto::s3_options(moto.endpoint(), bucket)).unwrap()
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

/// The response headers of `HEAD` on `key`, through boto3 (an independent S3 client: moto
/// refuses unsigned requests, and object_store does not return encryption headers).
fn head(endpoint: &str, bucket: &str, key: &str) -> String {
    let script = format!(
        "import boto3\nc = boto3.client('s3', endpoint_url='{endpoint}', region_name='{}', aws_access_key_id='{}', aws_secret_access_key='{}')\nfor k, v in c.head_object(Bucket='{bucket}', Key='{key}')['ResponseMetadata']['HTTPHeaders'].items(): print(f'{{k}}: {{v}}')",
        moto::REGION,
        moto::ACCESS_KEY_ID,
        moto::SECRET_ACCESS_KEY
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
}

#[tokio::test]
async fn objects_are_written_with_the_configured_server_side_encryption() {
    let moto = MotoServer::shared().unwrap();
    let key_id = "arn:aws:kms:us-east-1:123456789012:key/bulwark-test";
    for (encryption, expected) in [
        (
            S3Encryption::Kms {
                key_id: Some(key_id.to_owned()),
                bucket_key: Some(true),
            },
            vec![
                "x-amz-server-side-encryption: aws:kms".to_owned(),
                format!("x-amz-server-side-encryption-aws-kms-key-id: {key_id}"),
                "x-amz-server-side-encryption-bucket-key-enabled: true".to_owned(),
            ],
        ),
        (
            S3Encryption::S3,
            vec!["x-amz-server-side-encryption: aes256".to_owned()],
        ),
    ] {
        let bucket = moto.create_unique_bucket("sse").unwrap();
        let store = bulwark_storage::s3(&S3Options {
            encryption: Some(encryption.clone()),
            ..moto::s3_options(moto.endpoint(), bucket.clone())
        })
        .unwrap();
        store
            .put(&Path::from("a/b.jsonl.gz"), PutPayload::from("x"))
            .await
            .unwrap();
        let headers = head(moto.endpoint(), &bucket, "a/b.jsonl.gz");
        for line in expected {
            assert!(
                headers.contains(&line.to_ascii_lowercase()),
                "{encryption:?}: no {line:?} in\n{headers}"
            );
        }
    }
}

#[tokio::test]
async fn a_server_that_never_answers_fails_within_the_timeouts() {
    // Accepts connections and reads requests, but never responds.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for tcp in listener.incoming().flatten() {
            held.push(tcp);
        }
    });
    let store = bulwark_storage::s3(&S3Options {
        timeout: Some(std::time::Duration::from_millis(300)),
        max_retries: Some(2),
        retry_timeout: Some(std::time::Duration::from_secs(5)),
        ..moto::s3_options(&format!("http://{addr}"), "silent")
    })
    .unwrap();
    let started = std::time::Instant::now();
    let error = store
        .put(&Path::from("a"), PutPayload::from("x"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    // Three attempts of 300 ms each, plus backoff; far below object_store's default 3 min.
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(5),
        "{took:?}"
    );
    assert!(
        error.to_string().to_lowercase().contains("timed out")
            || error.to_string().to_lowercase().contains("timeout"),
        "{error}"
    );
}
