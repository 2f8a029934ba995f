//! Runs the fuzz target's properties under `cargo test`: on the fuzzer's committed seeds (real
//! AdmissionReviews), and on generated pods (containers, init containers, volumes, users,
//! ports and annotation sets drawn at random) through the whole admission path: the review in,
//! the response out, its patch applied by `json-patch`, the result read as a k8s-openapi Pod.

use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use super::{WEBHOOK, check, check_object, review};
use crate::Verdict;

/// Annotation keys the generator draws from besides every known one: dynamic names, a
/// misspelling and keys that are not ours.
const EXTRA_KEYS: &[&str] = &[
    "secret-db",
    "secret-x",
    "file-cert",
    "unknown-key",
    "example.com/a~b",
];

/// Every key the generator draws from.
fn keys() -> Vec<&'static str> {
    bulwark_inject::annotations::KNOWN
        .iter()
        .chain(EXTRA_KEYS)
        .copied()
        .filter(|k| *k != "inject")
        .collect()
}

/// Values the generator draws from: valid and invalid ones, and shapes easy to get wrong.
const VALUES: &[&str] = &[
    "true",
    "false",
    "db",
    "keeper-auth",
    "",
    " ",
    "a, b",
    "/keeper/secrets/x",
    "/app/x",
    "keeper://UID/field/password",
    "keeper://UID/field/x[0][first]:/keeper/secrets/y",
    "A/B/field/p:/keeper/secrets/p",
    "rec[field]",
    "rec:c.pem:/keeper/secrets/c.pem",
    r"a\/b",
    "secrets:\n  - record: a\n    path: a\n",
    "folders:\n  - path: A/B\n",
    "secrets: [",
    "5m",
    "5s",
    "SIGHUP",
    "0440",
    "1000:3000",
    "100m",
    "64Mi",
    "app",
    "migrate",
    "worker",
    "x~y/z",
    "AbCdEfGhIjKlMnOpQrSt_-",
    "json",
    "env",
    "{{ .login }}",
    "\u{0}",
    "keeper://",
    "[]",
];

fn one_of(items: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(items)
}

fn user() -> impl Strategy<Value = Option<i64>> {
    proptest::option::of(prop_oneof![
        Just(0_i64),
        Just(1000),
        Just(2000),
        Just(65532)
    ])
}

/// A pod's user and `fsGroup`.
fn pod_users() -> impl Strategy<Value = (Option<i64>, Option<i64>)> {
    (user(), proptest::option::of(Just(3000_i64)))
}

/// A container of an application: a name, maybe mounts, ports and a user.
fn container(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    // Most draws are benign, so that many pods are injected; the rest conflict with injection.
    let mount = prop_oneof![
        8 => Just(json!({"name": "cache", "mountPath": "/cache"})),
        1 => Just(json!({"name": "keeper-secrets", "mountPath": "/keeper/secrets"})),
        1 => Just(json!({"name": "cache", "mountPath": "/keeper/secrets/"})),
    ];
    (
        one_of(names),
        proptest::option::of(proptest::collection::vec(mount, 0..3)),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![8 => Just(8080_i32), 1 => Just(9102)],
            0..2,
        )),
        user(),
    )
        .prop_map(|(name, mounts, ports, uid)| {
            let mut c = json!({"name": name, "image": format!("{name}:1")});
            if let Some(mounts) = mounts {
                c["volumeMounts"] = json!(mounts);
            }
            if let Some(ports) = ports {
                let ports: Vec<Value> = ports.iter().map(|p| json!({"containerPort": p})).collect();
                c["ports"] = json!(ports);
            }
            if let Some(uid) = uid {
                c["securityContext"] = json!({"runAsUser": uid});
            }
            c
        })
}

