//! Storage errors.

/// What can go wrong in a [`crate::Store`] call.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (or belongs to another owner).
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken (e.g. an email already in use).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The owner already holds as many tokens as allowed.
    #[error("token quota of {0} reached")]
    QuotaExceeded(u64),
    /// The URL names a backend this build cannot use.
    #[error("{0}")]
    Unsupported(String),
    /// Stored data could not be read back (a bug or a hand-edited database).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The write was not committed (its batch failed, or the writer stopped).
    #[error("not committed: {0}")]
    Aborted(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
