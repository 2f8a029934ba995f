//! The one error type of the archive pipeline, of verification and of restore.

/// Why a table could not be archived.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {}", database_message(.0))]
    Db(#[from] sqlx::Error),
    /// The table is not shaped as the config says (a missing column, no primary key).
    #[error("{0}")]
    Schema(String),
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
            Error::Schema(_) => "schema",
            Error::Store(_) => "storage",
            Error::Verify { .. } => "verification",
            Error::Copy(_) => "copy",
            Error::Compress(_) => "compress",
            Error::Failpoint(_) => "failpoint",
        }
    }
}

/// What PostgreSQL said, as a user reads it: its message, detail and hint, and the table and
/// column it names. sqlx's own text adds " at line N", a line of PostgreSQL's C source that
/// users took for a line of their config.
fn database_message(error: &sqlx::Error) -> String {
    let Some(db) = error.as_database_error() else {
        return error.to_string();
    };
    let mut text = db.message().to_owned();
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // An integrity violation's detail quotes the row ("Failing row contains (...)"):
        // audit rows are not for logs.
        let detail = pg.detail().filter(|_| !pg.code().starts_with("23"));
        for (label, value) in [
            ("table", pg.table()),
            ("column", pg.column()),
            ("detail", detail),
            ("hint", pg.hint()),
        ] {
            if let Some(value) = value {
                text.push_str(&format!("; {label}: {value}"));
            }
        }
        text.push_str(&format!(" (SQLSTATE {})", pg.code()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn schema_problems_are_not_copy_problems() {
        let error = Error::Schema(
            "public.audit_log has no column \"created\" (timestamp_column)".to_owned(),
        );
        assert_eq!(error.kind(), "schema");
        assert_eq!(
            error.to_string(),
            "public.audit_log has no column \"created\" (timestamp_column)"
        );
    }
}
