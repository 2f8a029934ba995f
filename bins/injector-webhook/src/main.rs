//! `injector-webhook`: the mutating admission webhook that adds Keeper Secrets Manager
//! delivery (tmpfs volume, init container, sidecar) to pods annotated
//! `keeper.security/inject: "true"`.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_log::Output;
use clap::Parser;

const BINARY: &str = "injector-webhook";

/// The default port of `/health`, `/ready` and `/metrics` (controller-runtime's probe port).
const HEALTH_PORT: u16 = 8081;

type Config = bulwark_app::ServiceConfig;

/// Keeper Secrets Manager injection webhook for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
struct Cli {
    /// YAML config file; without one, defaults and BULWARK_INJECTOR_WEBHOOK_* variables apply.
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
