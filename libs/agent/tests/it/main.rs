//! The agent against the fake Keeper server with a manual clock: the 24-hour limit of the
//! cache, throttling, and refusals that must not be served from the cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod templates;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bulwark_agent::cache::{Clock, ManualClock};
use bulwark_agent::inputs::{Inputs, Mode};
use bulwark_agent::run::{Agent, Error, Served};
use bulwark_sidecar_spec::{Auth, FileMode, Format, RecordRef, Secret, SidecarSpec, Source};
use bulwark_test_util::keeper::{FakeKeeper, Record};

const DB_UID: &str = "dbdbdbdbdbdbdbdbdbdbdb";

fn setup() -> (FakeKeeper, tempfile::TempDir, Agent, Arc<ManualClock>) {
    let (keeper, dir, inputs, clock) =
        setup_with(|keeper| keeper.bound_config().unwrap().to_string());
    let agent = agent(&inputs, &keeper, &clock);
    (keeper, dir, agent, clock)
}

/// An agent of `inputs` that trusts `keeper`'s CA and reads `clock`.
fn agent(inputs: &Inputs, keeper: &FakeKeeper, clock: &Arc<ManualClock>) -> Agent {
    Agent::new(
        inputs,
        Some(keeper.ca_pem().as_bytes().to_vec()),
        clock.clone() as Arc<dyn Clock>,
    )
}

/// A fake Keeper with one record, and the inputs of a pod whose KSM configuration `config`
/// makes from it.
fn setup_with(
    config: impl Fn(&FakeKeeper) -> String,
) -> (FakeKeeper, tempfile::TempDir, Inputs, Arc<ManualClock>) {
    let keeper = FakeKeeper::start().unwrap();
    keeper
        .set_record(Record::login("db", "app", "pw-1").with_uid(DB_UID))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().to_str().unwrap().to_owned();
    let spec = SidecarSpec {
        version: 1,
        mount_path: mount.clone(),
        auth: Auth::Secret,
        secrets: vec![Secret {
            path: format!("{mount}/db.json"),
            source: Source::Record {
                record: RecordRef {
                    folder: Vec::new(),
                    name: "db".to_owned(),
                },
                fields: Vec::new(),
            },
            format: Format::Json,
            template: None,
            env_prefix: None,
            mode: None,
        }],
        folders: Vec::new(),
        refresh_interval: "5m".parse().unwrap(),
        fail_on_error: true,
        strict_lookup: false,
        file_mode: FileMode::OWNER_READ,
        signal: None,
        ca_cert_file: None,
        health_port: 9102,
    };
    let env: HashMap<String, String> = [
        ("BULWARK_INJECT_SPEC".to_owned(), spec.to_json()),
        ("BULWARK_INJECT_KSM_CONFIG".to_owned(), config(&keeper)),
    ]
    .into();
    let inputs = Inputs::read(&env).unwrap();
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_900_000_000),
    ));
    (keeper, dir, inputs, clock)
}

#[tokio::test]
async fn a_failed_init_does_not_burn_the_one_time_token() {
    let (keeper, _dir, inputs, clock) =
        setup_with(|keeper| keeper.token_config(&keeper.one_time_token()).to_string());
    // The token binds, then the record is not there: the init container fails.
    assert!(keeper.remove_record(DB_UID));
    let err = agent(&inputs, &keeper, &clock)
        .cycle(Mode::Init)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Select(_)), "{err}");
    assert_eq!(keeper.bound_clients(), 1);
    // Its retry, a new process with the same token, uses the binding instead of the token.
    keeper
        .set_record(Record::login("db", "app", "pw-1").with_uid(DB_UID))
        .unwrap();
    agent(&inputs, &keeper, &clock)
        .cycle(Mode::Init)
        .await
        .unwrap();
    assert_eq!(keeper.bound_clients(), 1);
}

