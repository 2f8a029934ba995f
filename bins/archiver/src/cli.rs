//! The archiver's command line, and the exit codes a CronJob reports.

use std::path::PathBuf;

use bulwark_archive::restore::Conflict;
use bulwark_archive::run::Outcome;
use clap::{Parser, Subcommand};

use crate::BINARY;

/// Archive old PostgreSQL audit rows to object storage, verify, then delete.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
pub(crate) struct Cli {
    /// The config file (version "2.0"); BULWARK_ARCHIVER_* variables override its fields.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// Only this database (its `name` in the config).
    #[arg(long, value_name = "NAME", global = true)]
    pub(crate) database: Option<String>,
    /// Only this table (`name` or `schema.name`).
    #[arg(long, value_name = "TABLE", global = true)]
    pub(crate) table: Option<String>,
    /// Print the plan and change nothing.
    #[arg(long, global = true)]
    pub(crate) dry_run: bool,
    /// Stop starting batches after this long (`45m`, `2h`): the batches in progress complete,
    /// so the run ends cleanly, with exit 0, inside a maintenance window.
    #[arg(long, value_name = "DURATION", global = true)]
    pub(crate) max_runtime: Option<bulwark_config::Duration>,
    /// Write the final metrics here (Prometheus text, for the node exporter's textfile
    /// collector), as a Job cannot be scraped after it ends.
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) metrics_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) log: bulwark_log::LogArgs,
    #[command(subcommand)]
    pub(crate) command: Option<Sub>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Sub {
    /// Archive, verify, then delete (the default).
    Run,
    /// Re-check every archive against its manifest (SHA-256 and row count).
    Verify,
    /// Load archives back into their tables.
    Restore {
        /// What to do with rows already in the table: skip, fail or overwrite.
        #[arg(long, default_value = "fail")]
        conflict: Conflict,
    },
}

/// The exit code of a run that ended as `outcome` (README, "Exit codes").
pub(crate) fn exit_code(outcome: Outcome) -> u8 {
    match outcome {
        Outcome::Done => 0,
        // Some tables failed; the others are done.
        Outcome::Partial => 3,
        // An archive did not verify.
        Outcome::Verification => 4,
        // Another run holds a database's lock (`EX_TEMPFAIL`).
        Outcome::Locked => 75,
        // A table marked critical failed; the run stopped.
        Outcome::Critical => 1,
    }
}
