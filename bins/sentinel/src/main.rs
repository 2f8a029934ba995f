//! `sentinel`: polls Loki for error lines, matches rules, deduplicates errors by
//! fingerprint, serves a dashboard and API, and remediates within strict safety limits.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_sentinel::config::Config;
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
    #[command(flatten)]
    log: bulwark_log::LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config: Config = match bulwark_app::start(
        BINARY,
        &cli.log,
        bulwark_log::Output::Stdout,
        cli.config.as_deref(),
    ) {
        Ok(config) => config,
        Err(code) => return code,
    };
    bulwark_app::exit(run(config))
}

#[tokio::main]
async fn run(config: Config) -> anyhow::Result<()> {
    let metrics = bulwark_app::metrics(BINARY, &[])?;
    // The dashboard, API, health and metrics share `web.listen`, as upstream's do.
    let web = bulwark_config::Health {
        listen: Some(config.web.listen),
        drain: None,
    };
    let health = bulwark_app::serve_health(&web, config.web.listen.0.port(), metrics).await?;
    health.shutdown.wait().await;
    health.stop().await?;
    Ok(())
}
