//! The archiver's domain: which PostgreSQL audit tables to archive, how old rows must be, and
//! where the archives go (`config`, pure), the pipeline that moves rows to object storage and
//! proves they arrived before deleting them (`pipeline`, with `manifest` for what describes an
//! archive and `lock` for one run per database), and `restore`.

pub mod config;
pub mod error;
mod jsonl;
pub mod lock;
pub mod manifest;
pub mod metrics;
pub mod object;
pub mod pipeline;
pub mod restore;
pub mod run;
mod sql;

pub use error::Error;

// Only for its `std` feature: see the workspace's Cargo.toml.
use crc32fast as _;
