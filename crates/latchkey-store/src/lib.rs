//! latchkey's storage: one [`Store`] trait, implemented by [`SqliteStore`] (the embedded
//! default) and [`PgStore`] (several nodes on one PostgreSQL). Every write is committed
//! before the call returns, so an acknowledged write survives a crash. Every token write
//! takes the [`AuditEvent`] that records it and appends it to the hash-chained audit log
//! in the same transaction: a write that cannot be audited does not happen.

mod error;
mod model;
mod postgres;
mod rows;
mod shared;
mod sqlite;
pub mod testing;

use std::sync::Arc;

use async_trait::async_trait;
use latchkey_core::{AuditEntry, AuditEvent, Id, Owner, SecretHash, Token};
use time::OffsetDateTime;

pub use error::StoreError;
pub use model::{
    Account, AuditQuery, Direction, LastUse, ListQuery, NewAdmin, Page, RowId, StoredToken, User,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Storage of users, accounts, memberships and tokens.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Adds a user. `Conflict` if the email is taken.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;
    /// All users, oldest first.
    async fn list_users(&self) -> Result<Vec<User>, StoreError>;
    /// One user.
    async fn user(&self, id: Id) -> Result<Option<User>, StoreError>;
    /// The user with this email (emails are unique).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// How many users exist (zero means a fresh database).
    async fn count_users(&self) -> Result<u64, StoreError>;
    /// Adds an account.
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;
    /// All accounts, oldest first.
    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError>;
    /// One account.
    async fn account(&self, id: Id) -> Result<Option<Account>, StoreError>;
    /// Makes `user` a member of `account`. `NotFound` if either is missing, `Conflict` if
    /// already a member.
    async fn add_member(
        &self,
        account: Id,
        user: Id,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Removes a membership. `NotFound` if there was none.
    async fn remove_member(&self, account: Id, user: Id) -> Result<(), StoreError>;
    /// The members of an account.
    async fn list_members(&self, account: Id) -> Result<Vec<User>, StoreError>;
    /// The accounts a user is a member of, oldest first.
    async fn accounts_of(&self, user: Id) -> Result<Vec<Account>, StoreError>;
    /// Whether `user` is a member of `account`.
    async fn is_member(&self, account: Id, user: Id) -> Result<bool, StoreError>;

    /// Stores a new token under its secret's hash, unless its owner already has `quota`
    /// tokens (`QuotaExceeded`).
    async fn insert_token(
        &self,
        token: &Token,
        hash: &SecretHash,
        quota: u64,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// The token whose secret hashes to `hash`, and its row.
    async fn token_by_hash(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError>;
    /// The token `id` of `owner`.
    async fn get_token(&self, owner: Owner, id: Id) -> Result<Option<Token>, StoreError>;
    /// One page of `owner`'s tokens in issue order.
    async fn list_tokens(&self, owner: Owner, query: &ListQuery)
        -> Result<Page<Token>, StoreError>;
    /// Replaces the mutable fields of an existing token (name, status, times, policies, exposure,
    /// condition, modified_on) and increments its revision, provided it is still at
    /// `token.revision` (the revision the change was made from). `NotFound` if it is gone,
    /// `Changed` if another change was committed in between.
    async fn update_token(&self, token: &Token, audit: &AuditEvent) -> Result<(), StoreError>;
    /// Replaces the secret hash of token `id` of `owner` (the old secret stops working) and
    /// increments its revision, provided it is still at `revision`. An exposed token's
    /// exposure is cleared and it becomes active again (the leaked secret no longer works). `NotFound` if it is gone,
    /// `Changed` if another change was committed in between.
    async fn roll_token(
        &self,
        owner: Owner,
        id: Id,
        revision: u64,
        hash: &SecretHash,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Deletes token `id` of `owner`. `NotFound` if it is gone.
    async fn delete_token(
        &self,
        owner: Owner,
        id: Id,
        audit: &AuditEvent,
    ) -> Result<(), StoreError>;
    /// Inserts many tokens in one transaction, with no quota check: the bulk path for
    /// imports and benchmarks. Returns how many were inserted. One audit entry records the
    /// whole batch.
    async fn import_tokens(
        &self,
        tokens: &[(Token, SecretHash)],
        audit: &AuditEvent,
    ) -> Result<u64, StoreError>;
    /// Up to `limit` tokens with their secret hashes, in issue order, after position
    /// `cursor` (0 for the first call). Each comes with its position: the cursor of the
    /// next call. The export path; secrets are never stored, so none can be exported.
    async fn export_tokens(
        &self,
        cursor: u64,
        limit: u64,
    ) -> Result<Vec<(u64, Token, SecretHash)>, StoreError>;
    /// Records last-use times in one batch, never moving a time backwards. A use whose row
    /// no longer holds its token (deleted since) is dropped.
    async fn record_last_used(&self, uses: &[LastUse]) -> Result<(), StoreError>;

    /// Creates a user, an account, the membership and an admin token in one transaction.
    async fn create_admin(&self, admin: &NewAdmin, audit: &AuditEvent) -> Result<(), StoreError>;

    /// Appends an entry that records no token write (e.g. a throttled address).
    async fn append_audit(&self, audit: &AuditEvent) -> Result<(), StoreError>;
    /// One page of the entries about `owner`'s tokens.
    async fn list_audit(
        &self,
        owner: Owner,
        query: &AuditQuery,
    ) -> Result<Page<AuditEntry>, StoreError>;
    /// Up to `limit` entries after `after_seq`, oldest first: the whole chain, for
    /// verifying it.
    async fn audit_entries(
        &self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    /// Whether the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The connection pools and how busy they are, for metrics.
    fn pools(&self) -> Vec<PoolUse> {
        Vec::new()
    }

    /// Changes committed by any process on this database, as they happen, for cache
    /// invalidation across processes and nodes. `None` when the backend has no such feed.
    fn watch(&self) -> Option<tokio::sync::mpsc::Receiver<Change>> {
        None
    }
}

/// One connection pool of a store, as [`Store::pools`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// `reader` or `writer` (SQLite), `main` (PostgreSQL).
    pub name: &'static str,
    /// Connections open.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most it may open.
    pub max: u32,
}

fn pool_use<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolUse {
    PoolUse {
        name,
        open: pool.size(),
        idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
        max: pool.options().get_max_connections(),
    }
}

/// A change reported by [`Store::watch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Token `id` was updated, rolled or deleted.
    Token(Id),
    /// Some memberships were added or removed (which ones is not known).
    Memberships,
    /// A membership was added or removed.
    Membership {
        /// The account.
        account: Id,
        /// The user.
        user: Id,
    },
    /// Changes may have been missed (the feed's connection dropped): drop everything cached.
    Resync,
}

/// Opens (creating if needed) and migrates the database at `url`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::Unsupported(format!(
            "database URL must start with sqlite:// or postgres:// (got {:?})",
            url.split(':').next().unwrap_or_default()
        )))
    }
}

