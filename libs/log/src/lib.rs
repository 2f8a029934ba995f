//! Logging for every Bulwark binary: a `tracing` subscriber writing text for terminals or JSON
//! lines for clusters, selected by `--log-format`, filtered by `--log-level`.
//!
//! JSON lines carry `ts`, `level`, `msg`, `target` and the event's structured fields (and
//! those of its enclosing spans) at the top level, the shape operators index on:
//! `{"ts":"...","level":"warn","msg":"using cached secrets","age":"6h","reason":"..."}`.

mod json;

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use json::JsonLayer;

/// The crate version, git commit and commit date of this build, e.g.
/// `0.1.0 (3f2a9c1d0b7e, 2026-12-05)`.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BULWARK_GIT_SHA"),
    ", ",
    env!("BULWARK_BUILD_DATE"),
    ")"
);

/// The git commit of this build, or `unknown`.
pub const GIT_SHA: &str = env!("BULWARK_GIT_SHA");

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Text on a terminal, JSON anywhere else (a container's log, a pipe, a file).
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// A `--log-level` value: a level (`info`) or per-target directives (`info,kube=warn`).
#[derive(Clone, Debug)]
pub struct Level(Targets);

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<Targets>().map(Level).map_err(|e| {
            format!("{e}; expected error, warn, info, debug or trace, optionally with target=level pairs")
        })
    }
}

impl Default for Level {
    fn default() -> Self {
        Level(Targets::new().with_default(tracing::Level::INFO))
    }
}

/// The logging flags every binary accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Minimum level: error, warn, info, debug or trace, optionally with per-target levels
    /// such as `info,kube=warn`.
    #[arg(long, value_name = "LEVEL", default_value = "info", global = true)]
    pub log_level: Level,
    /// Log line format: json for clusters, text for terminals; auto picks text when the log
    /// goes to a terminal.
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t = Format::Auto, global = true)]
    pub log_format: Format,
}

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Standard output, the Kubernetes convention for service logs.
    Stdout,
    /// Standard error, for commands whose standard output is data (explain, dry-run plans).
    Stderr,
}

/// Why the subscriber could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("a global tracing subscriber is already installed")]
pub struct InitError(#[source] tracing_subscriber::util::TryInitError);

/// Installs the global subscriber for `args`, writing to `output`.
pub fn init(args: &LogArgs, output: Output) -> Result<(), InitError> {
    match output {
        Output::Stdout => init_with(args, std::io::stdout, std::io::stdout().is_terminal()),
        Output::Stderr => init_with(args, std::io::stderr, std::io::stderr().is_terminal()),
    }
}

fn init_with<W>(args: &LogArgs, writer: W, terminal: bool) -> Result<(), InitError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(args.log_level.0.clone());
    match args.log_format.resolve(terminal) {
        Format::Json | Format::Auto => registry.with(JsonLayer::new(writer)).try_init(),
        Format::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(terminal),
            )
            .try_init(),
    }
    .map_err(InitError)
}

impl Format {
    /// The format for a log that goes to a terminal or not: `Auto` decided.
    pub fn resolve(self, terminal: bool) -> Format {
        match self {
            Format::Auto if terminal => Format::Text,
            Format::Auto => Format::Json,
            other => other,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Auto => "auto",
            Format::Json => "json",
            Format::Text => "text",
        })
    }
}
