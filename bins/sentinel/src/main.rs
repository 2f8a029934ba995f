//! `sentinel`: polls Loki for error lines, matches rules, deduplicates errors by
//! fingerprint, serves a dashboard and API, and remediates within strict safety limits.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_log::Output;
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
    bulwark_app::main(
        BINARY,
        &cli.log,
        Output::Stdout,
        cli.config.as_deref(),
        |config: Config| async move {
            // The dashboard, API, health and metrics share `web.listen`, as upstream's do.
            let web = bulwark_config::Health {
                listen: Some(config.web.listen),
                drain: None,
            };
            bulwark_app::serve_until_shutdown(BINARY, &web, config.web.listen.0.port()).await
        },
    )
}
