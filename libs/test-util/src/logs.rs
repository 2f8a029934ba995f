//! A realistic, reproducible mix of Kubernetes error logs: the corpus of sentinel's benchmark,
//! the lines its tests serve from the fake Loki, and the sample the local main job shows.
//!
//! Workloads of every kind (Deployments with ReplicaSet-hashed pods, StatefulSets, DaemonSets,
//! Jobs) in several namespaces, each logging in one format (zap JSON, logrus JSON, logfmt,
//! klog, plain text), from message templates whose volatile parts (addresses, durations, ids,
//! counts, names) change from line to line. The same seed gives the same lines.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// One log line with its stream's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `namespace`, `pod`, `container`, `app`, sorted by name.
    pub labels: Vec<(String, String)>,
    pub timestamp_ns: i64,
    pub line: String,
}

#[derive(Debug, Clone, Copy)]
enum Format {
    Zap,
    Logrus,
    Logfmt,
    Klog,
    Text,
}

struct Workload {
    namespace: &'static str,
    pods: Vec<String>,
    container: &'static str,
    app: String,
    format: Format,
}

const NAMESPACES: [&str; 8] = [
    "shop", "payments", "auth", "search", "data", "ingest", "platform", "batch",
];
const NAMES: [&str; 20] = [
    "api",
    "web",
    "checkout",
    "cart",
    "orders",
    "billing",
    "login",
    "session",
    "indexer",
    "query",
    "postgres",
    "redis",
    "kafka-consumer",
    "ingest-worker",
    "fluent-bit",
    "node-exporter",
    "gateway",
    "scheduler",
    "report",
    "migrate",
];
const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Message templates: `{ip}`, `{port}`, `{dur}`, `{n}`, `{uuid}`, `{hex}`, `{status}`,
/// `{host}`, `{email}`, `{pod}`, `{ts}` are filled per line.
const TEMPLATES: &[&str] = &[
    "failed to connect to {ip}:{port}: connection refused",
    "dial tcp {ip}:{port}: connect: connection refused",
    "request {uuid} failed after {dur}: context deadline exceeded",
    "GET /api/v1/orders/{n} returned {status} in {dur}",
    "upstream request timeout after {dur} calling {host}",
    "Operation cannot be fulfilled on deployments.apps \"{pod}\": the object has been modified; please apply your changes to the latest version and try again",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "x509: certificate has expired or is not yet valid: current time {ts} is after {ts}",
    "dial tcp: lookup {host} on {ip}:53: no such host",
    "pq: duplicate key value violates unique constraint \"orders_pkey\" (order {n})",
    "ERROR: could not serialize access due to concurrent update (SQLSTATE 40001) in transaction {hex}",
    "user {email} is forbidden to access /admin/{n}",
    "error processing message {n} from topic orders at offset {n}: broker not available",
    "failed to flush chunk {hex} to {host}: retrying in {dur}",
    "Readiness probe failed: Get \"http://{ip}:{port}/ready\": context deadline exceeded",
    "write /var/lib/data/segment-{n}.log: no space left on device",
    "Error: Cannot find module 'express' from '/app/server.js'",
    "java.lang.IllegalStateException: Connection pool exhausted after {dur} (active={n}, idle={n})",
    "Traceback (most recent call last): File \"/app/worker.py\", line {n}, in handle",
    "redis: connection pool timeout after {dur}",
    "cache miss for key session:{hex}, falling back to the database",
    "slow query took {dur}: SELECT * FROM orders WHERE customer_id = {n}",
    "job {uuid} failed with exit code {n}",
    "rate limit exceeded for client {ip}, retry after {dur}",
    "failed to renew lease platform/{pod}: timed out waiting for the condition",
    "OOMKilled: container exceeded its memory limit of {n}Mi",
    "Back-off restarting failed container app in pod {pod}",
    "error syncing pod {pod}: ImagePullBackOff",
    "failed to fetch https://{host}/v2/manifests/{hex}: unexpected status {status}",
    "could not acquire lock {hex} held by {pod} for {dur}",
    "unexpected EOF while reading response body from {ip}:{port}",
    "TLS handshake error from {ip}:{port}: remote error: tls: bad certificate",
    "invalid token for user {email}: signature is invalid",
    "batch {n} failed: {n} of {n} records rejected",
    "exception while handling request {uuid}: NullPointerException at OrderService.java:{n}",
];

/// `n` lines from `seed`, one per millisecond starting at `start_ns`, every 100th a few
/// nanoseconds apart so that equal and near timestamps occur as they do in Loki.
pub fn generate(seed: u64, n: usize, start_ns: i64) -> Vec<LogLine> {
    let mut rng = StdRng::seed_from_u64(seed);
    let workloads = workloads(&mut rng);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // A few workloads log most: pick with a skew.
        let w = &workloads[skewed(&mut rng, workloads.len())];
        let pod = &w.pods[rng.random_range(0..w.pods.len())];
        let template = TEMPLATES[skewed(&mut rng, TEMPLATES.len())];
        let message = fill(&mut rng, template, &w.pods);
        let ts = start_ns + i as i64 * 1_000_000 - if i % 100 == 1 { 999_999 } else { 0 };
        let line = format_line(&mut rng, w.format, &message, ts);
        let mut labels = vec![
            ("app".to_owned(), w.app.clone()),
            ("container".to_owned(), w.container.to_owned()),
            ("namespace".to_owned(), w.namespace.to_owned()),
            ("pod".to_owned(), pod.clone()),
        ];
        labels.sort();
        out.push(LogLine {
            labels,
            timestamp_ns: ts,
            line,
        });
    }
    out
}

