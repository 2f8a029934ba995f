//! `injector-webhook`: the mutating admission webhook that adds Keeper Secrets Manager
//! delivery (tmpfs volume, init container, sidecar) to pods annotated
//! `keeper.security/inject: "true"`.
//!
//! This binary only wires libraries together; see ARCHITECTURE.md.

use std::path::PathBuf;
use std::process::ExitCode;

use bulwark_kube::{LeaderElector, LeaderLabel, LeaseSettings};
use bulwark_log::Output;
use bulwark_webhook::config::Config;
use clap::{Parser, Subcommand};

/// mimalloc rather than the C library's allocator: the static musl images would otherwise get
/// musl's, which is slow under concurrent allocation, and with glibc it takes about a tenth
/// off admission's CPU time (`cargo bench -p injector-webhook`). Without transparent huge pages
/// (the `no_thp` feature) resident memory stays within the 20 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BINARY: &str = "injector-webhook";

/// The default port of `/health`, `/ready` and `/metrics` (controller-runtime's probe port).
const HEALTH_PORT: u16 = 8081;

/// Keeper Secrets Manager injection webhook for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = BINARY, version = bulwark_log::VERSION)]
struct Cli {
    /// YAML config file; without one, defaults and BULWARK_INJECTOR_WEBHOOK_* variables apply.
    #[arg(long, short, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(flatten)]
    log: bulwark_log::LogArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print what the webhook would do to the pods in a manifest (Pods or workloads with a pod
    /// template), offline: the JSON patch and the mutated pod, as YAML.
    Explain {
        /// The manifest, YAML or JSON; `-` reads standard input.
        file: PathBuf,
        /// Print only the spec of each injected pod, as the JSON the keeper containers read
        /// from BULWARK_INJECT_SPEC, one line per pod.
        #[arg(long)]
        spec: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        // Explain writes YAML to standard output, so its logs go to standard error.
        Some(Command::Explain { file, spec }) => {
            let file = file.clone();
            let show = if *spec {
                bulwark_webhook::explain::Show::Spec
            } else {
                bulwark_webhook::explain::Show::Everything
            };
            bulwark_app::main(
                BINARY,
                &cli.log,
                Output::Stderr,
                cli.config.as_deref(),
                |config: Config| async move {
                    let (origin, text) = bulwark_app::read_input(&file)?;
                    let yaml =
                        bulwark_webhook::explain::explain(&text, &origin, &config.defaults, show)?;
                    #[allow(clippy::print_stdout)] // The explanation is this command's output.
                    {
                        print!("{yaml}");
                    }
                    Ok(())
                },
            )
        }
        None => bulwark_app::main(BINARY, &cli.log, Output::Stdout, cli.config.as_deref(), run),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let metrics = bulwark_app::metrics(BINARY, &[])?;
    bulwark_webhook::metrics::describe();
    let health = bulwark_app::serve_health(&config.health, HEALTH_PORT, metrics).await?;
    let shutdown = health.shutdown.token();
    let mut labelling = None;
    let election = if config.leader_election.enabled {
        let le = &config.leader_election;
        let namespace = le.namespace.clone().unwrap_or_default();
        let identity = le.identity.clone().unwrap_or_default();
        let client = bulwark_kube::client(&bulwark_kube::ClientOptions {
            kubeconfig: config.kubernetes.kubeconfig.clone(),
            context: config.kubernetes.context.clone(),
        })
        .await?;
        let mut settings =
            LeaseSettings::new(le.lease_name.clone(), namespace.clone(), identity.clone());
        settings.lease_duration = le.lease_duration.get();
        settings.renew_deadline = le.renew_deadline.get();
        settings.retry_period = le.retry_period.get();
        let (elector, leadership) = LeaderElector::new(client.clone(), settings)?;
        // The leader labels its own pod and the Service selects the label; every replica
        // stays ready, so rollouts and drains are not held up by followers.
        let label = LeaderLabel::new(
            client,
            &namespace,
            identity,
            le.pod_label.clone(),
            le.retry_period.get(),
        );
        labelling = Some(tokio::spawn(label.run(leadership, shutdown.clone())));
        Some(tokio::spawn(elector.run(shutdown.clone())))
    } else {
        None
    };
    let webhook = bulwark_webhook::Webhook::new(config.defaults);
    let served = bulwark_webhook::server::run(&config.webhook, webhook, shutdown.clone()).await;
    health.shutdown.trigger();
    // The leader removes its label and releases the Lease on shutdown, so that a standby
    // takes over at once.
    for task in [labelling, election].into_iter().flatten() {
        let _ = task.await;
    }
    health.stop().await?;
    Ok(served?)
}
