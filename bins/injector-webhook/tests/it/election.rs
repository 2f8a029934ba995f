//! Leader election through the leader's pod label, against the fake Kubernetes API server:
//! three replicas, a rolling replacement of all three as the shipped Deployment does it
//! (`maxSurge: 1`, `maxUnavailable: 0`), then a killed leader, while a client keeps sending
//! admission requests through a "Service" that selects the leader label, as kube-proxy would.
//!
//! Every replica must stay ready (a follower that is never ready stalls the rollout and
//! breaks the PodDisruptionBudget), requests may fail only during a Lease hand-over, and at the
//! end exactly one pod carries the label: the Lease holder's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bulwark_test_util::binary::{Running, http_get};
use bulwark_test_util::kube_api::FakeKube;
use bulwark_test_util::tls::{TestCa, https_request};
use serde_json::{Value, json};

const LABEL: &str = "keeper.security/webhook-leader";
const REPLICAS: usize = 3;
const LEASE: Duration = Duration::from_secs(3);
const RETRY: Duration = Duration::from_millis(250);

/// A replica as the Service sees it.
#[derive(Clone, Copy)]
struct Endpoint {
    https: SocketAddr,
    health: SocketAddr,
    ready: bool,
    /// Deleted (SIGTERM sent) or dead: the endpoints controller has dropped it.
    gone: bool,
}

/// What the client saw of one admission request.
struct Outcome {
    at: Instant,
    ok: bool,
}

struct Cluster<'a> {
    fake: &'a FakeKube,
    dir: &'a Path,
    kubeconfig: &'a Path,
    ca: &'a TestCa,
    endpoints: Arc<Mutex<BTreeMap<String, Endpoint>>>,
    processes: BTreeMap<String, Running>,
}

