//! Process shutdown: one token that SIGTERM, SIGINT or the program itself can trigger.

use tokio_util::sync::CancellationToken;

/// A shutdown trigger shared by every task of a binary; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A trigger that only fires when [`Shutdown::trigger`] is called.
    pub fn new() -> Self {
        Self::default()
    }

    /// A trigger that also fires on SIGTERM or SIGINT. Must be called inside a tokio runtime.
    pub fn on_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let this = Self::new();
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let token = this.token.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                () = token.cancelled() => return,
            };
            tracing::info!(signal = name, "Shutdown requested.");
            token.cancel();
        });
        Ok(this)
    }

    /// Starts shutdown.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// True once shutdown has started.
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when shutdown starts.
    pub async fn wait(&self) {
        self.token.cancelled().await;
    }

    /// The underlying token, for libraries that take one.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }
}
