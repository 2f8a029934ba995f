//! Sentinel at run time: the Loki poll loop feeding the detector and the store, rule reloads,
//! the remediation engine (the leader's), the API and the dashboard beside `/health`, `/ready`
//! and `/metrics`, and `--check`'s summary. The domain
//! (rules, fingerprints, the store's records) is `bulwark-sentinel`; Loki is `bulwark-loki`.

use std::sync::Arc;
use std::time::Duration;

use bulwark_sentinel::config::Config;

pub mod api;
pub mod auth;
pub mod check;
pub mod dashboard;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod remediate;
pub mod rules;
pub mod store;

/// How often the rules file is read again.
pub const RULES_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The credentials the binary read from the environment and files.
#[derive(Debug)]
pub struct Secrets {
    pub loki: bulwark_loki::Settings,
    pub store_password: Option<bulwark_config::Secret>,
    pub token: Option<bulwark_config::Secret>,
}

/// Opens the store, reaches the cluster, serves the API, dashboard, health and metrics on
/// `web.listen`, and runs until shutdown; `drain` bounds the wait for open requests.
pub async fn serve(
    config: Config,
    secrets: Secrets,
    rules: rules::Rules,
    registry: bulwark_metrics::Metrics,
    drain: Duration,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use tokio_util::sync::CancellationToken;
    let loki = bulwark_loki::Client::new(&secrets.loki).context("loki")?;
    let store = crate::store::open(&config.store, secrets.store_password.as_ref())
        .await
        .context("store")?;
    let (stop, live_stop) = (CancellationToken::new(), CancellationToken::new());
    let cluster = crate::cluster(&config, stop.clone()).await;
    let control = Arc::new(api::Control::new(&config, &cluster).map_err(anyhow::Error::msg)?);
    let live = live::Live::new(live_stop.clone());
    let (rules, auth) = (
        Arc::new(rules),
        auth::Auth::new(secrets.token, config.web.auth.public_reads),
    );
    let app = crate::app(api::Api {
        base_path: config.web.base_path.clone(),
        rules: Arc::clone(&rules),
        store: Arc::clone(&store),
        auth,
        live: Arc::clone(&live),
        control: Arc::clone(&control),
    });
    // The API, dashboard, health and metrics share `web.listen`, as upstream's do.
    let health = bulwark_health::Service::start_with_app(
        config.web.listen.0,
        Some(registry),
        drain,
        Some(app),
        config.web.base_path.clone(),
    )
    .await?;
    let base = format!("http://{}{}", health.local_addr(), config.web.base_path);
    tracing::info!(
        dashboard = format!("{base}/"),
        api = format!("{base}/api/errors"),
        "Serving."
    );
    let (engine, elector) = match cluster {
        Ok(c) => (
            Some(crate::remediate::Engine::new(&c, &store, &control, &live)),
            c.elector,
        ),
        Err(_) => (None, None),
    };
    let parts = crate::Parts {
        loki,
        rules,
        store,
        live,
        engine,
    };
    crate::run(config, parts, &health).await;
    stop.cancel();
    live_stop.cancel();
    if let Some(elector) = elector {
        let _ = elector.await;
    }
    health.stop().await?;
    Ok(())
}

/// What `run` needs besides the config.
#[derive(Debug)]
pub struct Parts {
    pub loki: bulwark_loki::Client,
    pub rules: Arc<rules::Rules>,
    pub store: Arc<dyn store::Store>,
    pub live: Arc<live::Live>,
    /// The remediation engine, when this replica can reach the cluster.
    pub engine: Option<remediate::Engine>,
}

/// Runs sentinel until `health.shutdown` fires: polls Loki, remediates (the leader), serves
/// the API and dashboard on the health server's port. `loki` is the client the config
/// describes (credentials resolved by the binary, which alone reads the environment).
pub async fn run(config: Config, parts: Parts, health: &bulwark_health::Service) {
    let Parts {
        loki,
        rules,
        store,
        live,
        engine,
    } = parts;
    let status = Arc::new(ingest::Status::default());
    let probe = Arc::clone(&status);
    health
        .readiness
        .register("loki", Duration::from_secs(1), move || {
            let problem = probe.problem();
            async move {
                match problem {
                    None => Ok(()),
                    Some(p) => Err(bulwark_health::NotReady::new(p)),
                }
            }
        });
    let stop = health.shutdown.token();
    let watcher = tokio::spawn(rules::watch(
        Arc::clone(&rules),
        RULES_RELOAD_INTERVAL,
        stop.clone(),
    ));
    let (candidates, remediation) = match engine {
        Some(engine) => {
            let (tx, rx) = tokio::sync::mpsc::channel(16);
            (Some(tx), Some(tokio::spawn(engine.run(rx, stop.clone()))))
        }
        None => (None, None),
    };
    let settings = ingest::Settings {
        query: config.loki.query.clone(),
        poll_interval: config.loki.poll_interval.get(),
        lookback: config.loki.lookback.get(),
        overlap: config.loki.overlap.get(),
        limit: config.loki.limit,
        retention: config.store.retention.get(),
    };
    let outlet = ingest::Outlet {
        candidates,
        updates: live.sender(),
    };
    tracing::info!(url = loki.url(), query = %settings.query, "Polling Loki.");
    ingest::run(loki, settings, rules, store, status, outlet, stop).await;
    for task in [Some(watcher), remediation].into_iter().flatten() {
        let _ = task.await;
    }
}

