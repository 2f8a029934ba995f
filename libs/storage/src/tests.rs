//! Tests for the local directory store.

use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload, path::Path};

use super::{Error, local};

#[tokio::test]
async fn local_creates_its_directory_and_round_trips_objects() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("fallback/archives");
    let store = local(&root).unwrap();
    let path = Path::from("db/table/part-1.jsonl");

    store
        .put(&path, PutPayload::from_static(b"rows"))
        .await
        .unwrap();
    let body = store.get(&path).await.unwrap().bytes().await.unwrap();
    let listed: Vec<_> = store
        .list(None)
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .unwrap();

    assert_eq!(&body[..], b"rows");
    assert_eq!(listed, [path]);
    assert!(root.join("db/table/part-1.jsonl").is_file());
}

#[test]
fn local_reports_a_directory_it_cannot_create() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();

    let error = local(&file.join("below")).err().unwrap();

    assert!(matches!(error, Error::CreateDir { .. }), "{error:?}");
}
