//! Test support for the whole workspace (a dev-dependency only): throwaway PostgreSQL, a moto
//! server, a fake Kubernetes API server, fake Keeper Secrets Manager, GCP, Azure and Loki servers,
//! and helpers to run our binaries as processes.
//! Everything listens on loopback only and is torn down on drop.

//!
//! Each harness is a feature (`process`, `tls`, `keeper`, `cloud`, `kube`, `postgres`, `moto`), so that
//! a test crate compiles only what it uses; `demo` builds the binary that `cargo xtask demo`
//! runs.

#[cfg(feature = "process")]
pub mod binary;
#[cfg(feature = "cloud")]
pub mod cloud;
#[cfg(feature = "keeper")]
pub mod keeper;
#[cfg(feature = "kube")]
pub mod kube_api;
#[cfg(feature = "logs")]
pub mod logs;
#[cfg(feature = "loki")]
pub mod loki;
#[cfg(feature = "moto")]
pub mod moto;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "process")]
pub mod promtool;
#[cfg(feature = "tls")]
pub mod tls;
