//! The one error type of the archive pipeline, of verification and of restore.

/// Why a table could not be archived.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("verification failed for {key}: {message}")]
    Verify { key: String, message: String },
    #[error("unexpected COPY output: {0}")]
    Copy(String),
    #[error("compressing the batch: {0}")]
    Compress(String),
    #[error("stopped at failpoint {0}")]
    Failpoint(String),
}

impl Error {
    /// A bounded metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Db(_) => "database",
            Error::Store(_) => "storage",
            Error::Verify { .. } => "verification",
            Error::Copy(_) => "copy",
            Error::Compress(_) => "compress",
            Error::Failpoint(_) => "failpoint",
        }
    }
}
