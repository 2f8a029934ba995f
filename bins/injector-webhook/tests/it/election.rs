//! Leader election between two webhook processes against the fake Kubernetes API server:
//! only the leader reports ready, and the follower takes over when the leader dies.

use std::path::Path;
use std::time::{Duration, Instant};

use bulwark_test_util::binary::{Running, http_get};
use bulwark_test_util::kube_api::FakeKube;
use bulwark_test_util::tls::TestCa;

fn ready(addr: std::net::SocketAddr) -> bool {
    http_get(addr, "/ready").is_ok_and(|(status, _)| status == 200)
}

fn start(dir: &Path, kubeconfig: &Path, identity: &str) -> (Running, std::net::SocketAddr) {
    let ca = TestCa::new("ca").unwrap();
    let sub = dir.join(identity);
    std::fs::create_dir_all(&sub).unwrap();
    let mut env = super::env_for(&sub, &ca);
    for (k, v) in [
        ("LEADER_ELECTION__ENABLED", "true"),
        ("LEADER_ELECTION__NAMESPACE", "default"),
        ("LEADER_ELECTION__IDENTITY", identity),
        ("LEADER_ELECTION__LEASE_DURATION", "3s"),
        ("LEADER_ELECTION__RENEW_DEADLINE", "1s"),
        ("LEADER_ELECTION__RETRY_PERIOD", "250ms"),
        ("KUBERNETES__KUBECONFIG", kubeconfig.to_str().unwrap()),
    ] {
        env.push((format!("BULWARK_INJECTOR_WEBHOOK_{k}"), v.to_owned()));
    }
    let mut bin = Running::start(Path::new(super::EXE), &[], &super::as_refs(&env)).unwrap();
    let health = bin.health_addr().unwrap();
    (bin, health)
}

#[test]
fn only_the_leader_is_ready_and_a_follower_takes_over() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeKube::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path(), "default").unwrap();
    let (mut a, a_health) = start(dir.path(), &kubeconfig, "webhook-a");
    let (mut b, b_health) = start(dir.path(), &kubeconfig, "webhook-b");

    // One replica leads; the other has seen the Lease held and stands by.
    let standing_by =
        |health| http_get(health, "/ready").is_ok_and(|(_, b)| b.contains("standing by"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(ready(a_health) && standing_by(b_health) || ready(b_health) && standing_by(a_health)) {
        assert!(
            Instant::now() < deadline,
            "no replica led while the other stood by"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (a_ready, b_ready) = (ready(a_health), ready(b_health));
    assert!(
        a_ready ^ b_ready,
        "exactly one replica is ready: a={a_ready} b={b_ready}"
    );

    // The leader dies without releasing the Lease; the follower waits it out and takes over.
    let (leader, follower_health) = if a_ready {
        (&mut a, b_health)
    } else {
        (&mut b, a_health)
    };
    leader.kill().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready(follower_health) {
        assert!(Instant::now() < deadline, "the follower never took over");
        std::thread::sleep(Duration::from_millis(100));
    }
}