#[tokio::test]
async fn the_cache_serves_for_24_hours_then_readiness_fails() {
    let (keeper, dir, agent, clock) = setup();
    assert!(matches!(
        agent.cycle(Mode::Sidecar).await.unwrap(),
        Served::Fetched { secrets: 1, .. }
    ));
    assert!(agent.status.check().is_ok());
    keeper.set_down(true);
    clock.advance(Duration::from_secs(23 * 3600));
    match agent.cycle(Mode::Sidecar).await.unwrap() {
        Served::Cached { age, changes, .. } => {
            assert_eq!(age, Duration::from_secs(23 * 3600));
            assert!(changes.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert!(agent.status.check().is_ok());
    clock.advance(Duration::from_secs(2 * 3600));
    let err = agent.cycle(Mode::Sidecar).await.unwrap_err();
    assert!(matches!(err, Error::NoCache { .. }), "{err}");
    assert!(err.to_string().contains("beyond the 24h limit"), "{err}");
    let ready = agent.status.check().unwrap_err();
    assert!(
        ready.to_string().contains("beyond the 24h limit"),
        "{ready}"
    );
    // The files stay as they were: nothing is deleted because Keeper is away.
    assert!(
        std::fs::read_to_string(dir.path().join("db.json"))
            .unwrap()
            .contains("pw-1")
    );
    // Keeper back: fresh again.
    keeper.set_down(false);
    assert!(matches!(
        agent.cycle(Mode::Sidecar).await.unwrap(),
        Served::Fetched { .. }
    ));
    assert!(agent.status.check().is_ok());
}

#[tokio::test]
async fn throttling_serves_the_cache_and_reports_keepers_delay() {
    let (keeper, _dir, agent, _clock) = setup();
    agent.cycle(Mode::Sidecar).await.unwrap();
    keeper.throttle_next(1, Duration::from_secs(42));
    assert!(matches!(
        agent.cycle(Mode::Sidecar).await.unwrap(),
        Served::Cached { .. }
    ));
    assert_eq!(keeper.requests("get_secret"), 2);
}

#[tokio::test]
async fn refusals_are_not_served_from_the_cache() {
    let (keeper, _dir, agent, _clock) = setup();
    agent.cycle(Mode::Sidecar).await.unwrap();
    // The record is no longer shared with the application: an error, not stale secrets.
    assert!(keeper.remove_record(DB_UID));
    let err = agent.cycle(Mode::Sidecar).await.unwrap_err();
    assert!(matches!(err, Error::Select(_)), "{err}");
    assert_eq!(err.reason(), "not_found");
    assert!(agent.status.check().is_err());
}

#[tokio::test]
async fn a_change_signals_the_application() {
    use std::os::unix::process::ExitStatusExt;
    let keeper = FakeKeeper::start().unwrap();
    keeper
        .set_record(Record::login("db", "app", "pw-1").with_uid(DB_UID))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("secrets");
    std::fs::create_dir(&mount).unwrap();
    let m = mount.to_str().unwrap().to_owned();
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    // A /proc that shows only the application's process, so nothing else is signalled.
    let proc = dir.path().join("proc");
    let pid = child.id();
    std::fs::create_dir_all(proc.join(pid.to_string())).unwrap();
    std::fs::copy(
        format!("/proc/{pid}/stat"),
        proc.join(pid.to_string()).join("stat"),
    )
    .unwrap();
    let spec = format!(
        r#"{{"version":1,"mountPath":"{m}","auth":{{"method":"secret"}},"secrets":[{{"path":"{m}/db.json","source":{{"kind":"record","record":{{"name":"{DB_UID}"}}}},"format":"json"}}],"folders":[],"refreshInterval":"1s","failOnError":true,"strictLookup":false,"fileMode":"0400","signal":{{"signal":"SIGHUP","process":"sleep"}},"healthPort":9102}}"#
    );
    let env: HashMap<String, String> = [
        ("BULWARK_INJECT_SPEC".to_owned(), spec),
        (
            "BULWARK_INJECT_KSM_CONFIG".to_owned(),
            keeper.bound_config().unwrap().to_string(),
        ),
    ]
    .into();
    let inputs = Inputs::read(&env).unwrap();
    let agent = Arc::new(
        Agent::new(
            &inputs,
            Some(keeper.ca_pem().as_bytes().to_vec()),
            Arc::new(bulwark_agent::cache::SystemClock),
        )
        .with_proc(&proc),
    );
    // Init delivers; the sidecar's first refreshes change nothing, so nothing is signalled.
    agent.init().await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (agent, shutdown) = (agent.clone(), shutdown.clone());
        async move { agent.run(shutdown).await }
    });
    // Refreshes that change nothing signal nothing: once the sidecar asks Keeper for the third
    // time (init asked first), its first two refreshes are done, signals included.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while keeper.requests("get_secret") < 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sidecar did not refresh"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "signalled without a change"
    );
    keeper.update_field(DB_UID, "password", ["pw-2"]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the application was not signalled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.signal(), Some(1), "SIGHUP");
    assert!(
        std::fs::read_to_string(mount.join("db.json"))
            .unwrap()
            .contains("pw-2")
    );
    shutdown.cancel();
    running.await.unwrap();
}
