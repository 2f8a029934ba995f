//! `cargo xtask templates [--check]`: what Go's `text/template` with Sprig makes of the
//! template corpus, written to `libs/agent/tests/templates/expected.json` (the file the
//! agent's corpus test compares our engine with), or with `--check` compared with the
//! committed file, so that CI fails when the two disagree.
//!
//! Go and Sprig come from Debian (`golang-go`, `golang-github-masterminds-sprig-dev` 3.2.3,
//! which `prereqs` installs), run in GOPATH mode so that nothing is downloaded.

use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{find_program, project_root};

/// Where the corpus, the Go program and its committed output live.
const DIR: &str = "libs/agent/tests/templates";
/// Debian's Go packages' GOPATH, which holds Sprig and its dependencies.
const GOPATH: &str = "/usr/share/gocode";

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Write,
    Check,
}

pub(crate) fn run(sh: &Shell, mode: Mode) -> anyhow::Result<()> {
    let go = find_program("go").context(
        "go is not on PATH: install golang-go and golang-github-masterminds-sprig-dev (cargo xtask prereqs does)",
    )?;
    anyhow::ensure!(
        Path::new(GOPATH)
            .join("src/github.com/Masterminds/sprig")
            .is_dir(),
        "Sprig is not in {GOPATH}: install golang-github-masterminds-sprig-dev"
    );
    let dir = project_root().join(DIR);
    let _in_dir = sh.push_dir(&dir);
    let cache = std::env::temp_dir().join("bulwark-gocache");
    let version = cmd!(sh, "{go} version").quiet().read()?;
    let output = cmd!(sh, "{go} run golden.go corpus.json")
        .env("GO111MODULE", "off")
        .env("GOPATH", GOPATH)
        .env("GOCACHE", &cache)
        .quiet()
        .read()
        .context("golden.go failed")?;
    let output = format!("{output}\n");
    let expected = dir.join("expected.json");
    match mode {
        Mode::Write => {
            std::fs::write(&expected, &output)
                .with_context(|| format!("cannot write {}", expected.display()))?;
            eprintln!("templates: wrote {DIR}/expected.json ({version})");
        }
        Mode::Check => {
            let committed = std::fs::read_to_string(&expected)
                .with_context(|| format!("cannot read {}", expected.display()))?;
            anyhow::ensure!(
                committed == output,
                "{DIR}/expected.json is not what {version} with Sprig makes of corpus.json: run `cargo xtask templates` and review the difference"
            );
            eprintln!("templates: {DIR}/expected.json is what {version} with Sprig prints");
        }
    }
    Ok(())
}
