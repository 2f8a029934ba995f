//! Tests: workloads from pod names, with upstream's ambiguities fixed, and the fingerprint.

use super::{Fingerprint, workload};

#[test]
fn workloads_from_pod_names() {
    for (pod, want) in [
        ("api-7d9f8b6c5-x2k4q", "api"),
        ("payments-api-5c6d7f8b9d-xb2cd", "payments-api"),
        ("backup-28912345-x2k4q", "backup"),
        ("web-0", "web"),
        ("web-12", "web"),
        ("node-exporter-x2k4q", "node-exporter"),
        ("migrate-v2-bn4kd", "migrate-v2"),
        // Upstream strips any numeric suffix; a leading zero is not an ordinal.
        ("report-007", "report-007"),
        // Upstream takes any [a-z0-9] 8-10 hash: "abcdefgh" has vowels, so it is no hash.
        ("my-app-abcdefgh-x2k4q", "my-app-abcdefgh"),
        ("cilium-k8s-x2k4q", "cilium-k8s"),
        ("standalone", "standalone"),
        ("-x2k4q", "-x2k4q"),
        ("", ""),
    ] {
        assert_eq!(workload(pod), want, "{pod}");
    }
}

#[test]
fn fingerprint_is_stable_and_covers_every_part() {
    let f = Fingerprint::new("ns", "api", "app", "boom <N>");
    // Pinned: the fingerprint is an API id and must not drift without a version bump.
    // printf 'v1|ns|api|app|boom <N>' | sha256sum | cut -c1-16
    assert_eq!(f.to_string(), "7b3f5d2c92790cb5");
    assert_eq!(Fingerprint::parse(&f.to_string()), Some(f));
    assert_ne!(f, Fingerprint::new("ns2", "api", "app", "boom <N>"));
    assert_ne!(f, Fingerprint::new("ns", "web", "app", "boom <N>"));
    assert_ne!(f, Fingerprint::new("ns", "api", "sidecar", "boom <N>"));
    assert_ne!(f, Fingerprint::new("ns", "api", "app", "boom"));
    assert_eq!(Fingerprint::parse("+123456789abcdef"), None);
    assert_eq!(Fingerprint::parse("123"), None);
}
