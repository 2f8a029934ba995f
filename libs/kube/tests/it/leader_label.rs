//! The leader label against the fake API server: a new leader takes the label from stale pods
//! and puts it on its own; a replica that stops leading or shuts down removes it.

use std::time::Duration;

use bulwark_kube::{LeaderElector, LeaderLabel, LeaseSettings};
use bulwark_test_util::kube_api::{FakeKube, Fault};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::until;

const KEY: &str = "keeper.security/webhook-leader";
const RETRY: Duration = Duration::from_millis(250);

struct Replica {
    stop: CancellationToken,
    elector: tokio::task::JoinHandle<()>,
    label: tokio::task::JoinHandle<()>,
}

/// A pod named `name` and a contender for the Lease that labels it while it leads.
async fn replica(fake: &FakeKube, name: &str) -> Replica {
    let (client, dir) = super::client_for(fake).await;
    drop(dir);
    let mut settings = LeaseSettings::new("webhook", "default", name);
    settings.lease_duration = Duration::from_secs(3);
    settings.renew_deadline = Duration::from_secs(1);
    settings.retry_period = RETRY;
    let (elector, leadership) = LeaderElector::new(client.clone(), settings).unwrap();
    let stop = CancellationToken::new();
    let label = LeaderLabel::new(client, "default", name, KEY, RETRY);
    Replica {
        elector: tokio::spawn(elector.run(stop.clone())),
        label: tokio::spawn(label.run(leadership, stop.clone())),
        stop,
    }
}

fn pod(fake: &FakeKube, name: &str, labels: serde_json::Value) {
    fake.insert(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "webhook", "image": "webhook"}]}}))
        .unwrap();
}

/// The pods that carry the label, sorted.
fn labelled(fake: &FakeKube) -> Vec<String> {
    let mut names: Vec<String> = fake
        .list("v1", "pods", Some("default"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"][KEY] == "true")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_alone_carries_the_label_and_hands_it_over() {
    let fake = FakeKube::start().await.unwrap();
    // A killed leader left its label behind; other labels are not ours to touch.
    pod(&fake, "old", json!({"app": "webhook", KEY: "true"}));
    pod(&fake, "a", json!({"app": "webhook"}));
    pod(&fake, "b", json!({"app": "webhook"}));

    let a = replica(&fake, "a").await;
    assert!(
        until(Duration::from_secs(5), || labelled(&fake) == ["a"]).await,
        "{:?}",
        labelled(&fake)
    );
    let old = fake.get("v1", "pods", Some("default"), "old").unwrap();
    assert_eq!(old["metadata"]["labels"], json!({"app": "webhook"}));

    // A follower does not label itself; when the leader shuts down, it removes its label and
    // releases the Lease, and the follower labels its own pod.
    let b = replica(&fake, "b").await;
    tokio::time::sleep(4 * RETRY).await;
    assert_eq!(labelled(&fake), ["a"]);
    a.stop.cancel();
    a.elector.await.unwrap();
    a.label.await.unwrap();
    assert!(
        until(Duration::from_secs(2), || labelled(&fake) == ["b"]).await,
        "{:?}",
        labelled(&fake)
    );

    // A leader that cannot reach the API server steps down; the label stays (it cannot remove
    // it) until the API answers again, and then goes, or a new leader takes it.
    fake.inject(Fault::new(usize::MAX, 503));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(labelled(&fake), ["b"]);
    fake.clear_faults();
    assert!(
        until(Duration::from_secs(5), || labelled(&fake) == ["b"]).await,
        "after the outage: {:?}",
        labelled(&fake)
    );
    b.stop.cancel();
    b.elector.await.unwrap();
    b.label.await.unwrap();
    assert!(labelled(&fake).is_empty(), "{:?}", labelled(&fake));
}
