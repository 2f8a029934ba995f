//! Sentinel at run time: the Loki poll loop feeding the detector and the store, rule reloads,
//! the read API beside `/health`, `/ready` and `/metrics`, and `--check`'s summary. The domain
//! (rules, fingerprints, the store's records) is `bulwark-sentinel`; Loki is `bulwark-loki`.

use std::sync::Arc;
use std::time::Duration;

use bulwark_sentinel::config::Config;

pub mod api;
pub mod check;
pub mod ingest;
pub mod metrics;
pub mod rules;
pub mod store;

/// How often the rules file is read again.
pub const RULES_RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// Runs sentinel until `health.shutdown` fires: polls Loki, serves the API on the health
/// server's port. `loki` is the client the config describes (credentials resolved by the
/// binary, which alone reads the environment).
pub async fn run(
    config: Config,
    loki: bulwark_loki::Client,
    rules: Arc<rules::Rules>,
    health: &bulwark_health::Service,
    store: Arc<dyn store::Store>,
) {
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
    let settings = ingest::Settings {
        query: config.loki.query.clone(),
        poll_interval: config.loki.poll_interval.get(),
        lookback: config.loki.lookback.get(),
        overlap: config.loki.overlap.get(),
        limit: config.loki.limit,
        retention: config.store.retention.get(),
    };
    tracing::info!(url = loki.url(), query = %settings.query, "Polling Loki.");
    ingest::run(loki, settings, rules, store, status, stop).await;
    let _ = watcher.await;
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