/// A pod as a Deployment creates it, with containers, volumes and annotations drawn at random.
fn pod() -> impl Strategy<Value = Value> {
    let volume = prop_oneof![
        8 => Just(json!({"name": "cache", "emptyDir": {}})),
        2 => Just(json!({"name": "keeper-secrets", "emptyDir": {"medium": "Memory"}})),
        1 => Just(json!({"name": "keeper-secrets", "emptyDir": {}})),
        1 => Just(json!({"name": "keeper-ca-cert", "configMap": {"name": "x"}})),
    ];
    let annotations =
        proptest::collection::vec((proptest::sample::select(keys()), one_of(VALUES)), 0..4);
    (
        proptest::option::weighted(0.9, annotations),
        proptest::collection::vec(container(&["app", "proxy", "worker"]), 1..4),
        proptest::option::of(proptest::collection::vec(
            container(&["migrate", "setup", "wait", "keeper-secrets-init"]),
            0..3,
        )),
        proptest::option::of(proptest::collection::vec(volume, 0..3)),
        pod_users(),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![8 => Just("linux"), 1 => Just("windows")]),
    )
        .prop_map(
            |(annotations, containers, init, volumes, (uid, fs_group), share, os)| {
                let mut pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"generateName": "web-7d4b9c-", "namespace": "shop"},
                    "spec": {"containers": unique(containers)},
                });
                if let Some(pairs) = annotations {
                    let mut map = Map::new();
                    map.insert("keeper.security/inject".into(), "true".into());
                    map.insert("keeper.security/secret".into(), "db".into());
                    for (k, v) in pairs {
                        let k = if k.contains('/') {
                            k.to_owned()
                        } else {
                            format!("keeper.security/{k}")
                        };
                        map.insert(k, v.into());
                    }
                    pod["metadata"]["annotations"] = Value::Object(map);
                }
                let spec = &mut pod["spec"];
                if let Some(init) = init {
                    spec["initContainers"] = json!(unique(init));
                }
                if let Some(volumes) = volumes {
                    let mut seen = Vec::new();
                    let volumes: Vec<Value> = volumes
                        .into_iter()
                        .filter(|v| {
                            let name = v["name"].clone();
                            !seen.contains(&name) && {
                                seen.push(name);
                                true
                            }
                        })
                        .collect();
                    spec["volumes"] = json!(volumes);
                }
                let mut security = Map::new();
                if let Some(uid) = uid {
                    security.insert("runAsUser".into(), uid.into());
                }
                if let Some(gid) = fs_group {
                    security.insert("fsGroup".into(), gid.into());
                }
                if !security.is_empty() {
                    spec["securityContext"] = Value::Object(security);
                }
                if let Some(share) = share {
                    spec["shareProcessNamespace"] = share.into();
                }
                if let Some(os) = os {
                    spec["os"] = json!({"name": os});
                }
                pod
            },
        )
}

/// Containers with distinct names, as the API server requires.
fn unique(containers: Vec<Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for c in containers {
        if !out.iter().any(|o| o["name"] == c["name"]) {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_seed_corpus() {
    // Relative to the package root, where cargo runs tests.
    let dir = std::path::Path::new("fuzz/seeds/admission");
    let mut seeds = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        seeds += 1;
    }
    assert!(seeds >= 8, "only {seeds} seeds in {}", dir.display());
}

#[test]
fn odd_inputs() {
    for input in [
        "inject=true\nksm-config=keeper-auth\nsecret=db",
        "inject=true\nsecret=db",
        "inject=true\nksm-config=a\nsecret=db\ninit-only=true\nsignal=SIGHUP",
        "inject=true\x1eksm-config=a\x1econfig=secrets:\n  - record: a\n    template: x\n",
        "{\"metadata\": {\"annotations\": {\"keeper.security/inject\": \"true\"}}, \"spec\": {\"containers\": null}}",
        "{\"metadata\": null}",
        "{\"metadata\": {}, \"spec\": {\"containers\": [{\"name\": \"a\", \"volumeMounts\": null}]}}",
        "{\"request\": 7}",
        "{}",
        "[1, 2]",
        "",
    ] {
        check(input.as_bytes());
    }
    check(&[0xff, 0xfe]);
}

#[test]
fn generated_pods_through_admission() {
    let injected = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&pod(), |pod| {
        check_object(&pod);
        if WEBHOOK.admit(&review(&pod)).verdict == Verdict::Injected {
            injected.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generator must reach injection often enough to be worth running.
    let injected = injected.into_inner();
    eprintln!("{injected} of 2000 generated pods were injected");
    assert!(injected > 300, "only {injected} of 2000 pods were injected");
}
