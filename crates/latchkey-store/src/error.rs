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
    /// The token was changed (updated, rolled) since the revision the change was made from.
    #[error("the token changed concurrently")]
    Changed,
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
    /// The database cannot be reached (down, restarting, refusing connections, or no
    /// connection free within the pool's timeout). Nothing was changed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database failed.
    #[error("database error: {0}")]
    Backend(sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if unavailable(&e) {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Backend(e)
        }
    }
}

/// Whether `e` means "the database is not reachable now" rather than "this query failed".
fn unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's classes 08 (connection exception) and 57P (operator intervention:
        // shutting down, cannot connect now).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Maps a unique-key violation to `Conflict(what())` and any other error as usual.
pub(crate) fn conflict_if_unique(
    what: impl FnOnce() -> String,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| {
        if unique_violation(&e) {
            StoreError::Conflict(what())
        } else {
            e.into()
        }
    }
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

pub(crate) fn foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

/// `NotFound` when a write touched no row.
pub(crate) fn found(rows_affected: u64) -> Result<(), StoreError> {
    if rows_affected == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn connection_failures_are_unavailable_and_query_failures_are_not() {
        for e in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::ErrorKind::ConnectionRefused.into()),
        ] {
            assert!(matches!(StoreError::from(e), StoreError::Unavailable(_)));
        }
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::Backend(_)
        ));
    }
}
