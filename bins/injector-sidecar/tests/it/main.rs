//! Process-level tests of `injector-sidecar` against the fake Keeper server: the init
//! container's delivery, the sidecar's refresh, the cache across Keeper outages and restarts,
//! `fail-on-error`, the CLI contract, and that no secret value ever reaches the logs.

// Integration tests: a panic is how a failure is reported.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use bulwark_sidecar_spec::{
    Auth, FileMode, Folder, FolderRef, Format, Index, RecordRef, Secret, Selector, SidecarSpec,
    Source,
};
use bulwark_test_util::binary::{self, Running, http_get};
use bulwark_test_util::cloud::FakeGcp;
use bulwark_test_util::keeper::{self, FakeKeeper, Field, File};

mod launch;

const EXE: &str = env!("CARGO_BIN_EXE_injector-sidecar");

/// Values that must never appear in any log line.
const PASSWORD: &str = "db-pa55word-7f3a";
const NEW_PASSWORD: &str = "rotated-pa55word-91c2";
const API_KEY: &str = "api-key-value-5d8e";
const FILE_CONTENT: &str = "-----BEGIN CERTIFICATE-----\nsecret-file-body\n";

struct Pod {
    keeper: FakeKeeper,
    dir: tempfile::TempDir,
    spec: SidecarSpec,
    config: String,
    db_uid: String,
}

fn record_ref(name: &str) -> RecordRef {
    RecordRef {
        folder: Vec::new(),
        name: name.to_owned(),
    }
}

fn secret(mount: &str, path: &str, format: Format, source: Source) -> Secret {
    Secret {
        path: format!("{mount}/{path}"),
        source,
        format,
        template: None,
        env_prefix: None,
        mode: None,
    }
}

impl Pod {
    fn new(refresh: &str) -> Pod {
        let keeper = FakeKeeper::start().unwrap();
        let db = keeper::Record::login("db", "app", PASSWORD).custom(Field::labeled(
            "text",
            "host",
            ["db.internal"],
        ));
        let api = keeper::Record::login("api", "svc", API_KEY)
            .file(File::new("ca.pem", FILE_CONTENT).with_title("CA bundle"));
        let prod = keeper::Folder::shared("Production");
        keeper.set_folder(prod.clone()).unwrap();
        let queue = keeper::Record::login("queue", "q", "queue-pass-0b1c").in_folder(prod.uid());
        for r in [&db, &api, &queue] {
            keeper.set_record(r.clone()).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("secrets");
        std::fs::create_dir(&mount).unwrap();
        let m = mount.to_str().unwrap().to_owned();
        let mut env = secret(
            &m,
            "db.env",
            Format::Env,
            Source::Record {
                record: record_ref("db"),
                fields: vec!["login".to_owned(), "password".to_owned()],
            },
        );
        env.env_prefix = Some("DB_".to_owned());
        let mut template = secret(
            &m,
            "conn",
            Format::Template,
            Source::Record {
                record: record_ref(db.uid()),
                fields: Vec::new(),
            },
        );
        template.template =
            Some("postgres://{{ .login }}:{{ .password }}@{{ .host }}/app".to_owned());
        let spec = SidecarSpec {
            version: 1,
            mount_path: m.clone(),
            auth: Auth::Secret,
            secrets: vec![
                secret(
                    &m,
                    "db.json",
                    Format::Json,
                    Source::Record {
                        record: record_ref("db"),
                        fields: Vec::new(),
                    },
                ),
                env,
                secret(
                    &m,
                    "api-key",
                    Format::Raw,
                    Source::Notation {
                        notation: "keeper://api/field/password".to_owned(),
                        record: record_ref("api"),
                        selector: Selector::Field {
                            name: "password".to_owned(),
                            index: Some(Index::At(0)),
                            property: None,
                        },
                    },
                ),
                secret(
                    &m,
                    "ca.pem",
                    Format::Raw,
                    Source::File {
                        record: record_ref("api"),
                        file: "CA bundle".to_owned(),
                    },
                ),
                template,
            ],
            folders: vec![Folder {
                folder: FolderRef::Path(vec!["Production".to_owned()]),
                output_dir: format!("{m}/prod"),
            }],
            refresh_interval: refresh.parse().unwrap(),
            fail_on_error: true,
            strict_lookup: false,
            file_mode: FileMode::OWNER_READ,
            signal: None,
            ca_cert_file: Some(keeper.write_ca(dir.path()).unwrap().display().to_string()),
            health_port: 9102,
        };
        // A one-time token, base64 as a Kubernetes Secret usually carries it.
        let token = keeper.one_time_token();
        let config = base64::engine::general_purpose::STANDARD
            .encode(keeper.token_config(&token).to_string());
        Pod {
            keeper,
            dir,
            spec,
            config,
            db_uid: db.uid().to_owned(),
        }
    }

    fn mount(&self) -> &Path {
        Path::new(&self.spec.mount_path)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BULWARK_INJECT_SPEC", self.spec_json()),
            ("BULWARK_INJECT_KSM_CONFIG", self.config.clone()),
            ("BULWARK_INJECT_POD_NAME", "web-1".to_owned()),
            ("BULWARK_INJECT_POD_NAMESPACE", "prod".to_owned()),
            (
                "BULWARK_INJECTOR_SIDECAR_HEALTH__LISTEN",
                "127.0.0.1:0".to_owned(),
            ),
            // An unreachable Keeper is retried for this long before init fails.
            ("BULWARK_INJECTOR_SIDECAR_INIT_RETRY_FOR", "2s".to_owned()),
        ]
    }

