//! `archiver`: a CronJob that archives rows older than their retention from PostgreSQL audit
//! tables to S3-compatible storage, verifies the archives, and only then deletes the rows.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::process::ExitCode;
use std::sync::Arc;

use bulwark_archive::config::Config;
use bulwark_archive::pipeline::{MAX_BATCH_BYTES, Options, PART_SIZE};
use bulwark_archive::run::{self, Command, Outcome};
use bulwark_config::{EXIT_USAGE, Loader, ProcessEnv, Secret};
use clap::Parser;

use cli::{Cli, Sub};

mod cli;
mod progress;

const BINARY: &str = "archiver";

/// The default port of `/health`, `/ready` and `/metrics` while a run is in progress.
const METRICS_PORT: u16 = 9187;

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
    let loader = Loader::new(&ProcessEnv, bulwark_app::env_prefix(BINARY));
    let passwords = match run::passwords(&config, &targets, &loader) {
        Ok(passwords) => passwords,
        Err(error) => {
            tracing::error!(error = %error, "Invalid configuration.");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let command = match cli.command {
        None | Some(Sub::Run) => Command::Archive,
        Some(Sub::Verify) => Command::Verify,
        Some(Sub::Restore { conflict }) => Command::Restore(conflict),
    };
    match run(&cli, &config, &targets, &passwords, command) {
        Ok(outcome) if outcome != Outcome::Done => {
            let code = cli::exit_code(outcome);
            tracing::error!(exit_code = code, "Finished with failures.");
            ExitCode::from(code)
        }
        other => bulwark_app::exit(other.map(drop)),
    }
}

#[tokio::main]
async fn run(
    cli: &Cli,
    config: &Config,
    targets: &[bulwark_archive::config::Target],
    passwords: &[Option<Secret>],
    command: Command,
) -> anyhow::Result<Outcome> {
    let metrics = bulwark_app::metrics(BINARY, &[])?;
    bulwark_archive::metrics::describe();
    // Health and metrics are for watching a run, not a condition of it: a port another run
    // (or anything else) holds is a warning, and the run lock decides whether this one works.
    let stop = bulwark_health::Shutdown::on_signals()?;
    if let Some(limit) = cli.max_runtime {
        let token = stop.token();
        tokio::spawn(async move {
            tokio::time::sleep(limit.get()).await;
            tracing::warn!(max_runtime = %limit, "Reached --max-runtime: stopping after the batches in progress.");
            token.cancel();
        });
    }
    let health = match bulwark_app::serve_health(&config.health, METRICS_PORT, metrics.clone())
        .await
    {
        Ok(health) => Some(health),
        Err(error) => {
            tracing::warn!(
                error = format!("{error:#}"),
                "Cannot serve /health and /metrics; running without them (--metrics-file still writes the metrics)."
            );
            None
        }
    };
    let mut outcome = Outcome::Done;
    if cli.dry_run {
        let plans = run::plan(config, targets, passwords).await;
        for plan in &plans {
            #[allow(clippy::print_stdout)] // The plan is this command's output.
            {
                println!("{}", serde_json::to_string(plan)?);
            }
        }
        if plans.iter().any(|p| p.error.is_some()) {
            outcome = Outcome::Partial;
        }
        tracing::info!(
            tables = targets.len(),
            "Dry run: printed the plan; nothing was changed."
        );
    } else {
        let store = run::store(config)?;
        let options = Options {
            prefix: config.s3.prefix.clone(),
            storage_class: config.s3.storage_class.clone(),
            failpoint: None,
            stop: Some(stop.token()),
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr())
                .then(|| Arc::new(progress::Bars::default()) as _),
            max_batch_bytes: MAX_BATCH_BYTES,
            part_size: PART_SIZE,
            codec: config.defaults.compression,
            compression_level: config.defaults.compression_level,
            pause: config.defaults.sleep_between_batches.0,
            fail_on_schema_drift: config.defaults.fail_on_schema_drift,
            vacuum_min_rows: config
                .defaults
                .vacuum_after
                .then_some(config.defaults.vacuum_min_rows),
            hold_table: config.legal_holds.as_ref().and_then(|h| h.table()),
        };
        outcome = run::run_all(config, targets, passwords, &*store, &options, command).await;
    }
    if let Some(path) = &cli.metrics_file {
        std::fs::write(path, metrics.render())?;
    }
    if let Some(health) = health {
        health.stop().await?;
    }
    Ok(outcome)
}
