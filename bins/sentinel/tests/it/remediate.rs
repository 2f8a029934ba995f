//! End to end, from log lines in the fake Loki to objects on the fake API server, with the
//! API driven by curl: a restarted pod, a scaled Deployment, a rollback (the resulting
//! template checked), a rollout restart; the cooldown held across a replacement pod; the
//! namespace budget; an excluded namespace; dry-run spending nothing; every write refused
//! without the token; and two replicas of which only the leader acts, the other taking over
//! when the leader is killed.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bulwark_test_util::binary::{Running, http_get};
use bulwark_test_util::kube_api::FakeKube;
use bulwark_test_util::loki::FakeLoki;
use bulwark_test_util::postgres::TestPostgres;
use serde_json::{Value, json};

use crate::EXE;

const TOKEN: &str = "t0ken-for-tests";

const RULES: &str = r#"rules:
  - name: oom
    match: {pattern: "OOMKilled"}
    priority: P1
    remediation: {action: restart-pod, cooldown: 10m}
  - name: overload
    match: {pattern: "queue full"}
    priority: P2
    remediation: {action: scale-up, params: {replicas: "+2", max_replicas: "5"}, cooldown: 10m}
  - name: bad-release
    match: {pattern: "nil map"}
    priority: P1
    remediation: {action: rollback, cooldown: 10m}
  - name: stale
    match: {pattern: "stale config"}
    priority: P3
    remediation: {action: rollout-restart, cooldown: 10m}
"#;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn template(app: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image}]}})
}

/// A Deployment `name` with revisions `images` (the last current) and one pod `pod`.
fn deployment(kube: &FakeKube, ns: &str, name: &str, images: &[&str], pod: &str) {
    let current = images[images.len() - 1];
    let d = kube
        .insert(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns,
                "annotations": {"deployment.kubernetes.io/revision": images.len().to_string()}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                "template": template(name, current)}}))
        .unwrap();
    let uid = d["metadata"]["uid"].as_str().unwrap().to_owned();
    let mut rs_uid = String::new();
    for (i, image) in images.iter().enumerate() {
        let rs = kube
            .insert(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": format!("{name}-{}", i + 1), "namespace": ns,
                    "labels": {"app": name},
                    "annotations": {"deployment.kubernetes.io/revision": (i + 1).to_string()},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                        "name": name, "uid": uid, "controller": true}]},
                "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name, image)}}))
            .unwrap();
        rs_uid = rs["metadata"]["uid"].as_str().unwrap().to_owned();
    }
    let rs_name = format!("{name}-{}", images.len());
    pod_of(kube, ns, pod, "ReplicaSet", &rs_name, &rs_uid);
}

