//! Tests for certificate loading and reloading.

use std::path::Path;

use super::{CertFiles, Error, ReloadingResolver};

/// A self-signed certificate for `name`: (cert PEM, key PEM).
pub(crate) fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn write(dir: &Path, (cert, key): &(String, String)) -> CertFiles {
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
    std::fs::write(dir.join("tls.key"), key).unwrap();
    CertFiles {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
    }
}

#[test]
fn reloads_only_valid_changed_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let a = self_signed("a.test");
    let files = write(dir.path(), &a);
    let resolver = ReloadingResolver::load(files.clone()).unwrap();
    let first = resolver.current();
    assert!(
        !resolver.reload().unwrap(),
        "unchanged files are not a change"
    );

    let b = self_signed("b.test");
    write(dir.path(), &b);
    assert!(resolver.reload().unwrap());
    let second = resolver.current();
    assert_ne!(first.cert[0], second.cert[0]);

    // Half-rotated: a new certificate with the old key is refused and B keeps being served.
    let c = self_signed("c.test");
    std::fs::write(&files.cert, &c.0).unwrap();
    assert!(matches!(resolver.reload(), Err(Error::Mismatch { .. })));
    assert_eq!(resolver.current().cert[0], second.cert[0]);

    std::fs::write(&files.cert, "not a certificate").unwrap();
    let e = resolver.reload().unwrap_err();
    assert_eq!(e.metric_label(), "no_certificate");
    assert!(
        e.to_string().ends_with("tls.crt holds no PEM certificate"),
        "{e}"
    );
    assert_eq!(resolver.current().cert[0], second.cert[0]);

    std::fs::write(&files.cert, &c.0).unwrap();
    std::fs::write(&files.key, &c.1).unwrap();
    assert!(resolver.reload().unwrap());
}

#[test]
fn first_load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let files = CertFiles {
        cert: dir.path().join("missing.crt"),
        key: dir.path().join("missing.key"),
    };
    let e = ReloadingResolver::load(files).unwrap_err();
    assert!(
        e.to_string().starts_with("cannot read ") && e.to_string().ends_with("missing.crt"),
        "{e}"
    );

    let (cert, _) = self_signed("a.test");
    let files = write(dir.path(), &(cert, "garbage".into()));
    let e = ReloadingResolver::load(files).unwrap_err();
    assert_eq!(e.metric_label(), "key", "{e}");
}
