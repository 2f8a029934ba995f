//! The Keeper sidecar's runtime, between the KSM client (`bulwark-ksm`) and the files on the
//! tmpfs volume: which records a [`bulwark_sidecar_spec::SidecarSpec`] selects, the init and
//! refresh loops with the 24-hour cache fallback, the signal to the application after a
//! change, and the `keeper_sidecar_*` metrics.

pub mod cache;
pub mod config;
pub mod inputs;
pub mod keeper;
pub mod metrics;
pub mod publish;
pub mod render;
pub mod run;
pub mod schedule;
pub mod select;
pub mod signal;
pub mod template;
