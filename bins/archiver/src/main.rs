//! `archiver`: a CronJob that archives rows older than their retention from PostgreSQL audit
//! tables to S3-compatible storage, verifies the archives, and only then deletes the rows.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_archive::config::Config;
use bulwark_config::{EXIT_USAGE, Loader, ProcessEnv};
use clap::Parser;

const BINARY: &str = "archiver";

/// The default port of `/health`, `/ready` and `/metrics` while a run is in progress.
const METRICS_PORT: u16 = 9187;

/// Archive old PostgreSQL audit rows to object storage, verify, then delete.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
struct Cli {
    /// The config file (version "2.0"); BULWARK_ARCHIVER_* variables override its fields.
    #[arg(long, short, value_name = "FILE")]
    config: PathBuf,
    /// Only this database (its `name` in the config).
    #[arg(long, value_name = "NAME")]
    database: Option<String>,
    /// Only this table (`name` or `schema.name`).
    #[arg(long, value_name = "TABLE")]
    table: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    log: bulwark_log::LogArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to standard error so that the plan on standard output stays machine-readable.
    let config: Config = match bulwark_app::start(
        BINARY,
        &cli.log,
        bulwark_log::Output::Stderr,
        Some(&cli.config),
    ) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let targets = match config.select(cli.database.as_deref(), cli.table.as_deref()) {
        Ok(targets) => targets,
        Err(v) => {
            tracing::error!(field = %v.field, error = %v.message, "Invalid selection.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Resolve every password before touching anything, so a missing Secret fails fast.
    let env = ProcessEnv;
    let loader = Loader::new(&env, bulwark_app::env_prefix(BINARY));
    for (i, db) in config.databases.iter().enumerate() {
        let selected = targets.iter().any(|t| t.database == db.name);
        if let (true, Some(var)) = (selected, &db.password_env)
            && let Err(error) = loader.secret_from_env(var, &format!("databases[{i}].password_env"))
        {
            tracing::error!(error = %error, "Invalid configuration.");
            return ExitCode::from(EXIT_USAGE);
        }
    }
    bulwark_app::exit(run(&cli, &config.health, &targets))
}

#[tokio::main]
async fn run(
    cli: &Cli,
    health: &bulwark_config::Health,
    targets: &[bulwark_archive::config::Target],
) -> anyhow::Result<()> {
    let metrics = bulwark_app::metrics(BINARY, &[])?;
    let health = bulwark_app::serve_health(health, METRICS_PORT, metrics).await?;
    let result = if cli.dry_run {
        for t in targets {
            #[allow(clippy::print_stdout)] // The plan is this command's output.
            {
                println!("{}", serde_json::to_string(t)?);
            }
        }
        tracing::info!(
            tables = targets.len(),
            "Dry run: printed the plan; nothing was changed."
        );
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "archiving is not available in this build yet; nothing was changed (use --dry-run to see the plan)"
        ))
    };
    health.stop().await?;
    result
}
