//! Leader election with two contenders against the fake API server.

use std::time::{Duration, Instant};

use bulwark_kube::{LeaderElector, Leadership, LeaseSettings};
use bulwark_test_util::kube_api::{FakeKube, Fault};

use super::until;
use tokio_util::sync::CancellationToken;

const LEASE: Duration = Duration::from_millis(3000);
const RENEW: Duration = Duration::from_millis(1000);
const RETRY: Duration = Duration::from_millis(250);

fn settings(identity: &str) -> LeaseSettings {
    let mut s = LeaseSettings::new("test-leader", "default", identity);
    s.lease_duration = LEASE;
    s.renew_deadline = RENEW;
    s.retry_period = RETRY;
    s
}

struct Contender {
    leadership: Leadership,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn contender(fake: &FakeKube, identity: &str) -> Contender {
    let (client, dir) = super::client_for(fake).await;
    drop(dir);
    let (elector, leadership) = LeaderElector::new(client, settings(identity)).unwrap();
    let stop = CancellationToken::new();
    let task = tokio::spawn(elector.run(stop.clone()));
    Contender {
        leadership,
        stop,
        task,
    }
}

fn holder(fake: &FakeKube) -> Option<String> {
    let lease = fake.get(
        "coordination.k8s.io/v1",
        "leases",
        Some("default"),
        "test-leader",
    )?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_leader_then_failover_when_the_leader_stops_renewing() {
    let fake = FakeKube::start().await.unwrap();
    let a = contender(&fake, "a").await;
    let b = contender(&fake, "b").await;

    assert!(
        until(Duration::from_secs(5), || a.leadership.is_leader()
            || b.leadership.is_leader())
        .await
    );
    // For two lease durations, exactly one contender leads at every sample.
    let end = Instant::now() + 2 * LEASE;
    while Instant::now() < end {
        assert!(
            a.leadership.is_leader() ^ b.leadership.is_leader(),
            "both or neither lead"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (leader, follower, leader_id, follower_id) = if a.leadership.is_leader() {
        (a, b, "a", "b")
    } else {
        (b, a, "b", "a")
    };
    assert_eq!(holder(&fake).as_deref(), Some(leader_id));

    // The leader stops renewing without releasing, as a killed or frozen process would.
    leader.task.abort();
    let stopped = Instant::now();
    assert!(
        until(2 * LEASE, || follower.leadership.is_leader()).await,
        "no failover"
    );
    let took = stopped.elapsed();
    // The follower must wait out a whole lease duration since it last saw a change.
    assert!(
        took >= LEASE - RETRY * 2,
        "took over after {took:?}, before the lease expired"
    );
    assert_eq!(holder(&fake).as_deref(), Some(follower_id));
    let lease = fake
        .get(
            "coordination.k8s.io/v1",
            "leases",
            Some("default"),
            "test-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    follower.stop.cancel();
    follower.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_on_shutdown_hands_over_at_once() {
    let fake = FakeKube::start().await.unwrap();
    let a = contender(&fake, "a").await;
    assert!(until(Duration::from_secs(5), || a.leadership.is_leader()).await);
    let b = contender(&fake, "b").await;
    tokio::time::sleep(2 * RETRY).await;
    assert!(!b.leadership.is_leader());

    a.stop.cancel();
    a.task.await.unwrap();
    assert!(!a.leadership.is_leader());
    let released = Instant::now();
    assert!(until(LEASE, || b.leadership.is_leader()).await);
    assert!(
        released.elapsed() < LEASE / 2,
        "took {:?}",
        released.elapsed()
    );
    b.stop.cancel();
    b.task.await.unwrap();
    // B released too: nobody holds the lease.
    assert_eq!(holder(&fake), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_steps_down_when_it_cannot_renew() {
    let fake = FakeKube::start().await.unwrap();
    let a = contender(&fake, "a").await;
    assert!(until(Duration::from_secs(5), || a.leadership.is_leader()).await);
    // Every write fails from now on: the leader must give up within the renew deadline.
    fake.inject(Fault::new(usize::MAX, 500).method(http::Method::PUT));
    let start = Instant::now();
    assert!(
        until(RENEW + 2 * RETRY, || !a.leadership.is_leader()).await,
        "still leading"
    );
    // It last renewed at most one retry period before the faults began, so it steps down by
    // the renew deadline (plus scheduling slack), well before a follower could take over.
    assert!(
        start.elapsed() <= RENEW + 2 * RETRY,
        "stepped down after {:?}",
        start.elapsed()
    );
    assert!(start.elapsed() < LEASE - RETRY);
    fake.clear_faults();
    // Still the holder on record, so it renews again once the API recovers.
    assert!(until(Duration::from_secs(3), || a.leadership.is_leader()).await);
    a.stop.cancel();
    a.task.await.unwrap();
}
