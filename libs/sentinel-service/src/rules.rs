//! The rules in use, and their reload when the file changes.
//!
//! The file is read again every few seconds and compared by content (SHA-256), so a
//! ConfigMap update, which the kubelet makes by swapping a `..data` symlink, is seen however
//! the file's times move. A new file that does not load leaves the rules in use alone and
//! says why, in the log and in `kube_sentinel_rules_last_reload_success` (0).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bulwark_sentinel::detect::Detector;
use bulwark_sentinel::rules::RuleSet;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::metrics;

/// A rule set and where it came from.
#[derive(Debug)]
pub struct Loaded {
    pub detector: Detector,
    /// The file, or `built-in` for the shipped rules.
    pub source: String,
    pub loaded_at_ns: i64,
    digest: [u8; 32],
}

/// The rules in use, swapped whole on reload.
#[derive(Debug)]
pub struct Rules {
    path: Option<PathBuf>,
    current: RwLock<Arc<Loaded>>,
}

impl Rules {
    /// Loads `path`, or the shipped rules without one. The error names the file, the rule and
    /// the field.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let loaded = match path {
            Some(p) => read(p)?,
            None => Loaded {
                detector: Detector::new(RuleSet::defaults()),
                source: "built-in".into(),
                loaded_at_ns: now_ns(),
                digest: [0; 32],
            },
        };
        metrics::rules_loaded(loaded.detector.rules().rules().len(), true);
        Ok(Self {
            path: path.map(Path::to_path_buf),
            current: RwLock::new(Arc::new(loaded)),
        })
    }

    /// The rules in use now.
    pub fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Reads the file again; swaps in its rules if they changed and load. `Ok(true)` when
    /// they were swapped.
    pub fn reload(&self) -> Result<bool, String> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let text =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let digest: [u8; 32] = Sha256::digest(&text).into();
        if digest == self.current().digest {
            return Ok(false);
        }
        let loaded = parse(path, &text, digest)?;
        let count = loaded.detector.rules().rules().len();
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        metrics::rules_loaded(count, true);
        Ok(true)
    }
}

fn read(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let digest = Sha256::digest(&text).into();
    parse(path, &text, digest)
}

fn parse(path: &Path, text: &[u8], digest: [u8; 32]) -> Result<Loaded, String> {
    let origin = path.display().to_string();
    let text = std::str::from_utf8(text).map_err(|_| format!("{origin}: not UTF-8"))?;
    let rules = RuleSet::parse(text, &origin)?;
    Ok(Loaded {
        detector: Detector::new(rules),
        source: origin,
        loaded_at_ns: now_ns(),
        digest,
    })
}

/// Reloads `rules` every `interval` until `stop`.
pub async fn watch(rules: Arc<Rules>, interval: Duration, stop: CancellationToken) {
    // The error of the bad file now in place, so that each bad version counts once.
    let mut failing: Option<String> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        match rules.reload() {
            Ok(false) => {
                if failing.take().is_some() {
                    // The file is back to the rules in use.
                    metrics::rules_loaded(rules.current().detector.rules().rules().len(), true);
                }
            }
            Ok(true) => {
                failing = None;
                let current = rules.current();
                tracing::info!(
                    file = %current.source,
                    rules = current.detector.rules().rules().len(),
                    "Rules reloaded."
                );
                metrics::rules_reload_result(true);
            }
            Err(error) => {
                if failing.as_deref() != Some(error.as_str()) {
                    tracing::error!(
                        error = %error,
                        "The rules file changed but does not load; the rules in use stay."
                    );
                    metrics::rules_reload_result(false);
                    failing = Some(error);
                }
            }
        }
    }
}

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