fn skewed(rng: &mut StdRng, len: usize) -> usize {
    // The minimum of two uniform draws: early entries are about twice as likely as late ones.
    rng.random_range(0..len).min(rng.random_range(0..len))
}

fn safe(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| char::from(SAFE[rng.random_range(0..SAFE.len())]))
        .collect()
}

fn workloads(rng: &mut StdRng) -> Vec<Workload> {
    let mut out = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        for namespace in NAMESPACES.iter().skip(i % 3).step_by(3) {
            let pods = match rng.random_range(0..10) {
                // StatefulSet
                0 | 1 => (0..3).map(|o| format!("{name}-{o}")).collect(),
                // DaemonSet or Job
                2 => (0..4).map(|_| format!("{name}-{}", safe(rng, 5))).collect(),
                // Deployment, with pods of two ReplicaSets
                _ => {
                    let hashes = [safe(rng, 9), safe(rng, 10)];
                    (0..4)
                        .map(|p| format!("{name}-{}-{}", hashes[p % 2], safe(rng, 5)))
                        .collect()
                }
            };
            let format = match rng.random_range(0..20) {
                0..=7 => Format::Zap,
                8..=9 => Format::Logrus,
                10..=12 => Format::Logfmt,
                13..=15 => Format::Klog,
                _ => Format::Text,
            };
            out.push(Workload {
                namespace,
                pods,
                container: if rng.random_range(0..8) == 0 {
                    "sidecar"
                } else {
                    "app"
                },
                app: (*name).to_owned(),
                format,
            });
        }
    }
    out
}

fn fill(rng: &mut StdRng, template: &str, pods: &[String]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = open + rest[open..].find('}').unwrap_or(0);
        let value = match &rest[open + 1..close] {
            "ip" => format!(
                "10.{}.{}.{}",
                rng.random_range(0..255),
                rng.random_range(0..255),
                rng.random_range(1..255)
            ),
            "port" => rng.random_range(1024..65535).to_string(),
            "dur" => match rng.random_range(0..3) {
                0 => format!("{}ms", rng.random_range(1..1000)),
                1 => format!("{}.{}s", rng.random_range(1..60), rng.random_range(0..10)),
                _ => format!("{}m{}s", rng.random_range(1..10), rng.random_range(0..60)),
            },
            "n" => rng.random_range(0..100_000).to_string(),
            "uuid" => {
                let h: u128 = rng.random();
                let s = format!("{h:032x}");
                format!(
                    "{}-{}-{}-{}-{}",
                    &s[..8],
                    &s[8..12],
                    &s[12..16],
                    &s[16..20],
                    &s[20..]
                )
            }
            "hex" => format!(
                "{:012x}",
                rng.random::<u64>() & 0xffff_ffff_ffff | 0x1000_0000_0000
            ),
            "status" => ["500", "502", "503", "504", "429"][rng.random_range(0..5)].to_owned(),
            "host" => [
                "db.internal",
                "payments.svc",
                "api.example.com",
                "kafka-0.kafka",
            ][rng.random_range(0..4)]
            .to_owned(),
            "email" => format!("user{}@example.com", rng.random_range(0..5000)),
            "pod" => pods[rng.random_range(0..pods.len())].clone(),
            "ts" => format!(
                "2026-12-{:02}T{:02}:{:02}:{:02}Z",
                rng.random_range(1..29),
                rng.random_range(0..24),
                rng.random_range(0..60),
                rng.random_range(0..60)
            ),
            _ => String::new(),
        };
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn format_line(rng: &mut StdRng, format: Format, message: &str, ts: i64) -> String {
    let secs = ts.div_euclid(1_000_000_000);
    let micros = ts.rem_euclid(1_000_000_000) / 1000;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let iso = format!("2026-12-05T{h:02}:{m:02}:{s:02}.{micros:06}Z");
    let caller = format!("internal/handler.go:{}", rng.random_range(20..900));
    match format {
        Format::Zap => match message.split_once(": ") {
            // zap's `logger.Error("msg", zap.Error(err))`.
            Some((msg, err)) if rng.random_range(0..2) == 0 => format!(
                r#"{{"level":"error","ts":"{iso}","caller":"{caller}","msg":{},"error":{},"trace_id":"{:032x}"}}"#,
                json_string(msg),
                json_string(err),
                rng.random::<u128>()
            ),
            _ => format!(
                r#"{{"level":"error","ts":"{iso}","caller":"{caller}","msg":{}}}"#,
                json_string(message)
            ),
        },
        Format::Logrus => format!(
            r#"{{"level":"error","msg":{},"time":"{iso}","component":"worker"}}"#,
            json_string(message)
        ),
        Format::Logfmt => format!(
            "ts={iso} level=error caller={caller} msg={}",
            json_string(message)
        ),
        Format::Klog => {
            format!("E1205 {h:02}:{m:02}:{s:02}.{micros:06}       1 {caller}] {message}")
        }
        Format::Text => format!("{iso} ERROR [main] {message}"),
    }
}
