//! The archiver's domain: which PostgreSQL audit tables to archive, how old rows must be, and
//! where the archives go (`config`, pure), and the pipeline that moves rows to object storage
//! and proves they arrived before deleting them (`pipeline`, `restore`).

pub mod config;
mod jsonl;
pub mod metrics;
pub mod object;
pub mod pipeline;
pub mod restore;
pub mod run;
mod sql;

// Only for its `std` feature: see the workspace's Cargo.toml.
use crc32fast as _;
