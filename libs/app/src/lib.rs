//! The lifecycle every Bulwark binary shares, so that `main.rs` only wires its own parts:
//! install logging, log the build, load and validate the config (exit 64 when it is bad),
//! install metrics, and map the outcome to an exit code.

use std::path::Path;
use std::process::ExitCode;

use bulwark_config::{Duration, Health, ListenAddr, Loader, ProcessEnv, Validate, Violation};
use bulwark_log::{LogArgs, Output};
use bulwark_metrics::{Buckets, BuildInfo, Metrics};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Exit code when logging cannot even be set up (`EX_SOFTWARE`).
pub const EXIT_SOFTWARE: u8 = 70;

/// The environment variable prefix of a binary: `BULWARK_` + its name in upper snake case +
/// `_`, e.g. `BULWARK_INJECTOR_WEBHOOK_`.
pub fn env_prefix(binary: &str) -> String {
    format!("BULWARK_{}_", binary.to_ascii_uppercase().replace('-', "_"))
}

/// Installs logging, logs the build, and loads `C` from `config` (or defaults) with
/// `BULWARK_<BINARY>_*` overrides. On failure the error is logged and the exit code returned.
pub fn start<C: DeserializeOwned + Validate>(
    binary: &'static str,
    log: &LogArgs,
    output: Output,
    config: Option<&Path>,
) -> Result<C, ExitCode> {
    if let Err(error) = bulwark_log::init(log, output) {
        // Logging is not available, so standard error is the only channel left.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("{binary}: {error}");
        }
        return Err(ExitCode::from(EXIT_SOFTWARE));
    }
    tracing::info!(
        binary,
        version = env!("CARGO_PKG_VERSION"),
        git_sha = bulwark_log::GIT_SHA,
        "Starting."
    );
    let prefix = env_prefix(binary);
    Loader::new(&ProcessEnv, prefix)
        .load(config)
        .map_err(|error| {
            tracing::error!(error = %error, "Invalid configuration.");
            ExitCode::from(bulwark_config::EXIT_USAGE)
        })
}

/// Installs the global metrics recorder with `bulwark_build_info` for `binary`.
pub fn metrics(binary: &'static str, buckets: &[Buckets]) -> anyhow::Result<Metrics> {
    let build = BuildInfo {
        binary,
        version: env!("CARGO_PKG_VERSION"),
        git_sha: bulwark_log::GIT_SHA,
    };
    Ok(Metrics::install(build, buckets)?)
}

/// The config of a binary that so far has only a health server.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    pub health: Health,
}

impl Validate for ServiceConfig {
    fn validate(&self) -> Result<(), Violation> {
        Ok(())
    }
}

/// Default drain deadline: well inside Kubernetes' default 30 s termination grace period.
pub const DEFAULT_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Starts the health server on `health.listen` (or `0.0.0.0:default_port`), with SIGTERM and
/// SIGINT handling, serving `metrics` on `/metrics`.
pub async fn serve_health(
    health: &Health,
    default_port: u16,
    metrics: Metrics,
) -> anyhow::Result<bulwark_health::Service> {
    let listen = health.listen.unwrap_or(ListenAddr::any(default_port));
    let drain = health.drain.map_or(DEFAULT_DRAIN, Duration::get);
    Ok(bulwark_health::Service::start(listen.0, Some(metrics), drain).await?)
}

/// The whole lifecycle of a binary: [`start`] (exit 64 on a bad config), then `run` with the
/// config on a multi-threaded tokio runtime, then [`exit`].
pub fn main<C, F, Fut>(
    binary: &'static str,
    log: &LogArgs,
    output: Output,
    config: Option<&Path>,
    run: F,
) -> ExitCode
where
    C: DeserializeOwned + Validate,
    F: FnOnce(C) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config: C = match start(binary, log, output, config) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => exit(runtime.block_on(run(config))),
        Err(error) => exit(Err(
            anyhow::Error::new(error).context("cannot start the async runtime")
        )),
    }
}

/// Installs metrics for `binary`, serves health on `health` (default port `default_port`) and
/// waits for SIGTERM or SIGINT; for binaries whose only long-running part is the health server.
pub async fn serve_until_shutdown(
    binary: &'static str,
    health: &Health,
    default_port: u16,
) -> anyhow::Result<()> {
    let metrics = metrics(binary, &[])?;
    let service = serve_health(health, default_port, metrics).await?;
    service.shutdown.wait().await;
    service.stop().await?;
    Ok(())
}

/// Reads a command's input file, or standard input for `-`; returns its name for messages
/// and its text.
pub fn read_input(path: &Path) -> anyhow::Result<(String, String)> {
    use anyhow::Context;
    use std::io::Read;
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(("<stdin>".to_owned(), text));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((path.display().to_string(), text))
}

/// Maps the binary's result to its exit code, logging the error chain on failure.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => {
            tracing::info!("Stopped.");
            ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "Exiting on error.");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_prefix_is_upper_snake() {
        assert_eq!(
            super::env_prefix("injector-webhook"),
            "BULWARK_INJECTOR_WEBHOOK_"
        );
        assert_eq!(super::env_prefix("archiver"), "BULWARK_ARCHIVER_");
    }
}
