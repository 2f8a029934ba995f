//! What every release artifact is stamped with: the version, the commit and its time (never the
//! build clock), the source repository, and the registry the images are named for.

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::env_var;

/// Where images go when `BULWARK_REGISTRY` does not say: the repository's GitHub owner on GHCR.
const DEFAULT_REGISTRY: &str = "ghcr.io/bulwark-k8s";

#[derive(Debug, Clone)]
pub(crate) struct Stamp {
    /// The workspace version (`workspace.package.version`).
    pub(crate) version: String,
    /// The full commit hash, with `-dirty` when the work tree has uncommitted changes.
    pub(crate) revision: String,
    /// Seconds since the epoch: `SOURCE_DATE_EPOCH`, else the commit's time.
    pub(crate) epoch: i64,
    /// `workspace.package.repository`.
    pub(crate) source: String,
    /// `BULWARK_REGISTRY`, else ghcr.io/bulwark-k8s: images are `<registry>/<binary>`.
    pub(crate) registry: String,
}

impl Stamp {
    pub(crate) fn read(sh: &Shell) -> anyhow::Result<Self> {
        let manifest = crate::project_root().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("cannot read {}", manifest.display()))?;
        let toml: toml::Table = text.parse().context("the workspace Cargo.toml")?;
        let package = toml
            .get("workspace")
            .and_then(|w| w.get("package"))
            .context("Cargo.toml has no [workspace.package]")?;
        let field = |name: &str| -> anyhow::Result<String> {
            package
                .get(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .with_context(|| format!("[workspace.package] has no {name}"))
        };
        let commit = cmd!(sh, "git rev-parse HEAD")
            .quiet()
            .read()
            .context("the release is stamped with the git commit: is this a git clone?")?;
        let dirty = !cmd!(sh, "git status --porcelain --untracked-files=no")
            .quiet()
            .read()?
            .is_empty();
        let epoch = match env_var("SOURCE_DATE_EPOCH") {
            Some(value) => value
                .to_string_lossy()
                .trim()
                .parse()
                .context("SOURCE_DATE_EPOCH is not a number of seconds")?,
            None => cmd!(sh, "git log -1 --format=%ct")
                .quiet()
                .read()?
                .trim()
                .parse()
                .context("git log gave no commit time")?,
        };
        let registry = env_var("BULWARK_REGISTRY")
            .map(|r| r.to_string_lossy().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| DEFAULT_REGISTRY.to_owned());
        Ok(Stamp {
            version: field("version")?,
            revision: if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            },
            epoch,
            source: field("repository")?,
            registry,
        })
    }

    /// The commit time in RFC 3339, as the `created` fields want it.
    pub(crate) fn created(&self) -> anyhow::Result<String> {
        let at = jiff::Timestamp::from_second(self.epoch)
            .with_context(|| format!("{} is not a time", self.epoch))?;
        Ok(at.to_string())
    }

    /// The commit as `--version` shows it: 12 hex digits, and `-dirty`.
    pub(crate) fn short_revision(&self) -> String {
        let (commit, dirty) = match self.revision.strip_suffix("-dirty") {
            Some(commit) => (commit, "-dirty"),
            None => (self.revision.as_str(), ""),
        };
        format!("{}{dirty}", &commit[..commit.len().min(12)])
    }

    /// The image name of `binary`, without tag or digest.
    pub(crate) fn repository(&self, binary: &str) -> String {
        format!("{}/{binary}", self.registry)
    }
}
