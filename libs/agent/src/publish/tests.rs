//! Tests of atomic publication: nested files, modes, change detection, removal, paths, and concurrent readers.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Changes, Error, File, publish, relative};

fn file(path: &str, content: &str) -> File {
    File {
        path: path.to_owned(),
        content: content.as_bytes().to_vec(),
        mode: 0o400,
    }
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap()
}

#[test]
fn publishes_nested_files_with_modes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut ro = file("db.json", "{}");
    ro.mode = 0o440;
    let changes = publish(
        root,
        &[ro, file("dbs/mysql.json", "m"), file("dbs/pg.json", "p")],
    )
    .unwrap();
    assert_eq!(
        changes.written,
        ["db.json", "dbs/mysql.json", "dbs/pg.json"]
    );
    assert_eq!(read(root, "db.json"), "{}");
    assert_eq!(read(root, "dbs/pg.json"), "p");
    let mode = std::fs::metadata(root.join("db.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o440);
    let mode = std::fs::metadata(root.join("dbs/pg.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o400);
}

#[test]
fn unchanged_sets_are_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let set = [file("a", "1"), file("b/c", "2")];
    publish(root, &set).unwrap();
    let before = std::fs::metadata(root.join("b/c")).unwrap();
    assert_eq!(publish(root, &set).unwrap(), Changes::default());
    let after = std::fs::metadata(root.join("b/c")).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    // A mode change alone is a change.
    let mut moded = set.clone();
    moded[0].mode = 0o444;
    assert_eq!(publish(root, &moded).unwrap().written, ["a"]);
}

#[test]
fn removed_secrets_disappear_with_their_links() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    publish(
        root,
        &[
            file("a", "1"),
            file("gone", "x"),
            file("d/x", "1"),
            file("d/y", "2"),
        ],
    )
    .unwrap();
    let changes = publish(root, &[file("a", "1"), file("d/x", "1")]).unwrap();
    assert_eq!(changes.written, Vec::<String>::new());
    assert_eq!(changes.removed, ["d/y", "gone"]);
    assert!(!root.join("gone").exists());
    assert!(std::fs::symlink_metadata(root.join("gone")).is_err());
    assert!(!root.join("d/y").exists());
    let hidden: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("..") && n != "..data")
        .collect();
    // The live data directory and the previous one remain.
    assert_eq!(hidden.len(), 2, "{hidden:?}");
}

#[test]
fn paths_stay_inside_the_mount() {
    let root = Path::new("/keeper/secrets");
    assert_eq!(
        relative(root, "/keeper/secrets/db/x.json").unwrap(),
        "db/x.json"
    );
    for bad in [
        "/keeper/secrets/../etc/passwd",
        "/etc/passwd",
        "/keeper/secrets",
        "/keeper/secrets/..data/x",
    ] {
        assert!(
            matches!(relative(root, bad), Err(Error::Path { .. })),
            "{bad}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        publish(dir.path(), &[file("a/../b", "x")]),
        Err(Error::Path { .. })
    ));
    assert!(matches!(
        publish(dir.path(), &[file("a", "x"), file("a/b", "y")]),
        Err(Error::FileAndDir { .. })
    ));
    std::fs::write(dir.path().join("mine"), "user file").unwrap();
    assert!(matches!(
        publish(dir.path(), &[file("mine", "x")]),
        Err(Error::Occupied { .. })
    ));
    assert_eq!(read(dir.path(), "mine"), "user file");
}

/// Readers on other threads never see a partial file or files from two versions.
#[test]
fn readers_never_see_a_partial_or_mixed_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = Arc::new(dir.path().to_path_buf());
    let version = |v: usize| {
        // Files of different sizes, each carrying the version, the big one 64 KiB.
        let body = |name: &str, len: usize| {
            let mut s = format!("{v}:");
            while s.len() < len {
                s.push_str(name);
            }
            s
        };
        vec![
            file("a.txt", &body("a", 10)),
            file("nested/b.json", &body("b", 4096)),
            file("nested/deeper/c", &body("c", 65536)),
        ]
    };
    publish(&root, &version(0)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (root, stop) = (root.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Open all three through one resolution of ..data, as an application
                    // reading a set would (it opens the directory once).
                    let Ok(data) = std::fs::canonicalize(root.join("..data")) else {
                        continue; // Resolved to a directory that two publications retired.
                    };
                    let texts: Vec<String> = ["a.txt", "nested/b.json", "nested/deeper/c"]
                        .iter()
                        .map(|p| std::fs::read_to_string(data.join(p)).unwrap_or_default())
                        .collect();
                    if texts.iter().any(String::is_empty) {
                        continue; // The directory was replaced between resolve and open.
                    }
                    let versions: Vec<&str> =
                        texts.iter().map(|t| t.split(':').next().unwrap()).collect();
                    assert!(
                        versions.iter().all(|v| *v == versions[0]),
                        "mixed set {versions:?}"
                    );
                    let lens: Vec<usize> = texts.iter().map(String::len).collect();
                    assert_eq!(lens, [10, 4096, 65536], "partial file");
                    // Through the user-visible links each file is whole.
                    if let Ok(c) = std::fs::read_to_string(root.join("nested/deeper/c")) {
                        assert_eq!(c.len(), 65536, "partial file through the link");
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for v in 1..200 {
        publish(&root, &version(v)).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let reads: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    assert!(reads > 0);
}
