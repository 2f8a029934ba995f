//! The binary against the fake Loki, driven over HTTP as users would: every line counted
//! once (equal timestamps across pages, late lines inside the overlap), `/ready` while Loki
//! is down, the read API's answers, and rule reloads through a ConfigMap-style symlink swap.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bulwark_test_util::binary::{Running, http_get};
use bulwark_test_util::loki::FakeLoki;
use serde_json::Value;

use crate::EXE;

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, body) = http_get(addr, path).unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// Polls `path` until `done` holds for its JSON, or fails after 20 s.
fn wait_for(addr: SocketAddr, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (_, v) = get_json(addr, path);
        if done(&v) {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{path}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn config(dir: &Path, loki: &FakeLoki, extra: &str) -> String {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "loki:\n  url: {}\n  query: '{{namespace=~\".+\"}}'\n  poll_interval: 1s\n  lookback: 10m\n  overlap: 2m\n  limit: 7\n  tenant_id: team-a\nweb:\n  listen: 127.0.0.1:0\n  base_path: /kube-sentinel\n  auth:\n    public_reads: true\nremediation:\n  enabled: false\n{extra}",
            loki.url()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn push(loki: &FakeLoki, pod: &str, ts: i64, line: &str) {
    loki.push(
        &[("namespace", "shop"), ("pod", pod), ("container", "app")],
        ts,
        line,
    );
}

#[test]
fn every_line_is_counted_once_and_the_api_answers() {
    let loki = FakeLoki::start().unwrap();
    let t0 = now_ns() - 60_000_000_000;
    // 30 lines over 3 streams, 10 of them sharing one timestamp (more than a page of 7).
    for i in 0..30i64 {
        let pod = ["api-7d9f8b6c5-x2k4q", "api-7d9f8b6c5-bn4kd", "web-0"][(i % 3) as usize];
        let ts = if i < 10 { t0 } else { t0 + i * 1_000_000 };
        push(
            &loki,
            pod,
            ts,
            &format!(
                r#"{{"level":"error","msg":"dial tcp 10.0.0.{i}:5432: connect: connection refused"}}"#
            ),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &loki, "");
    let mut bin = Running::start(Path::new(EXE), &["--config", &cfg], &[]).unwrap();
    let addr = bin.health_addr().unwrap();
    let stats = wait_for(addr, "/kube-sentinel/api/stats", |v| v["occurrences"] == 30);
    // Two workloads (api's two pods group together), one message: two errors.
    assert_eq!(stats["unique_errors"], 2, "{stats}");
    assert_eq!(stats["by_priority"]["P3"], 30, "{stats}");

    // A late line inside the overlap, and a new one, are each counted once more.
    push(
        &loki,
        "web-0",
        t0 + 5,
        r#"{"level":"error","msg":"dial tcp 10.9.9.9:5432: connect: connection refused"}"#,
    );
    push(
        &loki,
        "web-0",
        now_ns() - 1_000_000_000,
        "panic: runtime error: index out of range",
    );
    let stats = wait_for(addr, "/kube-sentinel/api/stats", |v| v["occurrences"] == 32);
    std::thread::sleep(Duration::from_millis(2500));
    let (_, again) = get_json(addr, "/kube-sentinel/api/stats");
    assert_eq!(
        again["occurrences"], 32,
        "counted twice after more polls: {again}"
    );
    assert_eq!(stats["unique_errors"], 3);

    // The API: filters, paging, one error, rules, the rule tester; without the prefix too.
    let (status, list) = get_json(addr, "/kube-sentinel/api/errors?workload=api&page_size=1");
    assert_eq!(status, 200);
    assert_eq!(
        (
            list["total"].as_u64(),
            list["errors"].as_array().unwrap().len()
        ),
        (Some(1), 1)
    );
    let e = &list["errors"][0];
    assert_eq!(e["count"], 20);
    assert_eq!(e["rule"], "connection-refused");
    assert_eq!(
        e["normalized"],
        "dial tcp <IP>: connect: connection refused"
    );
    assert_eq!(e["samples"].as_array().unwrap().len(), 3);
    let id = e["id"].as_str().unwrap();
    let (status, one) = get_json(addr, &format!("/api/errors/{id}"));
    assert_eq!((status, one["error"]["id"].as_str()), (200, Some(id)));
    let (status, _) = get_json(addr, "/kube-sentinel/api/errors/0000000000000000");
    assert_eq!(status, 404);
    let (status, bad) = get_json(addr, "/kube-sentinel/api/errors?priority=P9");
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("priority"), "{bad}");
    let (_, p1) = get_json(addr, "/kube-sentinel/api/errors?priority=critical&since=5m");
    assert_eq!(p1["errors"][0]["rule"], "panic");
    let (_, rules) = get_json(addr, "/kube-sentinel/api/rules");
    assert_eq!(rules["source"], "built-in");
    assert_eq!(rules["rules"][0]["name"], "crashloop-backoff");
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "--data",
        ])
        .arg(r#"{"pattern":"(?i)refused","sample":"Connection REFUSED"}"#)
        .arg(format!("http://{addr}/kube-sentinel/api/rules/test"))
        .output()
        .unwrap();
    let tested: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(tested["matches"], true, "{tested}");

    // Every request carried the tenant; the metrics count the lines once.
    assert!(
        loki.requests()
            .iter()
            .all(|r| r.headers["x-scope-orgid"] == "team-a")
    );
    let (_, metrics) = http_get(addr, "/metrics").unwrap();
    assert!(
        metrics.contains("kube_sentinel_loki_lines_total 32"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"kube_sentinel_errors_total{priority="P1"} 1"#),
        "{metrics}"
    );
    bulwark_test_util::promtool::check_metrics(&metrics).unwrap();

    // Loki down: /ready says why; back up: ready again.
    loki.set_down(true);
    let start = Instant::now();
    loop {
        let (status, body) = http_get(addr, "/ready").unwrap();
        if status == 503 {
            assert!(body.contains("loki") && body.contains("503"), "{body}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{body}");
        std::thread::sleep(Duration::from_millis(100));
    }
    loki.set_down(false);
    let start = Instant::now();
    while http_get(addr, "/ready").unwrap().0 != 200 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, _) = bin.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success());
}

#[test]
fn rules_reload_on_a_configmap_symlink_swap_and_a_bad_file_keeps_the_old_ones() {
    let loki = FakeLoki::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The kubelet's layout: rules.yaml -> ..data/rules.yaml, ..data -> ..<timestamp>.
    let version = |name: &str, rules: &str| {
        let v = dir.path().join(name);
        std::fs::create_dir(&v).unwrap();
        std::fs::write(v.join("rules.yaml"), rules).unwrap();
        let tmp = dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(name, &tmp).unwrap();
        std::fs::rename(&tmp, dir.path().join("..data")).unwrap();
    };
    version(
        "..v1",
        "rules:\n  - {name: first, match: {pattern: boom}, priority: P1}\n",
    );
    std::os::unix::fs::symlink("..data/rules.yaml", dir.path().join("rules.yaml")).unwrap();
    let rules = dir.path().join("rules.yaml");
    let cfg = config(
        dir.path(),
        &loki,
        &format!("rules_file: {}\n", rules.display()),
    );
    let mut bin = Running::start(Path::new(EXE), &["--config", &cfg], &[]).unwrap();
    let addr = bin.health_addr().unwrap();
    let (_, r) = get_json(addr, "/api/rules");
    assert_eq!(r["rules"][0]["name"], "first");

    version(
        "..v2",
        "rules:\n  - {name: second, match: {pattern: boom}, priority: P2}\n",
    );
    wait_for(addr, "/api/rules", |v| v["rules"][0]["name"] == "second");

    version(
        "..v3",
        "rules:\n  - {name: third, match: {pattern: '(unclosed'}, priority: P2}\n",
    );
    let start = Instant::now();
    loop {
        let (_, metrics) = http_get(addr, "/metrics").unwrap();
        if metrics.contains("kube_sentinel_rules_last_reload_success 0") {
            assert!(
                metrics.contains(r#"kube_sentinel_rule_reloads_total{result="failure"} 1"#),
                "{metrics}"
            );
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, r) = get_json(addr, "/api/rules");
    assert_eq!(r["rules"][0]["name"], "second");
    let out = bin.output().join("\n");
    assert!(
        out.contains("does not load") && out.contains("rules[0].match.pattern"),
        "{out}"
    );
    bin.terminate(Duration::from_secs(5)).unwrap();
}

#[test]
fn check_validates_without_contacting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    // Nothing listens on port 9 of loopback; --check must not try.
    std::fs::write(&cfg, "loki:\n  url: http://127.0.0.1:9\n").unwrap();
    let (code, out) = bulwark_test_util::binary::run_to_exit(
        Path::new(EXE),
        &["--config", cfg.to_str().unwrap(), "--check"],
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("rules: 21 from built-in, 21 enabled") && out.contains("generic-error"),
        "{out}"
    );
    let rules = dir.path().join("r.yaml");
    std::fs::write(&rules, "rules:\n  - {name: x, match: {pattern: a}, priority: P1, remediation: {action: exec-script}}\n").unwrap();
    let (code, out) = bulwark_test_util::binary::run_to_exit(
        Path::new(EXE),
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--rules",
            rules.to_str().unwrap(),
            "--check",
        ],
        &[],
    );
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains("r.yaml")
            && out.contains("rules[0].remediation.action")
            && out.contains("\\\"x\\\""),
        "{out}"
    );
    // A password in the file is refused; a password variable that is not set is named.
    std::fs::write(
        &cfg,
        "loki:\n  username: u\n  password_env: SENTINEL_TEST_UNSET\n",
    )
    .unwrap();
    let (code, out) = bulwark_test_util::binary::run_to_exit(
        Path::new(EXE),
        &["--config", cfg.to_str().unwrap(), "--check"],
        &[],
    );
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("SENTINEL_TEST_UNSET"), "{out}");
}