    fn spec_json(&self) -> String {
        self.spec.to_json()
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.mount().join(path)).unwrap()
    }
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn assert_no_secrets(lines: &str) {
    for value in [
        PASSWORD,
        NEW_PASSWORD,
        API_KEY,
        "secret-file-body",
        "queue-pass-0b1c",
    ] {
        assert!(
            !lines.contains(value),
            "a secret value reached the logs:\n{lines}"
        );
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn init_delivers_every_kind_of_secret_and_the_sidecar_refreshes_and_caches() {
    let pod = Pod::new("1s");
    let env = pod.env();

    // The init container: one fetch, every file written, exit 0.
    let started = Instant::now();
    let (code, init_log) =
        binary::run_to_exit(Path::new(EXE), &["--mode", "init"], &borrowed(&env));
    let took = started.elapsed();
    assert_eq!(code, Some(0), "{init_log}");
    assert_no_secrets(&init_log);
    assert_eq!(pod.keeper.bound_clients(), 1);
    let db: serde_json::Value = serde_json::from_str(&pod.read("db.json")).unwrap();
    assert_eq!(db["password"], PASSWORD);
    assert_eq!(db["host"], "db.internal");
    assert_eq!(
        pod.read("db.env"),
        format!("DB_LOGIN='app'\nDB_PASSWORD='{PASSWORD}'\n")
    );
    assert_eq!(pod.read("api-key"), API_KEY);
    assert_eq!(pod.read("ca.pem"), FILE_CONTENT);
    assert_eq!(
        pod.read("conn"),
        format!("postgres://app:{PASSWORD}@db.internal/app")
    );
    let queue: serde_json::Value = serde_json::from_str(&pod.read("prod/queue.json")).unwrap();
    assert_eq!(queue["login"], "q");
    let mode = std::fs::metadata(pod.mount().join("db.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o400);
    let cache_mode = std::fs::metadata(pod.mount().join("..cache"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(cache_mode & 0o777, 0o600);
    eprintln!("init mode delivered 6 files in {took:?} (debug build)");

    // The sidecar starts from what init wrote, with the binding init made (no second bind).
    let mut sidecar =
        Running::start(Path::new(EXE), &["--mode", "sidecar"], &borrowed(&env)).unwrap();
    let addr = sidecar.health_addr().unwrap();
    wait_until("readiness", Duration::from_secs(10), || {
        http_get(addr, "/ready").is_ok_and(|(s, _)| s == 200)
    });

    // A change in Keeper reaches the files within a refresh or two.
    pod.keeper
        .update_field(&pod.db_uid, "password", [NEW_PASSWORD])
        .unwrap();
    wait_until("the rotated password", Duration::from_secs(10), || {
        std::fs::read_to_string(pod.mount().join("db.json")).is_ok_and(|t| t.contains(NEW_PASSWORD))
    });
    assert!(pod.read("db.env").contains(NEW_PASSWORD));
    assert_eq!(
        pod.keeper.bound_clients(),
        1,
        "the sidecar bound the token again"
    );

    // Keeper goes down: the cache serves, the seed's line is logged, readiness holds.
    pod.keeper.set_down(true);
    let line = sidecar
        .wait_for_log("using cached secrets", Duration::from_secs(15))
        .unwrap();
    assert_eq!(line["level"], "warn");
    assert_eq!(line["reason"], "keeper API unavailable");
    assert!(line["age"].as_str().unwrap().ends_with('s'), "{line}");
    assert_eq!(http_get(addr, "/ready").unwrap().0, 200);
    assert!(pod.read("db.json").contains(NEW_PASSWORD));
    let (_, metrics) = http_get(addr, "/metrics").unwrap();
    bulwark_test_util::promtool::check_metrics(&metrics).unwrap();
    for name in [
        "keeper_sidecar_refresh_total{result=\"cached\"}",
        "keeper_sidecar_refresh_errors_total{reason=",
        "keeper_sidecar_secrets_fetched_total",
        "keeper_sidecar_fetch_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    let (status, took) = sidecar.terminate(Duration::from_secs(5)).unwrap();
    assert!(status.success());
    assert!(took < Duration::from_secs(5));
    assert_no_secrets(&sidecar.output().join("\n"));

    // A restarted sidecar with Keeper still down serves the cache from the tmpfs volume.
    let mut again =
        Running::start(Path::new(EXE), &["--mode", "sidecar"], &borrowed(&env)).unwrap();
    let addr = again.health_addr().unwrap();
    again
        .wait_for_log("using cached secrets", Duration::from_secs(15))
        .unwrap();
    assert_eq!(http_get(addr, "/ready").unwrap().0, 200);
    assert!(pod.read("db.json").contains(NEW_PASSWORD));
    again.terminate(Duration::from_secs(5)).unwrap();
    assert_no_secrets(&again.output().join("\n"));
    drop(pod.dir);
}

#[test]
fn fail_on_error_decides_whether_the_pod_starts() {
    let mut pod = Pod::new("5m");
    pod.keeper.set_down(true);
    let (code, out) =
        binary::run_to_exit(Path::new(EXE), &["--mode", "init"], &borrowed(&pod.env()));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no cached secrets to serve"), "{out}");
    assert!(out.contains("gave up after"), "{out}");
    assert!(
        out.contains("Keeper cannot answer yet; trying again."),
        "{out}"
    );
    pod.spec.fail_on_error = false;
    let (code, out) =
        binary::run_to_exit(Path::new(EXE), &["--mode", "init"], &borrowed(&pod.env()));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("starting the pod without them"), "{out}");

    // A record that does not exist is a clear error naming the file, not a cache fallback.
    pod.keeper.set_down(false);
    pod.spec.fail_on_error = true;
    pod.spec.secrets[0].source = Source::Record {
        record: record_ref("no-such-record"),
        fields: Vec::new(),
    };
    let (code, out) =
        binary::run_to_exit(Path::new(EXE), &["--mode", "init"], &borrowed(&pod.env()));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("db.json: no record \\\"no-such-record\\\""),
        "{out}"
    );
}

#[test]
fn unusable_inputs_exit_64_naming_what_is_wrong() {
    let (code, out) = binary::run_to_exit(Path::new(EXE), &["--mode", "init"], &[]);
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("BULWARK_INJECT_SPEC is not set"), "{out}");

    // Whatever fail-on-error says: no retry and no cache can fix these.
    let mut pod = Pod::new("5m");
    pod.spec.fail_on_error = false;
    pod.config = base64::engine::general_purpose::STANDARD.encode(r#"{"hostname":"x"}"#);
    for mode in ["init", "sidecar"] {
        let (code, out) =
            binary::run_to_exit(Path::new(EXE), &["--mode", mode], &borrowed(&pod.env()));
        assert_eq!(code, Some(64), "{mode}: {out}");
        assert!(
            out.contains(
                "BULWARK_INJECT_KSM_CONFIG: the KSM configuration has no appKey or clientKey"
            ),
            "{mode}: {out}"
        );
    }
    // A token Keeper never issued (mistyped, or another application's).
    pod.config = base64::engine::general_purpose::STANDARD.encode(
        pod.keeper
            .token_config("gLrtbJbzJt0ZBb5dZ4ENtlN3t_kOHXd6CvcW-Q4Cw-k")
            .to_string(),
    );
    let (code, out) =
        binary::run_to_exit(Path::new(EXE), &["--mode", "init"], &borrowed(&pod.env()));
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("the one-time token cannot be bound"), "{out}");
    assert!(!out.contains("gLrtbJ"), "the token leaked: {out}");
}

#[test]
fn cli_contract() {
    binary::check_cli_contract(
        Path::new(EXE),
        "injector-sidecar",
        &[],
        "health:\n  listen: nowhere\n",
        "health.listen",
    );
}

#[test]
fn serves_health_and_metrics_then_stops_on_sigterm() {
    let pod = Pod::new("5m");
    binary::check_service_lifecycle(
        Path::new(EXE),
        &["--mode", "sidecar"],
        &borrowed(&pod.env()),
    );
}

#[test]
fn a_configuration_stored_in_a_cloud_is_fetched_with_the_pods_identity() {
    let mut pod = Pod::new("5m");
    let gcp = FakeGcp::start().unwrap();
    gcp.add_version("projects/acme/secrets/ksm", pod.config.as_bytes());
    pod.spec.auth = Auth::GcpSecretManager {
        secret_id: "projects/acme/secrets/ksm".to_owned(),
    };
    // One CA file for Keeper and for the cloud endpoint, as keeper.security/ca-cert-* gives.
    let ca = pod.dir.path().join("cas.pem");
    std::fs::write(&ca, format!("{}\n{}", pod.keeper.ca_pem(), gcp.ca_pem())).unwrap();
    pod.spec.ca_cert_file = Some(ca.display().to_string());
    let env = |pod: &Pod, metadata: &str| {
        let mut env: Vec<(&'static str, String)> = pod
            .env()
            .into_iter()
            .filter(|(k, _)| *k != "BULWARK_INJECT_KSM_CONFIG")
            .collect();
        env.push(("GCE_METADATA_HOST", metadata.to_owned()));
        env.push(("BULWARK_GCP_SECRET_MANAGER_URL", gcp.secret_manager_url()));
        env
    };
    let (code, out) = binary::run_to_exit(
        Path::new(EXE),
        &["--mode", "init"],
        &borrowed(&env(&pod, &gcp.metadata_host())),
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(pod.read("db.json").contains(PASSWORD));
    assert_no_secrets(&out);
    assert!(!out.contains("ya29."), "a token leaked: {out}");

    // A secret that is not there: no retry helps, whatever fail-on-error says.
    pod.spec.fail_on_error = false;
    pod.spec.auth = Auth::GcpSecretManager {
        secret_id: "projects/acme/secrets/missing".to_owned(),
    };
    let (code, out) = binary::run_to_exit(
        Path::new(EXE),
        &["--mode", "init"],
        &borrowed(&env(&pod, &gcp.metadata_host())),
    );
    assert_eq!(code, Some(64), "{out}");
    assert!(
        out.contains("GCP Secret Manager refused (404 NOT_FOUND)"),
        "{out}"
    );

    // A metadata server that does not answer is retried within the init budget; then
    // fail-on-error decides.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    pod.spec.fail_on_error = true;
    let (code, out) = binary::run_to_exit(
        Path::new(EXE),
        &["--mode", "init"],
        &borrowed(&env(&pod, &dead)),
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("Cannot fetch the KSM configuration yet; retrying."),
        "{out}"
    );
    assert!(out.contains("cannot reach GCP metadata server"), "{out}");
}
