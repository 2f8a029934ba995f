//! Readiness checks: named async probes, each with its own timeout.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Probe =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), NotReady>> + Send>> + Send + Sync>;

/// Why a check fails, as `/ready` shows it: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotReady(String);

impl NotReady {
    /// A failure for `reason`, such as `standing by: another replica leads`.
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }

    /// Why the check failed.
    pub fn reason(&self) -> &str {
        &self.0
    }
}

struct Check {
    name: &'static str,
    timeout: Duration,
    probe: Probe,
}

/// The registered readiness checks; cheap to clone and shared with whoever registers checks.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<Check>>>,
}

impl fmt::Debug for Readiness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.lock().iter().map(|c| c.name).collect();
        f.debug_struct("Readiness").field("checks", &names).finish()
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub name: &'static str,
    /// `None` when the check passed, otherwise why it failed (it timed out, or its error).
    pub error: Option<String>,
    pub duration: Duration,
}

/// The result of all checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<CheckOutcome>,
}

impl Report {
    /// True when every check passed.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.error.is_none())
    }

    /// The names of failed checks.
    pub fn failed(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| c.error.is_some())
            .map(|c| c.name)
            .collect()
    }
}

impl Readiness {
    /// Registers a check. `probe` must not block; it is cancelled after `timeout`.
    /// Its error text is shown on `/ready`, so it must never contain a secret.
    pub fn register<F, Fut>(&self, name: &'static str, timeout: Duration, probe: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), NotReady>> + Send + 'static,
    {
        let probe: Probe = Arc::new(move || Box::pin(probe()));
        self.lock().push(Check {
            name,
            timeout,
            probe,
        });
    }

    /// Runs all checks concurrently.
    pub async fn check(&self) -> Report {
        let runs: Vec<_> = self
            .lock()
            .iter()
            .map(|c| {
                let (name, timeout, fut) = (c.name, c.timeout, (c.probe)());
                async move {
                    let start = Instant::now();
                    let error = match tokio::time::timeout(timeout, fut).await {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e.0),
                        Err(_) => Some(format!("timed out after {}ms", timeout.as_millis())),
                    };
                    CheckOutcome {
                        name,
                        error,
                        duration: start.elapsed(),
                    }
                }
            })
            .collect();
        Report {
            checks: futures::future::join_all(runs).await,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Check>> {
        // A panic while holding this lock can only come from a push; the list stays usable.
        self.checks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