fn pod_of(kube: &FakeKube, ns: &str, pod: &str, kind: &str, owner: &str, uid: &str) {
    kube.insert(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod, "namespace": ns, "ownerReferences": [{"apiVersion": "apps/v1",
            "kind": kind, "name": owner, "uid": uid, "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "x"}]}}))
        .unwrap();
}

/// A new pod of `api`'s current ReplicaSet, as its controller makes after a restart.
fn replacement(kube: &FakeKube, pod: &str) {
    let rs = kube
        .get("apps/v1", "replicasets", Some("shop"), "api-2")
        .unwrap();
    let uid = rs["metadata"]["uid"].as_str().unwrap().to_owned();
    pod_of(kube, "shop", pod, "ReplicaSet", "api-2", &uid);
}

/// A replacement pod `pod` of `api` logs another OOMKilled: the replica at `addr` refuses it
/// for the cooldown (counted, not audited) and the pod stays.
fn held_by_the_cooldown(kube: &FakeKube, loki: &FakeLoki, addr: SocketAddr, pod: &str) {
    replacement(kube, pod);
    push(loki, "shop", pod, "container app was OOMKilled");
    let series =
        "kube_sentinel_remediation_refusals_total{action=\"restart-pod\",reason=\"cooldown\"}";
    wait(|| metric(addr, series), |n| *n >= 1.0);
    assert!(kube.get("v1", "pods", Some("shop"), pod).is_some());
}

fn seed(kube: &FakeKube) {
    for ns in ["shop", "pay", "kube-system", "kube-sentinel"] {
        kube.insert(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
            .unwrap();
    }
    deployment(kube, "shop", "api", &["api:1", "api:2"], "api-2-aaaaa");
    deployment(kube, "shop", "web", &["web:1"], "web-1-bbbbb");
    deployment(kube, "pay", "pay", &["pay:1"], "pay-1-eeeee");
    deployment(kube, "kube-system", "dns", &["dns:1"], "dns-1-ccccc");
    let sts = kube
        .insert(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"replicas": 1, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": template("db", "db:1")}}))
        .unwrap();
    let uid = sts["metadata"]["uid"].as_str().unwrap().to_owned();
    pod_of(kube, "shop", "db-0", "StatefulSet", "db", &uid);
}

fn push(loki: &FakeLoki, ns: &str, pod: &str, line: &str) {
    loki.push(
        &[("namespace", ns), ("pod", pod), ("container", "app")],
        now_ns(),
        line,
    );
}

/// curl, the client users have: the status and the body.
fn curl(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-w", "\n%{http_code}"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    if !body.is_empty() {
        cmd.args(["--data-binary", body]);
    }
    let out = cmd.arg(format!("http://{addr}{path}")).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http_get(addr, path).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls until `done` holds, or fails after 20 s with what `what` last returned.
fn wait<T: std::fmt::Debug>(what: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let start = Instant::now();
    loop {
        let v = what();
        if done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "gave up on {v:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn audit(addr: SocketAddr) -> Vec<Value> {
    get(addr, "/kube-sentinel/api/remediations?page_size=100")["entries"]
        .as_array()
        .unwrap()
        .clone()
}

fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, text) = http_get(addr, "/metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn config(dir: &Path, loki: &FakeLoki, kubeconfig: &Path, extra: &str) -> String {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "loki:\n  url: {}\n  query: '{{namespace=~\".+\"}}'\n  poll_interval: 1s\n  lookback: 2m\n  overlap: 30s\nkubernetes:\n  in_cluster: false\n  kubeconfig: {}\nweb:\n  listen: 127.0.0.1:0\n  base_path: /kube-sentinel\n  auth:\n    token_file: {}\n    public_reads: true\nrules_file: {}\n{extra}",
            loki.url(),
            kubeconfig.display(),
            token.display(),
            rules.display(),
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// The rules `manifests/sentinel/base/rbac.yaml` grants: (namespace or `None` for cluster-wide,
/// apiGroups, resources, verbs, resourceNames).
type Grant = (
    Option<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
);

fn granted() -> Vec<Grant> {
    // Relative to the package root, where cargo runs tests.
    let text = std::fs::read_to_string("../../manifests/sentinel/base/rbac.yaml").unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let mut grants = Vec::new();
    for doc in &docs {
        let scope = match doc["kind"].as_str() {
            Some("ClusterRole") => None,
            // The base's namespace (kustomization.yaml).
            Some("Role") => Some("kube-sentinel".to_owned()),
            _ => continue,
        };
        for rule in doc["rules"].as_array().unwrap() {
            grants.push((
                scope.clone(),
                list(&rule["apiGroups"]),
                list(&rule["resources"]),
                list(&rule["verbs"]),
                list(&rule["resourceNames"]),
            ));
        }
    }
    grants
}

/// Fails unless every request sentinel made is one the manifests' RBAC allows: what the
/// binary does and what the cluster grants agree.
fn assert_rbac_allows(requests: &[(hyper::Method, String)]) {
    let grants = granted();
    for (method, target) in requests {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (group, rest) = match parts.as_slice() {
            ["api", "v1", rest @ ..] => ("", rest),
            ["apis", group, _version, rest @ ..] => (*group, rest),
            // Discovery and /version need no grant.
            _ => continue,
        };
        let (namespace, rest) = match rest {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
            rest => (None, rest),
        };
        let (resource, name) = match rest {
            [resource] => (resource.to_string(), None),
            [resource, name] => (resource.to_string(), Some(*name)),
            [resource, name, sub] => (format!("{resource}/{sub}"), Some(*name)),
            _ => panic!("unexpected path {path}"),
        };
        let verb = match (method.as_str(), name) {
            ("GET", None) if query.contains("watch=true") => "watch",
            ("GET", None) => "list",
            ("GET", Some(_)) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", _) => "delete",
            (m, _) => panic!("unexpected method {m}"),
        };
        let allowed = grants
            .iter()
            .any(|(scope, groups, resources, verbs, names)| {
                scope.as_deref().is_none_or(|s| Some(s) == namespace)
                    && groups.iter().any(|g| g == group)
                    && resources.contains(&resource)
                    && verbs.iter().any(|v| v == verb)
                    && (names.is_empty() || name.is_some_and(|n| names.iter().any(|x| x == n)))
            });
        assert!(
            allowed,
            "{method} {target}: {verb} {group}/{resource} is not granted by manifests/sentinel/base/rbac.yaml"
        );
    }
}

fn outcomes(entries: &[Value]) -> Vec<String> {
    let mut o: Vec<String> = entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {}",
                e["rule"].as_str().unwrap(),
                e["owner"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
                e["reason"].as_str().unwrap_or("-")
            )
        })
        .collect();
    o.sort();
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acts_on_the_cluster_within_the_safety_limits() {
    let kube = FakeKube::start().await.unwrap();
    seed(&kube);
    let loki = FakeLoki::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path(), "default").unwrap();
    let extra = "remediation:\n  enabled: true\n  max_actions_per_hour: 50\n  max_actions_per_namespace_per_hour: 4\n  excluded_namespaces: [kube-system]\n";
    let cfg = config(dir.path(), &loki, &kubeconfig, extra);
    let mut bin = Running::start(Path::new(EXE), &["--config", &cfg], &[]).unwrap();
    let addr = bin.health_addr().unwrap();

    push(&loki, "shop", "api-2-aaaaa", "container app was OOMKilled");
    push(&loki, "shop", "web-1-bbbbb", "request dropped: queue full");
    push(
        &loki,
        "shop",
        "api-2-aaaaa",
        "panic: assignment to entry in nil map",
    );
    push(&loki, "shop", "db-0", "reloading: stale config detected");
    push(&loki, "kube-system", "dns-1-ccccc", "dns was OOMKilled");
    let start = Instant::now();
    let entries = loop {
        let entries = audit(addr);
        if entries.len() >= 5 {
            break entries;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{entries:?}\n{}",
            bin.output().join("\n")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        outcomes(&entries),
        [
            "bad-release Deployment/api success -",
            "oom Deployment/api success -",
            "oom Deployment/dns refused excluded_namespace",
            "overload Deployment/web success -",
            "stale StatefulSet/db success -",
        ]
    );
    // What the API server holds now.
    assert!(
        kube.get("v1", "pods", Some("shop"), "api-2-aaaaa")
            .is_none(),
        "restarted"
    );
    assert!(
        kube.get("v1", "pods", Some("kube-system"), "dns-1-ccccc")
            .is_some(),
        "excluded"
    );
    let web = kube
        .get("apps/v1", "deployments", Some("shop"), "web")
        .unwrap();
    assert_eq!(web["spec"]["replicas"], 3, "+2");
    let api = kube
        .get("apps/v1", "deployments", Some("shop"), "api")
        .unwrap();
    assert_eq!(
        api["spec"]["template"]["spec"]["containers"][0]["image"], "api:1",
        "rolled back to revision 1's template"
    );
    assert!(
        api["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none()
    );
    let db = kube
        .get("apps/v1", "statefulsets", Some("shop"), "db")
        .unwrap();
    assert!(
        db["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let events = kube.list("events.k8s.io/v1", "events", Some("shop"));
    let reasons: Vec<&str> = events.iter().filter_map(|e| e["reason"].as_str()).collect();
    assert_eq!(
        reasons.iter().filter(|r| **r == "Remediated").count(),
        4,
        "{events:?}\n{}",
        bin.output().join("\n")
    );

    // A replacement pod of the same ReplicaSet: the cooldown holds the workload.
    held_by_the_cooldown(&kube, &loki, addr, "api-2-ddddd");
    let cooldowns = get(addr, "/kube-sentinel/api/cooldowns");
    assert_eq!(
        cooldowns["cooldowns"].as_array().unwrap().len(),
        4,
        "{cooldowns}"
    );

    // Every write refuses a missing or wrong token and changes nothing.
    let settings_before = get(addr, "/kube-sentinel/api/settings");
    let clear = r#"{"rule": "oom", "namespace": "shop", "owner": "Deployment/api"}"#;
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer t0ken-for-test"),
        Some("Basic dDA="),
    ] {
        let headers: Vec<String> = auth.iter().map(|a| format!("Authorization: {a}")).collect();
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        for (path, body) in [
            ("/kube-sentinel/api/settings", r#"{"enabled": false}"#),
            ("/kube-sentinel/api/cooldowns/clear", clear),
        ] {
            let (status, answer) = curl(addr, "POST", path, &headers, body);
            assert_eq!(status, 401, "{path} with {auth:?}: {answer}");
        }
    }
    let (status, _) = curl(
        addr,
        "POST",
        "/kube-sentinel/settings",
        &["Content-Type: application/x-www-form-urlencoded"],
        "do=switches&enabled=on&dry_run=on&token=wrong",
    );
    assert_eq!(status, 401, "the settings form");
    assert_eq!(get(addr, "/kube-sentinel/api/settings"), settings_before);
    assert_eq!(get(addr, "/kube-sentinel/api/cooldowns"), cooldowns);

    // Cleared with the token, the workload is next refused by the spent namespace budget.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let (status, body) = curl(
        addr,
        "POST",
        "/kube-sentinel/api/cooldowns/clear",
        &[&bearer],
        clear,
    );
    assert_eq!(status, 200, "{body}");
    push(
        &loki,
        "shop",
        "api-2-ddddd",
        "container app was OOMKilled again",
    );
    let entries = wait(
        || audit(addr),
        |e| e.iter().any(|e| e["reason"] == "namespace_budget"),
    );
    assert!(
        kube.get("v1", "pods", Some("shop"), "api-2-ddddd")
            .is_some()
    );
    assert_eq!(entries.len(), 7, "{entries:?}");

    // Dry-run, in a namespace with budget left: said, not done, nothing spent.
    let (status, body) = curl(
        addr,
        "POST",
        "/kube-sentinel/api/settings",
        &[&bearer],
        r#"{"dry_run": true}"#,
    );
    assert_eq!(status, 200, "{body}");
    push(&loki, "pay", "pay-1-eeeee", "request dropped: queue full");
    let entries = wait(
        || audit(addr),
        |e| e.iter().any(|e| e["outcome"] == "dry_run"),
    );
    let dry = entries.iter().find(|e| e["outcome"] == "dry_run").unwrap();
    assert_eq!(dry["detail"], "dry run: would scale-up Deployment/pay");
    let pay = kube
        .get("apps/v1", "deployments", Some("pay"), "pay")
        .unwrap();
    assert_eq!(pay["spec"]["replicas"], 1);
    let settings = get(addr, "/kube-sentinel/api/settings");
    assert_eq!(settings["actions_this_hour"], 4, "{settings}");
    assert_eq!(settings["dry_run"], true);
    assert_eq!(
        metric(
            addr,
            "kube_sentinel_remediations_total{action=\"scale-up\",status=\"success\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            addr,
            "kube_sentinel_remediations_total{action=\"scale-up\",status=\"dry_run\"}"
        ),
        1.0
    );
    assert_eq!(metric(addr, "kube_sentinel_leader"), 1.0);
    bin.terminate(Duration::from_secs(5)).unwrap();
    assert_rbac_allows(&kube.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_leader_acts_and_another_replica_takes_over() {
    let kube = FakeKube::start().await.unwrap();
    seed(&kube);
    let loki = FakeLoki::start().unwrap();
    let pg = TestPostgres::start().unwrap();
    pg.create_database("sentinel").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube.write_kubeconfig(dir.path(), "default").unwrap();
    let extra = format!(
        "store:\n  type: postgres\n  url: {}\nremediation:\n  enabled: true\n  excluded_namespaces: []\n  leader_election:\n    enabled: true\n    lease_namespace: kube-sentinel\n    lease_duration: 4s\n    renew_deadline: 2s\n    retry_period: 500ms\n",
        pg.url("sentinel")
    );
    let cfg = config(dir.path(), &loki, &kubeconfig, &extra);
    let env = |name| {
        [(
            "BULWARK_SENTINEL_REMEDIATION__LEADER_ELECTION__IDENTITY",
            name,
        )]
    };
    let mut a = Running::start(Path::new(EXE), &["--config", &cfg], &env("sentinel-a")).unwrap();
    let a_addr = a.health_addr().unwrap();
    wait(|| metric(a_addr, "kube_sentinel_leader"), |v| *v == 1.0);
    let mut b = Running::start(Path::new(EXE), &["--config", &cfg], &env("sentinel-b")).unwrap();
    let b_addr = b.health_addr().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(metric(b_addr, "kube_sentinel_leader"), 0.0);

    push(&loki, "shop", "api-2-aaaaa", "container app was OOMKilled");
    let entries = wait(|| audit(b_addr), |e| !e.is_empty());
    // Both replicas read the line; give the follower time to act, were it to.
    std::thread::sleep(Duration::from_secs(3));
    let entries = if entries.len() == 1 {
        audit(b_addr)
    } else {
        entries
    };
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["replica"], "sentinel-a");
    assert_eq!(entries[0]["outcome"], "success");
    let deletes = kube
        .requests()
        .iter()
        .filter(|(m, p)| m == "DELETE" && p.contains("/pods/api-2-aaaaa"))
        .count();
    assert_eq!(deletes, 1);

    // The leader dies without releasing the Lease; the other takes over once it expires.
    a.kill().unwrap();
    wait(|| metric(b_addr, "kube_sentinel_leader"), |v| *v == 1.0);
    push(&loki, "shop", "web-1-bbbbb", "request dropped: queue full");
    let entries = wait(|| audit(b_addr), |e| e.len() >= 2);
    assert_eq!(entries[0]["replica"], "sentinel-b", "{entries:?}");
    assert_eq!(entries[0]["outcome"], "success");
    // The new leader keeps its predecessor's cooldown: api's replacement pod waits.
    held_by_the_cooldown(&kube, &loki, b_addr, "api-2-fffff");
    let web = kube
        .get("apps/v1", "deployments", Some("shop"), "web")
        .unwrap();
    assert_eq!(web["spec"]["replicas"], 3);
    b.terminate(Duration::from_secs(5)).unwrap();
    let requests = kube.requests();
    assert!(
        requests.iter().any(|(_, p)| p.contains("/leases/")),
        "elected through a Lease"
    );
    assert_rbac_allows(&requests);
}
