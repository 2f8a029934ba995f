//! `cargo xtask demo`: the local end-to-end run on embedded defaults, with no cluster.
//!
//! It builds the four binaries and the `demo` program of `bulwark-test-util` (which holds the
//! fake Keeper server, the throwaway PostgreSQL and the certificates the run needs), then runs
//! it; xtask itself links none of them.

use std::path::PathBuf;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::project_root;

pub(crate) fn run(sh: &Shell) -> anyhow::Result<()> {
    println!("==> building the binaries and the demo");
    cmd!(sh, "cargo build --locked --bins")
        .run()
        .context("cannot build the binaries")?;
    cmd!(
        sh,
        "cargo build --locked -p bulwark-test-util --features demo --bin demo"
    )
    .run()
    .context("cannot build the demo")?;
    let bin_dir = sh
        .var("CARGO_TARGET_DIR")
        .map_or_else(|_| project_root().join("target"), PathBuf::from)
        .join("debug");
    let demo = bin_dir.join("demo");
    let root = project_root();
    cmd!(sh, "{demo} {bin_dir} {root}")
        .run()
        .context("the demo failed")
}
