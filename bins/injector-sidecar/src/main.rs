//! `injector-sidecar`: the init container and sidecar that fetch secrets from Keeper Secrets
//! Manager, write them atomically to a tmpfs volume, refresh them, and fall back to a
//! 24-hour cache when Keeper is down.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_log::Output;
use clap::Parser;

const BINARY: &str = "injector-sidecar";

/// The default port of `/health`, `/ready` and `/metrics`; not 8080, which apps use.
const HEALTH_PORT: u16 = 9102;

type Config = bulwark_app::ServiceConfig;

/// Keeper Secrets Manager secret delivery inside an application pod.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
struct Cli {
    /// YAML config file; without one, defaults and BULWARK_INJECTOR_SIDECAR_* variables apply.
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
            bulwark_app::serve_until_shutdown(BINARY, &config.health, HEALTH_PORT).await
        },
    )
}
