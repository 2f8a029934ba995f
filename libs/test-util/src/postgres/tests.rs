//! Tests for finding the PostgreSQL tools and the user to run them as.

use std::{fs, path::Path};

use super::{Error, effective_uid_is_root, find_bin_dir, user_ids};

fn install(root: &Path, version: &str) {
    let bin = root.join(version).join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::write(bin.join("initdb"), "").unwrap();
    fs::write(bin.join("pg_ctl"), "").unwrap();
}

#[test]
fn the_newest_debian_version_wins_by_number() {
    let root = tempfile::tempdir().unwrap();
    for version in ["9", "15", "16"] {
        install(root.path(), version);
    }
    // A version without the tools does not count.
    fs::create_dir_all(root.path().join("17/bin")).unwrap();

    let bin = find_bin_dir(root.path(), &[]).unwrap();

    assert_eq!(bin, root.path().join("16/bin"));
}

#[test]
fn other_directories_are_searched_after_debian() {
    let root = tempfile::tempdir().unwrap();
    install(root.path(), "local");
    let other = root.path().join("local/bin");

    let bin = find_bin_dir(&root.path().join("absent"), &[other.to_str().unwrap()]).unwrap();

    assert_eq!(bin, other);
}

#[test]
fn missing_binaries_say_where_we_looked_and_how_to_install() {
    let error =
        find_bin_dir(Path::new("/nonexistent/postgresql"), &["/nonexistent/bin"]).unwrap_err();

    assert!(matches!(error, Error::NotInstalled { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "postgresql server binaries (initdb and pg_ctl) not found in \
         /nonexistent/postgresql/*/bin, /nonexistent/bin: install them with `apt-get install postgresql`"
    );
}

#[test]
fn root_is_the_effective_uid() {
    assert!(effective_uid_is_root("Name:\tx\nUid:\t1000\t0\t0\t0\n"));
    assert!(!effective_uid_is_root(
        "Name:\tx\nUid:\t0\t1000\t1000\t1000\n"
    ));
    assert!(!effective_uid_is_root("Name:\tx\n"));
}

#[test]
fn user_ids_come_from_passwd() {
    let passwd = "root:x:0:0:root:/root:/bin/bash\npostgres:x:101:104:PostgreSQL:/var/lib/postgresql:/bin/bash\n";

    assert_eq!(user_ids(passwd, "postgres"), Some((101, 104)));
    assert_eq!(user_ids(passwd, "nobody"), None);
}
