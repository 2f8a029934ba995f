//! The options shared by the release commands (`build`, `image`, `sbom`, `sign`, `verify`,
//! `release`); each command says which it takes.

use std::path::PathBuf;

use anyhow::Context;
use xshell::Shell;

use crate::build::{Arch, BINARIES};

#[derive(Debug)]
pub(crate) struct Args {
    /// `--arch` (repeatable); both architectures without it.
    pub(crate) arches: Vec<Arch>,
    /// `--bin` (repeatable); the four binaries without it.
    pub(crate) binaries: Vec<&'static str>,
    out: Option<PathBuf>,
    key: Option<PathBuf>,
    pub(crate) push: bool,
    pub(crate) dry_run: bool,
    /// `--with-signatures`: `push` copies the signatures too.
    pub(crate) with_signatures: bool,
}

impl Args {
    /// `--out`, else `<target>/oci`.
    pub(crate) fn out(&self, sh: &Shell) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| crate::build::target_dir(sh).join("oci"))
    }

    pub(crate) fn key(&self) -> anyhow::Result<PathBuf> {
        self.key.clone().context("--key FILE is needed")
    }

    pub(crate) fn key_if_given(&self) -> Option<&PathBuf> {
        self.key.as_ref()
    }
}

/// Parses `args`, refusing any option not in `allowed`.
pub(crate) fn parse(args: &[&str], allowed: &[&str]) -> anyhow::Result<Args> {
    let mut parsed = Args {
        arches: Vec::new(),
        binaries: Vec::new(),
        out: None,
        key: None,
        push: false,
        dry_run: false,
        with_signatures: false,
    };
    let mut rest = args.iter();
    while let Some(&arg) = rest.next() {
        anyhow::ensure!(
            allowed.contains(&arg),
            "unknown argument `{arg}`: this command takes {}",
            allowed.join(", ")
        );
        let mut value = || {
            rest.next()
                .copied()
                .with_context(|| format!("{arg} needs a value"))
        };
        match arg {
            "--arch" => parsed.arches.push(Arch::parse(value()?)?),
            "--bin" => {
                let name = value()?;
                let binary = BINARIES.iter().find(|b| **b == name).with_context(|| {
                    format!("unknown binary {name:?}: one of {}", BINARIES.join(", "))
                })?;
                parsed.binaries.push(binary);
            }
            "--out" => parsed.out = Some(PathBuf::from(value()?)),
            "--key" => parsed.key = Some(PathBuf::from(value()?)),
            "--push" => parsed.push = true,
            "--dry-run" => parsed.dry_run = true,
            "--with-signatures" => parsed.with_signatures = true,
            _ => unreachable!("every allowed option is matched"),
        }
    }
    if parsed.arches.is_empty() {
        parsed.arches = vec![Arch::X86_64, Arch::Aarch64];
    }
    if parsed.binaries.is_empty() {
        parsed.binaries = BINARIES.to_vec();
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let args = parse(
            &["--arch", "arm64", "--bin", "sentinel"],
            &["--arch", "--bin"],
        )
        .unwrap();
        assert_eq!(args.arches, [Arch::Aarch64]);
        assert_eq!(args.binaries, ["sentinel"]);
        let all = parse(&[], &[]).unwrap();
        assert_eq!(all.arches.len(), 2);
        assert_eq!(all.binaries, BINARIES);
        let error = parse(&["--key", "k"], &["--arch"]).unwrap_err().to_string();
        assert!(error.contains("unknown argument `--key`"), "{error}");
        let error = parse(&["--bin", "nope"], &["--bin"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown binary \"nope\""), "{error}");
        assert!(parse(&["--arch"], &["--arch"]).is_err());
    }
}