/// The cluster side of remediation: a client, the leader elector when configured (its task
/// started), and this replica's name. The error says why this replica cannot remediate.
pub async fn cluster(
    config: &Config,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<Cluster, String> {
    let k = &config.kubernetes;
    let client = bulwark_kube::client(&bulwark_kube::ClientOptions {
        kubeconfig: if k.in_cluster {
            None
        } else {
            k.kubeconfig.clone()
        },
        context: k.context.clone(),
    })
    .await
    .map_err(|e| bulwark_http::error_chain(&e))?;
    let le = &config.remediation.leader_election;
    // The downward API sets the identity (the pod's name); it names this replica in the
    // audit log and Events with or without election.
    let replica = le.identity.clone().unwrap_or_else(|| "sentinel".into());
    let (leadership, elector) = if le.enabled {
        let mut settings = bulwark_kube::LeaseSettings::new(
            le.lease_name.clone(),
            le.lease_namespace.clone().unwrap_or_default(),
            replica.clone(),
        );
        settings.lease_duration = le.lease_duration.get();
        settings.renew_deadline = le.renew_deadline.get();
        settings.retry_period = le.retry_period.get();
        let (elector, leadership) = bulwark_kube::LeaderElector::new(client.clone(), settings)
            .map_err(|e| e.to_string())?;
        (Some(leadership), Some(tokio::spawn(elector.run(shutdown))))
    } else {
        (None, None)
    };
    Ok(Cluster {
        client,
        leadership,
        elector,
        replica,
    })
}

/// See [`cluster`].
pub struct Cluster {
    pub client: bulwark_kube::Client,
    pub leadership: Option<bulwark_kube::Leadership>,
    /// The elector's task: it releases the Lease once shutdown fires; await it before exit.
    pub elector: Option<tokio::task::JoinHandle<()>>,
    pub replica: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("replica", &self.replica)
            .field("leader_election", &self.leadership.is_some())
            .finish_non_exhaustive()
    }
}

/// The web token the config names: a file (trimmed) or an environment variable.
pub fn web_token(
    config: &Config,
    env: &bulwark_config::Loader<'_>,
) -> Result<Option<bulwark_config::Secret>, bulwark_config::Error> {
    let auth = &config.web.auth;
    if let Some(var) = &auth.token_env {
        return env.secret_from_env(var, "web.auth.token_env").map(Some);
    }
    let Some(path) = &auth.token_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| bulwark_config::Error::Read {
        path: path.clone(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() {
        return Err(bulwark_config::Error::Invalid {
            origin: path.display().to_string(),
            location: None,
            field: "web.auth.token_file".into(),
            message: "the token file is empty".into(),
        });
    }
    Ok(Some(bulwark_config::Secret::new(token)))
}

/// The Loki client's settings, with credentials read from the variables the config names
/// (`env` is the binary's view of the environment).
pub fn loki_settings(
    config: &Config,
    env: &bulwark_config::Loader<'_>,
) -> Result<bulwark_loki::Settings, bulwark_config::Error> {
    let l = &config.loki;
    let auth = match (&l.username, &l.password_env, &l.bearer_token_env) {
        (Some(username), Some(var), _) => Some(bulwark_loki::Auth::Basic {
            username: username.clone(),
            password: env.secret_from_env(var, "loki.password_env")?,
        }),
        (_, _, Some(var)) => Some(bulwark_loki::Auth::Bearer(
            env.secret_from_env(var, "loki.bearer_token_env")?,
        )),
        _ => None,
    };
    Ok(bulwark_loki::Settings {
        url: l.url.clone(),
        tenant_id: l.tenant_id.clone(),
        headers: l.headers.clone().into_iter().collect(),
        auth,
        timeout: l.timeout.get(),
    })
}

/// The API as the health server's app.
pub fn app(api: api::Api) -> bulwark_health::App {
    let api = Arc::new(api);
    Arc::new(move |req| {
        let api = Arc::clone(&api);
        Box::pin(async move { api.handle(req).await })
    })
}
