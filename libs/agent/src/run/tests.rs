//! The refresh cycle and the sidecar loop against an in-memory Keeper: delivery, the cache
//! when Keeper is unreachable and not when it refuses, the binding of a one-time token, and
//! refreshes that pick up a change. The same against the fake Keeper server, over TLS, is in
//! `tests/`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use bulwark_ksm::{KsmConfig, Query};
use bulwark_sidecar_spec::{Auth, FileMode, Format, RecordRef, Secret, SidecarSpec, Source};
use serde_json::json;

use super::{Agent, Error, Served};
use crate::cache::ManualClock;
use crate::inputs::{Inputs, Mode};
use crate::keeper::{Connect, Fetched, Keeper};
use crate::select;

/// A bound KSM configuration with a throwaway key, for a Keeper that is never called.
const BOUND: &str = r#"{"hostname": "keeper.test", "clientId": "oEqjBbcLZKodoENl1NrH8dwLHTCpo3DzQGv4h7kaNsc6HyS65kd4gz9H3auTxjkcz0PQpUZ5GS1BHsonrZyLBQ==", "privateKey": "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwBzNIyst5LVJcrYuN+HdPtr9zYDi9RpbEU272rVVqcmhRANCAATKOeQOxKqTi63UH5KTyRit/VK5fnD44NLS5c0vFyDG3XT3nm/OjjtgJB8SSqmLJazvSdfSVGRfns5wsLwGqgQH", "appKey": "5bQIsjY6SKBUIkIuoF626EqSVJx4eGMDYaLS0eQnzZ4="}"#;

/// An unbound one: a one-time token.
const TOKEN: &str =
    r#"{"hostname": "keeper.test", "clientKey": "yuMebOO8WSgeKiqU2JdhKcPfkIZdVUo1/HPYt06hJJ4="}"#;

/// Keeper as a map of records, with a switch for what it answers instead.
#[derive(Debug, Default)]
struct Memory {
    records: Mutex<Vec<select::Record>>,
    failure: Mutex<Option<fn() -> bulwark_ksm::Error>>,
    /// Failures of the next fetches, before `failure`.
    queued: Mutex<std::collections::VecDeque<fn() -> bulwark_ksm::Error>>,
    fetches: Mutex<usize>,
    connects: Mutex<Vec<bool>>,
}

impl Memory {
    fn with_password(password: &str) -> Arc<Self> {
        let memory = Arc::new(Memory::default());
        memory.set_password(password);
        memory
    }

    fn set_password(&self, password: &str) {
        let field = |t: &str, v: &str| select::Field {
            field_type: t.to_owned(),
            label: None,
            value: vec![json!(v)],
        };
        *self.records.lock().unwrap() = vec![select::Record {
            uid: "dbdbdbdbdbdbdbdbdbdbdb".to_owned(),
            title: "db".to_owned(),
            record_type: "login".to_owned(),
            fields: vec![field("login", "app"), field("password", password)],
            ..select::Record::default()
        }];
    }

    fn fail(&self, failure: Option<fn() -> bulwark_ksm::Error>) {
        *self.failure.lock().unwrap() = failure;
    }
}

#[derive(Debug)]
struct Connector(Arc<Memory>);

impl Connect for Connector {
    fn connect(&self, config: KsmConfig) -> Result<Arc<dyn Keeper>, bulwark_ksm::Error> {
        self.0.connects.lock().unwrap().push(config.is_bound());
        Ok(Arc::new(Bound(self.0.clone())))
    }
}

/// The client that a [`Connector`] made; always bound once it fetched.
#[derive(Debug)]
struct Bound(Arc<Memory>);

#[async_trait]
impl Keeper for Bound {
    async fn fetch(&self, _: &Query) -> Result<Fetched, bulwark_ksm::Error> {
        *self.0.fetches.lock().unwrap() += 1;
        if let Some(failure) = self.0.queued.lock().unwrap().pop_front() {
            return Err(failure());
        }
        if let Some(failure) = *self.0.failure.lock().unwrap() {
            return Err(failure());
        }
        Ok(Fetched {
            records: self.0.records.lock().unwrap().clone(),
            folders: Vec::new(),
        })
    }

    async fn download(&self, _: &str, _: &str) -> Result<Vec<u8>, bulwark_ksm::Error> {
        Ok(Vec::new())
    }

    fn config(&self) -> KsmConfig {
        KsmConfig::parse(BOUND).unwrap()
    }
}

fn unreachable() -> bulwark_ksm::Error {
    bulwark_ksm::Error::Unreachable {
        host: "keeper.test".to_owned(),
        message: "connection refused".to_owned(),
    }
}

fn throttled_10s() -> bulwark_ksm::Error {
    bulwark_ksm::Error::Throttled {
        retry_after: Duration::from_secs(10),
    }
}

fn throttled_90s() -> bulwark_ksm::Error {
    bulwark_ksm::Error::Throttled {
        retry_after: Duration::from_secs(90),
    }
}

fn refused() -> bulwark_ksm::Error {
    bulwark_ksm::Error::Auth {
        code: "access_denied".to_owned(),
        message: "the application was removed".to_owned(),
    }
}

