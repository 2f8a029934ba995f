//! `injector-sidecar`: the init container and sidecar that fetch secrets from Keeper Secrets
//! Manager, write them atomically to a tmpfs volume, refresh them, and fall back to a
//! 24-hour cache when Keeper is down.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bulwark_agent::inputs::{Inputs, Mode, Pending};
use bulwark_agent::run::{Agent, EXIT_UNDELIVERED};
use bulwark_config::ProcessEnv;
use bulwark_log::Output;
use clap::{Parser, ValueEnum};

const BINARY: &str = "injector-sidecar";

type Config = bulwark_agent::config::Config;

/// Keeper Secrets Manager secret delivery inside an application pod. The webhook sets its
/// inputs: BULWARK_INJECT_SPEC, BULWARK_INJECT_KSM_CONFIG, BULWARK_INJECT_POD_NAME and
/// BULWARK_INJECT_POD_NAMESPACE.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
struct Cli {
    /// `init`: fetch once, write, exit. `sidecar`: keep refreshing and serve health.
    #[arg(long, value_enum, default_value = "sidecar")]
    mode: CliMode,
    /// YAML config file; without one, defaults and BULWARK_INJECTOR_SIDECAR_* variables apply.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: bulwark_log::LogArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CliMode {
    Init,
    Sidecar,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config: Config =
        match bulwark_app::start(BINARY, &cli.log, Output::Stdout, cli.config.as_deref()) {
            Ok(config) => config,
            Err(code) => return code,
        };
    let pending = match Inputs::begin(&ProcessEnv) {
        Ok(pending) => pending,
        Err(error) => {
            tracing::error!(error = %error, "Invalid inputs.");
            return ExitCode::from(bulwark_config::EXIT_USAGE);
        }
    };
    let mode = match cli.mode {
        CliMode::Init => Mode::Init,
        CliMode::Sidecar => Mode::Sidecar,
    };
    // One thread: the sidecar runs in every pod, and its work is one request per interval.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return bulwark_app::exit(Err(
                anyhow::Error::new(error).context("cannot start the async runtime")
            ));
        }
    };
    let result = runtime.block_on(run(mode, &config, pending));
    match result {
        Ok(Some(code)) => ExitCode::from(code),
        Ok(None) => bulwark_app::exit(Ok(())),
        Err(error) => bulwark_app::exit(Err(error)),
    }
}

async fn run(mode: Mode, config: &Config, pending: Pending) -> anyhow::Result<Option<u8>> {
    let metrics = bulwark_app::metrics(BINARY, &[])?;
    bulwark_agent::metrics::describe();
    let ca_pem = match &pending.spec.ca_cert_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificates {path}"))?,
        ),
        None => None,
    };
    // A KSM configuration stored in a cloud is fetched with the pod's workload identity.
    let resolved = pending
        .clone()
        .resolve(&ProcessEnv, ca_pem.as_deref(), config.init_retry_for.get())
        .await;
    let inputs = match resolved {
        Ok(inputs) => inputs,
        Err(error) => return Ok(Some(error.exit_code(mode, pending.spec.fail_on_error))),
    };
    let inputs = &inputs;
    let agent = Agent::new(inputs, ca_pem, Arc::new(bulwark_agent::cache::SystemClock))
        .with_init_retry_for(config.init_retry_for.get());
    match mode {
        Mode::Init => match agent.init().await {
            Ok(_) => Ok(None),
            Err(error) if error.is_invalid_input() => {
                tracing::error!(error = %error, reason = error.reason(), "Invalid inputs.");
                Ok(Some(bulwark_config::EXIT_USAGE))
            }
            Err(error) if inputs.spec.fail_on_error => {
                tracing::error!(error = %error, reason = error.reason(), "Cannot deliver the secrets; the pod will not start (keeper.security/fail-on-error).");
                Ok(Some(EXIT_UNDELIVERED))
            }
            Err(error) => {
                tracing::warn!(error = %error, reason = error.reason(), "Cannot deliver the secrets; starting the pod without them (keeper.security/fail-on-error: \"false\").");
                Ok(None)
            }
        },
        Mode::Sidecar => {
            // The webhook chose the port (and probes it); a config file may still override it.
            let service =
                bulwark_app::serve_health(&config.health, inputs.spec.health_port, metrics).await?;
            let status = agent.status.clone();
            service
                .readiness
                .register("secrets", std::time::Duration::from_secs(1), move || {
                    let status = status.clone();
                    async move {
                        status
                            .check()
                            .map_err(|e| bulwark_health::NotReady::new(e.to_string()))
                    }
                });
            let token = service.shutdown.token();
            agent.run(token).await;
            service.stop().await?;
            Ok(None)
        }
    }
}
