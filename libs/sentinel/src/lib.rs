//! Sentinel's domain: the config, the rules and the one-pass matcher, message extraction, the
//! versioned normaliser, workloads and fingerprints, the store's records, and remediation's
//! safety decisions. Pure: no IO, no
//! async runtime.

pub mod audit;
pub mod config;
pub mod detect;
pub mod extract;
pub mod fingerprint;
pub mod model;
pub mod normalize;
pub mod remediation;
pub mod rules;
pub mod store;