impl Cluster<'_> {
    /// Creates the Pod object, then starts its process, as the kubelet does.
    fn start(&mut self, name: &str) {
        self.fake
            .insert(json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "default",
                             "labels": {"app.kubernetes.io/name": "injector-webhook"}},
                "spec": {"containers": [{"name": "injector-webhook", "image": "injector-webhook"}]}}))
            .unwrap();
        let sub = self.dir.join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let mut env = super::env_for(&sub, self.ca);
        for (k, v) in [
            ("LEADER_ELECTION__ENABLED", "true"),
            ("LEADER_ELECTION__NAMESPACE", "default"),
            ("LEADER_ELECTION__IDENTITY", name),
            ("LEADER_ELECTION__LEASE_DURATION", "3s"),
            ("LEADER_ELECTION__RENEW_DEADLINE", "1s"),
            ("LEADER_ELECTION__RETRY_PERIOD", "250ms"),
            ("KUBERNETES__KUBECONFIG", self.kubeconfig.to_str().unwrap()),
        ] {
            env.push((format!("BULWARK_INJECTOR_WEBHOOK_{k}"), v.to_owned()));
        }
        let (bin, health, https) = super::admission::start_with(&env);
        self.endpoints.lock().unwrap().insert(
            name.to_owned(),
            Endpoint {
                https,
                health,
                ready: false,
                gone: false,
            },
        );
        self.processes.insert(name.to_owned(), bin);
    }

    /// Waits until `name` is ready, as the Deployment controller waits before going on.
    fn wait_ready(&self, name: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.endpoints.lock().unwrap()[name].ready {
            assert!(
                Instant::now() < deadline,
                "{name} never became ready: the rollout would stall"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Deletes the pod: the endpoints controller drops it at once, the kubelet sends SIGTERM
    /// and waits for the exit, then the object goes.
    fn delete(&mut self, name: &str) {
        self.endpoints.lock().unwrap().get_mut(name).unwrap().gone = true;
        let (status, _) = self
            .processes
            .get_mut(name)
            .unwrap()
            .terminate(Duration::from_secs(10))
            .unwrap();
        assert!(status.success(), "{name} exited with {status}");
        self.fake
            .remove("v1", "pods", Some("default"), name)
            .unwrap();
    }

    /// Kills the process as a lost node would: no SIGTERM, the Lease is not released and the
    /// label stays on the Pod object.
    fn kill(&mut self, name: &str) {
        self.endpoints.lock().unwrap().get_mut(name).unwrap().gone = true;
        self.processes.get_mut(name).unwrap().kill().unwrap();
    }

    fn labelled(&self) -> Vec<String> {
        labelled(self.fake)
    }
}

fn labelled(fake: &FakeKube) -> Vec<String> {
    fake.list("v1", "pods", Some("default"))
        .into_iter()
        .filter(|p| p["metadata"]["labels"][LABEL] == "true")
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn holder(fake: &FakeKube) -> Option<String> {
    let lease = fake.get(
        "coordination.k8s.io/v1",
        "leases",
        Some("default"),
        "injector-webhook",
    )?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

/// One admission request through the Service: to a ready, live pod that carries the label.
fn admit(
    fake: &FakeKube,
    endpoints: &Mutex<BTreeMap<String, Endpoint>>,
    ca: &TestCa,
    uid: &str,
) -> bool {
    let leaders = labelled(fake);
    let target = {
        let endpoints = endpoints.lock().unwrap();
        leaders
            .iter()
            .filter_map(|name| endpoints.get(name))
            .find(|e| e.ready && !e.gone)
            .map(|e| e.https)
    };
    let Some(https) = target else {
        return false;
    };
    https_request(
        https,
        "localhost",
        ca.pem(),
        "POST",
        "/mutate-pods",
        &super::admission::review(uid),
    )
    .is_ok_and(|(status, body)| {
        status == 200
            && serde_json::from_slice::<Value>(&body)
                .is_ok_and(|v| v["response"]["uid"] == uid && v["response"]["allowed"] == true)
    })
}

#[test]
fn a_rolling_update_and_a_killed_leader_keep_admission_answered() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(FakeKube::start()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = fake.write_kubeconfig(dir.path(), "default").unwrap();
    let ca = TestCa::new("webhook-ca").unwrap();
    let endpoints = Arc::new(Mutex::new(BTreeMap::new()));
    let mut cluster = Cluster {
        fake: &fake,
        dir: dir.path(),
        kubeconfig: &kubeconfig,
        ca: &ca,
        endpoints: endpoints.clone(),
        processes: BTreeMap::new(),
    };
    let stop = AtomicBool::new(false);
    let outcomes = Mutex::new(Vec::<Outcome>::new());
    // When the leader was told to stop, and whether it was killed.
    let mut hand_overs: Vec<(Instant, bool)> = Vec::new();
    let mut samples: Vec<(Instant, usize)> = Vec::new();
    let (mut rollout, mut killed_at) = (None, None);

    std::thread::scope(|scope| {
        // The kubelet's readiness probes, every 50 ms.
        let probes = scope.spawn(|| {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let snapshot: Vec<(String, Endpoint)> = endpoints
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(n, e)| (n.clone(), *e))
                    .collect();
                let mut ready = 0;
                for (name, endpoint) in snapshot {
                    let ok = !endpoint.gone
                        && http_get(endpoint.health, "/ready").is_ok_and(|(s, _)| s == 200);
                    ready += usize::from(ok);
                    if let Some(e) = endpoints.lock().unwrap().get_mut(&name) {
                        e.ready = ok;
                    }
                }
                samples.push((Instant::now(), ready));
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });

        for i in 0..REPLICAS {
            cluster.start(&format!("webhook-old-{i}"));
        }
        for i in 0..REPLICAS {
            cluster.wait_ready(&format!("webhook-old-{i}"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.labelled().len() != 1 {
            assert!(Instant::now() < deadline, "no replica labelled itself");
            std::thread::sleep(Duration::from_millis(20));
        }

        // The client: one admission request every 10 ms through the Service.
        let client = scope.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let ok = admit(&fake, &endpoints, &ca, &format!("uid-{n}"));
                outcomes.lock().unwrap().push(Outcome {
                    at: Instant::now(),
                    ok,
                });
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        std::thread::sleep(Duration::from_millis(500));
        rollout = Some(Instant::now());

        // The rolling update: a new pod, ready, then the oldest old one goes; three times.
        for i in 0..REPLICAS {
            let new = format!("webhook-new-{i}");
            cluster.start(&new);
            cluster.wait_ready(&new);
            let old = format!("webhook-old-{i}");
            if cluster.labelled().contains(&old) {
                hand_overs.push((Instant::now(), false));
            }
            cluster.delete(&old);
            std::thread::sleep(Duration::from_millis(700));
        }

        // The leader's node is lost; its replacement is created, and a follower takes over once
        // the Lease expires, removing the dead pod's stale label.
        let leader = holder(&fake).expect("a leader after the rollout");
        killed_at = Some(Instant::now());
        hand_overs.push((Instant::now(), true));
        cluster.kill(&leader);
        cluster.start("webhook-new-3");
        let deadline = Instant::now() + 3 * LEASE;
        loop {
            let now = cluster.labelled();
            if now.len() == 1 && now[0] != leader {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no new leader after the kill: labelled {now:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cluster
            .fake
            .remove("v1", "pods", Some("default"), &leader)
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));

        stop.store(true, Ordering::Relaxed);
        client.join().unwrap();
        samples = probes.join().unwrap();
    });

    // While the rollout replaced every pod, no fewer than the Deployment's replicas were ready
    // (maxUnavailable: 0), so the PodDisruptionBudget (minAvailable: 1) always held.
    let (rollout, killed_at) = (rollout.unwrap(), killed_at.unwrap());
    let fewest_ready = samples
        .iter()
        .filter(|(at, _)| *at >= rollout && *at < killed_at)
        .map(|(_, ready)| *ready)
        .min()
        .unwrap();

    // Every failure belongs to a hand-over: after a leader was told to stop, within one retry
    // period (and the label's API calls) for a clean stop, within the lease for a kill.
    let outcomes = outcomes.into_inner().unwrap();
    let failures: Vec<Instant> = outcomes.iter().filter(|o| !o.ok).map(|o| o.at).collect();
    let within = |at: Instant| {
        hand_overs.iter().any(|&(start, killed)| {
            let allowed = if killed { LEASE + 4 * RETRY } else { 4 * RETRY };
            at >= start && at <= start + allowed
        })
    };
    let outside: Vec<Duration> = failures
        .iter()
        .filter(|at| !within(**at))
        .map(|at| at.duration_since(outcomes[0].at))
        .collect();
    // The outages: runs of consecutive failures, as (first failure, last failure, count).
    let mut outages: Vec<(Instant, Instant, usize)> = Vec::new();
    let mut previous_ok = true;
    for outcome in &outcomes {
        match (outcome.ok, previous_ok, outages.last_mut()) {
            (false, false, Some(last)) => {
                last.1 = outcome.at;
                last.2 += 1;
            }
            (false, _, _) => outages.push((outcome.at, outcome.at, 1)),
            (true, _, _) => {}
        }
        previous_ok = outcome.ok;
    }
    let outages: Vec<String> = outages
        .iter()
        .map(|(first, last, count)| {
            format!("{count} in {} ms", last.duration_since(*first).as_millis())
        })
        .collect();
    let graceful = hand_overs.iter().filter(|(_, killed)| !killed).count();
    println!(
        "rollout: {} admission requests, {} failed, all within {} hand-overs ({graceful} clean, 1 killed leader), outages [{}]; {} outside; fewest ready replicas during the rollout {fewest_ready} (maxUnavailable 0 keeps {REPLICAS}; the PDB needs 1)",
        outcomes.len(),
        failures.len(),
        hand_overs.len(),
        outages.join(", "),
        outside.len(),
    );
    assert!(
        outside.is_empty(),
        "requests failed outside a hand-over, at {outside:?} from the start"
    );
    assert!(
        fewest_ready >= REPLICAS,
        "ready replicas fell to {fewest_ready} during the rollout"
    );
    // Exactly one pod carries the label, and it holds the Lease.
    let now = labelled(&fake);
    assert_eq!(now.len(), 1, "labelled: {now:?}");
    assert_eq!(holder(&fake).as_deref(), Some(now[0].as_str()));
    drop(cluster);
}
