//! Test support for the whole workspace (a dev-dependency only): throwaway PostgreSQL, a moto
//! S3 server, a fake Kubernetes API server, a fake Keeper Secrets Manager server, and helpers to
//! run our binaries as processes.
//! Everything listens on loopback only and is torn down on drop.

pub mod binary;
pub mod keeper;
pub mod kube_api;
pub mod moto;
pub mod postgres;
pub mod promtool;
pub mod tls;
