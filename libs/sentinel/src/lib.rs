//! Sentinel's domain: what to poll from Loki, where to serve, and the limits remediation must
//! respect. Pure: no IO, no async runtime.

pub mod config;