/// `url` with its password (if any) replaced by `***`, for messages and logs.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // Fails only for URLs that cannot carry a password, which this one did.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The file behind a `sqlite:` URL, if it names one (`None` for any other URL: sqlx would
/// read `postgres://host/db` as a file name).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr;
    // sqlx names an in-memory database `file:sqlx-in-memory-N`, which is no file.
    if !url.starts_with("sqlite:") || url.contains(":memory:") || url.contains("mode=memory") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (!path.as_os_str().is_empty() && path != std::path::Path::new(":memory:"))
        .then(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::{redacted_url, sqlite_file};

    #[test]
    fn only_sqlite_urls_name_a_file() {
        assert_eq!(sqlite_file("sqlite://dir/x.db"), Some("dir/x.db".into()));
        assert_eq!(sqlite_file("postgres://user@host/db"), None);
        assert_eq!(sqlite_file("postgresql://host:5432/db"), None);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redacted_url("postgres://latchkey:s3cr%40t@db:5432/latchkey?sslmode=require"),
            "postgres://latchkey:***@db:5432/latchkey?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://u@h/d"),
            "postgres://u@h/d",
            "no password, nothing to hide"
        );
        assert_eq!(redacted_url("sqlite://latchkey.db"), "sqlite://latchkey.db");
        assert_eq!(
            redacted_url("sqlite:///tmp/a:b@c.db"),
            "sqlite:///tmp/a:b@c.db"
        );
    }
}
