//! The small HTTP server every long-running Bulwark binary runs beside its main work:
//! `/health` (liveness: answers while the process runs, with no dependency checks),
//! `/ready` (readiness: runs the registered checks, each with a timeout, and names the failed
//! ones), and `/metrics` (Prometheus text). Plus [`Shutdown`]: SIGTERM/SIGINT handling with a
//! drain deadline that every server and loop of a binary shares.

mod readiness;
mod server;
mod service;
mod shutdown;

pub use readiness::{CheckOutcome, NotReady, Readiness, Report};
pub use server::{App, HealthState, serve};
pub use service::Service;
pub use shutdown::Shutdown;