/// Sentinels sharing a PostgreSQL store: one killed mid-window and started again, then a
/// second replica beside it; psql counts the lines.
#[test]
fn killed_and_restarted_and_two_replicas_count_every_line_once() {
    let pg = bulwark_test_util::postgres::TestPostgres::start().unwrap();
    pg.create_database("sentinel").unwrap();
    let loki = FakeLoki::start().unwrap();
    let now = now_ns();
    let corpus = bulwark_test_util::logs::generate(5, 3000, now - 240_000_000_000);
    // The corpus spaces lines 1 ms apart from its start; stretch it to 4 minutes with ties.
    for (i, l) in corpus.iter().enumerate() {
        let labels: Vec<(&str, &str)> = l
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        loki.push(
            &labels,
            now - 240_000_000_000 + (i as i64 / 3) * 200_000_000,
            &l.line,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let extra = format!("store:\n  type: postgres\n  url: {}\n", pg.url("sentinel"));
    let cfg = config(dir.path(), &loki, &extra);
    let counted = || -> i64 {
        let out = pg
            .psql(
                "sentinel",
                "SELECT coalesce(sum(count), 0) FROM sentinel_errors",
            )
            .unwrap_or_default();
        out.trim().parse().unwrap_or(-1)
    };

    let mut a = Running::start(Path::new(EXE), &["--config", &cfg], &[]).unwrap();
    a.health_addr().unwrap();
    let start = Instant::now();
    while counted() <= 0 {
        assert!(start.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(20));
    }
    a.kill().unwrap();
    let at_kill = counted();
    assert!(
        at_kill < 3000,
        "the kill must come mid-window ({at_kill} counted)"
    );

    let mut a = Running::start(Path::new(EXE), &["--config", &cfg], &[]).unwrap();
    let addr_a = a.health_addr().unwrap();
    let start = Instant::now();
    while !a
        .output()
        .iter()
        .any(|l| l.contains("Resuming from the saved cursor"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{:?}",
            a.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut b = Running::start(Path::new(EXE), &["--config", &cfg], &[]).unwrap();
    let addr_b = b.health_addr().unwrap();
    for i in 0..500 {
        push(
            &loki,
            "late-0",
            now - 30_000_000_000 + i,
            "error: late line inside the overlap",
        );
    }
    for addr in [addr_a, addr_b] {
        wait_for(addr, "/api/stats", |v| v["occurrences"] == 3500);
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(counted(), 3500, "after more polls by both replicas");
    let lines = pg
        .psql("sentinel", "SELECT count(*) FROM sentinel_lines")
        .unwrap();
    assert_eq!(lines.trim(), "3500");
    a.terminate(Duration::from_secs(5)).unwrap();
    b.terminate(Duration::from_secs(5)).unwrap();
}
