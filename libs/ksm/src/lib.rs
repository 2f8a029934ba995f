//! A Keeper Secrets Manager client: the KSM wire protocol of the official SDKs
//! (research/injector.md §2) on hyper and rustls with ring.
//!
//! Why not the official `keeper-secrets-manager-core` crate: see ARCHITECTURE.md ("Why our own
//! KSM client"). In short, it brings reqwest and with it aws-lc-rs (a second TLS stack, banned
//! by deny.toml), ignores any port in `hostname`, and retries a key-rotation error forever
//! when the server key is configured. Wire compatibility is proven against the fake Keeper
//! server, whose own compatibility the official Python SDK proves.

mod client;
mod config;
mod crypto;
mod keys;
mod model;

pub use client::{Client, Error, Options};
pub use config::{ConfigError, KsmConfig};
pub use crypto::CryptoError;
pub use model::{Field, File, Folder, Query, Record, Snapshot};
