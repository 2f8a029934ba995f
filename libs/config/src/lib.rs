//! Configuration for every Bulwark binary: YAML files into typed structs, human durations,
//! environment overrides under one prefix and `*_env` indirection for secrets.
//!
//! This is the only crate that reads the process environment (see [`ProcessEnv`]); everything
//! else receives typed values. Errors name the file, the line, the field and what was expected,
//! so that a binary can print them and exit with [`EXIT_USAGE`].

mod duration;
mod listen;
mod load;
mod secret;
mod source;

pub use duration::Duration;
pub use listen::{Health, ListenAddr};
pub use load::{Error, Loader, Result, Validate, Violation};
pub use secret::Secret;
pub use source::{NotUnicode, ProcessEnv, Source};

/// Exit code for bad usage or configuration (`EX_USAGE` from `sysexits.h`).
pub const EXIT_USAGE: u8 = 64;
