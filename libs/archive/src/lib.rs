//! The archiver's domain: which PostgreSQL audit tables to archive, how old rows must be, and
//! where the archives go. Pure: no IO, no async runtime.

pub mod config;