struct Pod {
    _dir: tempfile::TempDir,
    mount: std::path::PathBuf,
    keeper: Arc<Memory>,
    clock: Arc<ManualClock>,
    /// The containers' environment.
    env: HashMap<String, String>,
    agent: Arc<Agent>,
}

impl Pod {
    fn new(config: &str, refresh: &str) -> Pod {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().to_path_buf();
        let m = mount.to_str().unwrap().to_owned();
        let spec = SidecarSpec {
            version: 1,
            mount_path: m.clone(),
            auth: Auth::Secret,
            secrets: vec![Secret {
                path: format!("{m}/db.json"),
                source: Source::Record {
                    record: RecordRef {
                        folder: Vec::new(),
                        name: "db".to_owned(),
                    },
                    fields: vec!["password".to_owned()],
                },
                format: Format::Json,
                template: None,
                env_prefix: None,
                mode: None,
            }],
            folders: Vec::new(),
            refresh_interval: refresh.parse().unwrap(),
            fail_on_error: true,
            strict_lookup: false,
            file_mode: FileMode::OWNER_READ,
            signal: None,
            ca_cert_file: None,
            health_port: 9102,
        };
        let env: HashMap<String, String> = [
            ("BULWARK_INJECT_SPEC".to_owned(), spec.to_json()),
            ("BULWARK_INJECT_KSM_CONFIG".to_owned(), config.to_owned()),
        ]
        .into();
        let inputs = Inputs::read(&env).unwrap();
        let keeper = Memory::with_password("pw-1");
        let clock = Arc::new(ManualClock::new(
            UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        ));
        let agent = Agent::new(&inputs, None, clock.clone())
            .with_keeper(Arc::new(Connector(keeper.clone())));
        Pod {
            _dir: dir,
            mount,
            keeper,
            clock,
            env,
            agent: Arc::new(agent),
        }
    }

    /// Another container of the same pod (the sidecar after init, or init started again):
    /// the same environment, volume, Keeper and time.
    fn next_container(&self) -> Agent {
        Agent::new(&Inputs::read(&self.env).unwrap(), None, self.clock.clone())
            .with_keeper(Arc::new(Connector(self.keeper.clone())))
    }

