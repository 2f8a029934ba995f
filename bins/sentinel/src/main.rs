//! `sentinel`: polls Loki for error lines, matches rules, deduplicates errors by
//! fingerprint, serves a dashboard and API, and remediates within strict safety limits.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_config::Secret;
use bulwark_config::{EXIT_USAGE, Loader, ProcessEnv};
use bulwark_log::Output;
use bulwark_loki::Settings;
use bulwark_metrics::Buckets;
use bulwark_sentinel::config::Config;
use bulwark_sentinel_service::rules::Rules;
use bulwark_sentinel_service::{self as service, check, metrics};
use clap::Parser;

const BINARY: &str = "sentinel";

/// Error detection and safe auto-remediation for Kubernetes, driven by Loki.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
struct Cli {
    /// YAML config file (the seed's config.yaml); without one, defaults and
    /// BULWARK_SENTINEL_* variables apply.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Rules file, instead of the config's `rules_file` (without either, the shipped rules).
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// Check the config and rules, print what they say, and exit: 0 when valid, 64 when not.
    /// Contacts nothing.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    log: bulwark_log::LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = if cli.check {
        Output::Stderr
    } else {
        Output::Stdout
    };
    let config: Config = match bulwark_app::start(BINARY, &cli.log, output, cli.config.as_deref()) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = cli.rules.clone().or_else(|| config.rules_file.clone());
    let rules = match Rules::load(path.as_deref()) {
        Ok(rules) => rules,
        Err(error) => {
            tracing::error!(error = %error, "Invalid rules.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let env = Loader::new(&ProcessEnv, bulwark_app::env_prefix(BINARY));
    let secrets = bulwark_sentinel_service::loki_settings(&config, &env).and_then(|loki| {
        let password = config
            .store
            .password_env
            .as_deref()
            .map(|var| env.secret_from_env(var, "store.password_env"))
            .transpose()?;
        let token = bulwark_sentinel_service::web_token(&config, &env)?;
        Ok((loki, password, token))
    });
    let (loki, store_password, token) = match secrets {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(error = %error, "Invalid configuration.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if cli.check {
        let current = rules.current();
        let summary = check::summary(&config, current.detector.rules(), &current.source);
        #[allow(clippy::print_stdout)]
        {
            print!("{summary}");
        }
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => bulwark_app::exit(rt.block_on(run(config, loki, store_password, token, rules))),
        Err(e) => bulwark_app::exit(Err(
            anyhow::Error::new(e).context("cannot start the runtime")
        )),
    }
}

async fn run(
    config: Config,
    loki: Settings,
    store_password: Option<Secret>,
    token: Option<Secret>,
    rules: Rules,
) -> anyhow::Result<()> {
    let buckets = [metrics::POLL_DURATION, metrics::REMEDIATION_DURATION].map(|name| Buckets {
        name,
        bounds: bulwark_metrics::DURATION_BUCKETS,
    });
    let registry = bulwark_app::metrics(BINARY, &buckets)?;
    metrics::describe();
    let secrets = service::Secrets {
        loki,
        store_password,
        token,
    };
    service::serve(config, secrets, rules, registry, bulwark_app::DEFAULT_DRAIN).await
}