    fn password(&self) -> String {
        let text = std::fs::read_to_string(self.mount.join("db.json")).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["password"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_cycle_delivers_and_keeps_a_cache() {
    let pod = Pod::new(BOUND, "5m");
    let served = pod.agent.cycle(Mode::Init).await.unwrap();
    assert!(
        matches!(served, Served::Fetched { secrets: 1, .. }),
        "{served:?}"
    );
    assert_eq!(pod.password(), "pw-1");
    assert!(pod.mount.join("..cache").exists());
    assert_eq!(pod.agent.status.check(), Ok(()));
}

#[tokio::test]
async fn an_unreachable_keeper_is_served_from_the_cache_for_24_hours() {
    let pod = Pod::new(BOUND, "5m");
    pod.agent.cycle(Mode::Init).await.unwrap();
    pod.keeper.fail(Some(unreachable));
    pod.clock.advance(Duration::from_secs(6 * 3600));
    let served = pod.agent.cycle(Mode::Sidecar).await.unwrap();
    assert!(
        matches!(served, Served::Cached { age, .. } if age == Duration::from_secs(6 * 3600)),
        "{served:?}"
    );
    assert_eq!(pod.password(), "pw-1");
    pod.clock.advance(Duration::from_secs(19 * 3600));
    let err = pod.agent.cycle(Mode::Sidecar).await.unwrap_err();
    assert!(matches!(err, Error::NoCache { .. }), "{err}");
    assert!(pod.agent.status.check().is_err());
}

#[tokio::test]
async fn a_refusal_is_an_error_not_the_cache() {
    let pod = Pod::new(BOUND, "5m");
    pod.agent.cycle(Mode::Init).await.unwrap();
    pod.keeper.fail(Some(refused));
    let err = pod.agent.cycle(Mode::Sidecar).await.unwrap_err();
    assert!(matches!(err, Error::Keeper(_)), "{err}");
    assert_eq!(err.reason(), "auth");
    let not_ready = pod.agent.status.check().unwrap_err();
    assert!(
        matches!(&not_ready, super::NotReady::Failed { reason: "auth", .. }),
        "{not_ready:?}"
    );
    assert!(not_ready.to_string().contains("refused"), "{not_ready}");
}

#[tokio::test]
async fn nothing_fetched_and_nothing_cached_is_an_error() {
    let pod = Pod::new(BOUND, "5m");
    pod.keeper.fail(Some(unreachable));
    let err = pod.agent.cycle(Mode::Init).await.unwrap_err();
    assert!(
        err.to_string().contains("no cached secrets to serve"),
        "{err}"
    );
}

#[tokio::test]
async fn a_token_bound_by_init_is_not_bound_again() {
    let init = Pod::new(TOKEN, "5m");
    init.agent.cycle(Mode::Init).await.unwrap();
    assert_eq!(*init.keeper.connects.lock().unwrap(), [false]);
    // The sidecar of the same pod starts from the same volume and configuration: it reads the
    // binding from the cache instead of presenting the used token.
    let sidecar = init.next_container();
    sidecar.cycle(Mode::Sidecar).await.unwrap();
    assert_eq!(*init.keeper.connects.lock().unwrap(), [false, true]);
}

#[tokio::test(start_paused = true)]
async fn the_sidecar_refreshes_until_shut_down() {
    let pod = Pod::new(BOUND, "10s");
    pod.agent.init().await.unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (agent, shutdown) = (pod.agent.clone(), shutdown.clone());
        async move { agent.run(shutdown).await }
    });
    pod.keeper.set_password("pw-2");
    // Refreshes are 10s ±10% apart; the paused clock jumps to each.
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(pod.password(), "pw-2");
    let fetches = *pod.keeper.fetches.lock().unwrap();
    assert!((3..=4).contains(&fetches), "{fetches} fetches");
    shutdown.cancel();
    running.await.unwrap();
}

#[tokio::test]
async fn a_failed_init_keeps_the_binding_of_its_token() {
    // The token binds, then selection fails (no such record): the retry must not present the
    // used token again.
    let init = Pod::new(TOKEN, "5m");
    init.keeper.records.lock().unwrap().clear();
    let err = init.agent.cycle(Mode::Init).await.unwrap_err();
    assert!(matches!(err, Error::Select(_)), "{err}");
    let retry = init.next_container();
    init.keeper.set_password("pw-1");
    retry.cycle(Mode::Init).await.unwrap();
    assert_eq!(*init.keeper.connects.lock().unwrap(), [false, true]);
}

#[tokio::test(start_paused = true)]
async fn init_waits_out_throttling_within_its_budget() {
    let pod = Pod::new(BOUND, "5m");
    pod.keeper
        .queued
        .lock()
        .unwrap()
        .extend([throttled_10s as fn() -> _, throttled_10s]);
    let started = tokio::time::Instant::now();
    let served = pod.agent.init().await.unwrap();
    assert!(matches!(served, Served::Fetched { .. }), "{served:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(*pod.keeper.fetches.lock().unwrap(), 3);
    assert_eq!(pod.password(), "pw-1");
}

#[tokio::test(start_paused = true)]
async fn init_gives_up_with_the_reason_when_keeper_asks_for_too_long() {
    let pod = Pod::new(BOUND, "5m");
    pod.keeper.fail(Some(throttled_90s));
    let started = tokio::time::Instant::now();
    let err = pod.agent.init().await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 1, .. }), "{err}");
    assert_eq!(err.reason(), "throttled");
    assert!(err.to_string().contains("retry after 90s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
    // Unreachable for good: retries for a minute at most, then the reason.
    pod.keeper.fail(Some(unreachable));
    let started = tokio::time::Instant::now();
    let err = pod.agent.init().await.unwrap_err();
    assert!(matches!(err, Error::GaveUp { .. }), "{err}");
    assert!(err.to_string().contains("cannot reach Keeper"), "{err}");
    assert!(
        started.elapsed() <= super::INIT_RETRY_BUDGET,
        "{:?}",
        started.elapsed()
    );
    // A refusal is not retried.
    pod.keeper.fail(Some(refused));
    let fetches = *pod.keeper.fetches.lock().unwrap();
    assert!(matches!(
        pod.agent.init().await.unwrap_err(),
        Error::Keeper(_)
    ));
    assert_eq!(*pod.keeper.fetches.lock().unwrap(), fetches + 1);
}

#[tokio::test(start_paused = true)]
async fn serving_the_cache_backs_off_and_honours_retry_after() {
    let pod = Pod::new(BOUND, "5m");
    pod.agent.init().await.unwrap();
    pod.keeper.fail(Some(unreachable));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn({
        let (agent, shutdown) = (pod.agent.clone(), shutdown.clone());
        async move { agent.run(shutdown).await }
    });
    // An hour of outage: backing off from 5 s to the 5-minute interval is 5+10+20+40+80+160
    // seconds, then every 5 minutes: about 16 attempts, not the 700 of a fixed 5 s.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let fetches = *pod.keeper.fetches.lock().unwrap();
    assert!((12..=20).contains(&fetches), "{fetches} fetches in an hour");
    assert_eq!(pod.password(), "pw-1", "the cache served");
    // Throttling asks for 10 minutes: the sidecar waits that long, beyond its interval.
    pod.keeper.fail(Some(|| bulwark_ksm::Error::Throttled {
        retry_after: Duration::from_secs(600),
    }));
    tokio::time::sleep(Duration::from_secs(400)).await;
    let before = *pod.keeper.fetches.lock().unwrap();
    tokio::time::sleep(Duration::from_secs(500)).await;
    let after = *pod.keeper.fetches.lock().unwrap();
    assert!(
        after - before <= 1,
        "{} fetches within 500 s",
        after - before
    );
    shutdown.cancel();
    running.await.unwrap();
}
