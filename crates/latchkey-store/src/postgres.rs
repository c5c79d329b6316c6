//! The PostgreSQL backend, for several latchkey nodes behind one database.
//!
//! - Migrations are embedded and run at start under sqlx's advisory lock, so nodes starting
//!   together migrate once.
//! - Quotas hold across nodes: a trigger counts each owner's tokens in `token_counts`, and
//!   an insert holds its owner's count row locked until commit, so concurrent creates are
//!   counted one after another and checked after the insert (see [`PgStore::insert_token`]).
//! - Updates and rolls are conditional on the token's revision: of two racing writers, one
//!   commits and the other gets [`StoreError::Changed`].
//! - Triggers announce token and membership changes on the `latchkey_changes` channel;
//!   [`Store::watch`] turns them into [`Change`]s for cache invalidation.
//! - No call waits longer than [`ACQUIRE_TIMEOUT`] for a connection: while the database is
//!   away, calls fail with [`StoreError::Unavailable`], and the pool reconnects by itself
//!   when it is back.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::{AuditEntry, AuditEvent, Id, Owner, SecretHash, Token};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{Executor, PgConnection, PgPool, Postgres};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::error::{conflict_if_unique, foreign_key_violation, found, StoreError};
use crate::model::{
    Account, AuditQuery, Direction, LastUse, ListQuery, NewAdmin, Page, StoredToken, User,
};
use crate::rows::{
    self, AccountRow, AuditRow, AuditValues, ExportRow, StoredRow, TokenRow, UserRow,
    AUDIT_COLUMNS, TOKEN_COLUMNS,
};
use crate::{Change, Store};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Longest a call waits for a database connection before failing as unavailable.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections per node.
pub const MAX_CONNECTIONS: u32 = 16;
/// The notification channel the triggers announce changes on.
pub const CHANGES_CHANNEL: &str = "latchkey_changes";

/// PostgreSQL storage.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to a `postgres://` URL and runs migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("latchkey");
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Nothing touched by a conditional write: the token is gone (`NotFound`) or at another
    /// revision (`Changed`).
    async fn changed_unless_gone(
        &self,
        owner: Owner,
        id: Id,
        rows_affected: u64,
    ) -> Result<(), StoreError> {
        if rows_affected > 0 {
            return Ok(());
        }
        let (kind, owner_id) = rows::owner_columns(owner);
        let exists: Option<(i32,)> = sqlx::query_as(
            "SELECT 1 FROM tokens WHERE id = $1 AND owner_kind = $2 AND owner_id = $3",
        )
        .bind(id.to_string())
        .bind(kind)
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await?;
        Err(if exists.is_some() {
            StoreError::Changed
        } else {
            StoreError::NotFound
        })
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        insert_user(&self.pool, user).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, created_on FROM users ORDER BY created_on, seq",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    async fn user(&self, id: Id) -> Result<Option<User>, StoreError> {
        sqlx::query_as::<_, UserRow>("SELECT id, email, created_on FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(User::try_from)
            .transpose()
    }

    async fn account(&self, id: Id) -> Result<Option<Account>, StoreError> {
        sqlx::query_as::<_, AccountRow>("SELECT id, name, created_on FROM accounts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(Account::try_from)
            .transpose()
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        insert_account(&self.pool, account).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        sqlx::query_as::<_, AccountRow>(
            "SELECT id, name, created_on FROM accounts ORDER BY created_on, seq",
        )
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Account::try_from)
        .collect()
    }

    async fn add_member(
        &self,
        account: Id,
        user: Id,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        insert_membership(&self.pool, account, user, now).await
    }

    async fn remove_member(&self, account: Id, user: Id) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
            .bind(account.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        found(done.rows_affected())
    }

    async fn list_members(&self, account: Id) -> Result<Vec<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT u.id, u.email, u.created_on FROM users u \
             JOIN memberships m ON m.user_id = u.id WHERE m.account_id = $1 \
             ORDER BY m.created_on, u.email",
        )
        .bind(account.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    async fn accounts_of(&self, user: Id) -> Result<Vec<Account>, StoreError> {
        sqlx::query_as::<_, AccountRow>(
            "SELECT a.id, a.name, a.created_on FROM accounts a \
             JOIN memberships m ON m.account_id = a.id WHERE m.user_id = $1 \
             ORDER BY a.created_on, a.seq",
        )
        .bind(user.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Account::try_from)
        .collect()
    }

    async fn is_member(&self, account: Id, user: Id) -> Result<bool, StoreError> {
        let row: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM memberships WHERE account_id = $1 AND user_id = $2")
                .bind(account.to_string())
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.is_some())
    }

    /// Inserts, then reads the owner's count (which the insert's trigger raised and holds
    /// locked until commit) and rolls back if it is over `quota`.
    async fn insert_token(
        &self,
        token: &Token,
        hash: &SecretHash,
        quota: u64,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_token(&mut *tx, token, hash).await?;
        let (kind, owner_id) = rows::owner_columns(token.owner);
        let (n,): (i64,) =
            sqlx::query_as("SELECT n FROM token_counts WHERE owner_kind = $1 AND owner_id = $2")
                .bind(kind)
                .bind(owner_id)
                .fetch_one(&mut *tx)
                .await?;
        if u64::try_from(n).unwrap_or(0) > quota {
            tx.rollback().await?;
            return Err(StoreError::QuotaExceeded(quota));
        }
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        sqlx::query_as::<_, StoredRow>(&format!(
            "SELECT seq, {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = $1"
        ))
        .bind(&hash.as_bytes()[..])
        .fetch_optional(&self.pool)
        .await?
        .map(StoredToken::try_from)
        .transpose()
    }

    async fn get_token(&self, owner: Owner, id: Id) -> Result<Option<Token>, StoreError> {
        let (kind, owner_id) = rows::owner_columns(owner);
        sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1 AND owner_kind = $2 AND owner_id = $3"
        ))
        .bind(id.to_string())
        .bind(kind)
        .bind(owner_id)
        .fetch_optional(&self.pool)
        .await?
        .map(Token::try_from)
        .transpose()
    }

    async fn list_tokens(
        &self,
        owner: Owner,
        query: &ListQuery,
    ) -> Result<Page<Token>, StoreError> {
        let (kind, owner_id) = rows::owner_columns(owner);
        let filter = if query.include_expired {
            "owner_kind = $1 AND owner_id = $2 AND $3::BIGINT IS NOT NULL"
        } else {
            "owner_kind = $1 AND owner_id = $2 AND status <> 'expired' \
             AND (expires_on IS NULL OR expires_on > $3)"
        };
        let order = match query.direction {
            Direction::Asc => "issued_on ASC, seq ASC",
            Direction::Desc => "issued_on DESC, seq DESC",
        };
        let now = rows::secs(query.now);
        let offset = query.page.saturating_sub(1).saturating_mul(query.per_page);
        let (total,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM tokens WHERE {filter}"))
                .bind(kind)
                .bind(&owner_id)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
        let items = sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE {filter} ORDER BY {order} LIMIT $4 OFFSET $5"
        ))
        .bind(kind)
        .bind(&owner_id)
        .bind(now)
        .bind(i64::try_from(query.per_page).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(Token::try_from)
        .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total: total as u64,
        })
    }

    async fn update_token(&self, token: &Token, audit: &AuditEvent) -> Result<(), StoreError> {
        let (kind, owner_id) = rows::owner_columns(token.owner);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tokens SET name = $1, status = $2, modified_on = $3, not_before = $4, \
             expires_on = $5, policies = $6, condition = $7, revision = revision + 1 \
             WHERE id = $8 AND owner_kind = $9 AND owner_id = $10 AND revision = $11",
        )
        .bind(&token.name)
        .bind(token.status.as_str())
        .bind(rows::secs(token.modified_on))
        .bind(token.not_before.map(rows::secs))
        .bind(token.expires_on.map(rows::secs))
        .bind(rows::policies_json(token))
        .bind(rows::condition_json(token))
        .bind(token.id.to_string())
        .bind(kind)
        .bind(owner_id)
        .bind(rows::revision(token))
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, done.rows_affected(), audit).await?;
        self.changed_unless_gone(token.owner, token.id, done.rows_affected())
            .await
    }

    async fn roll_token(
        &self,
        owner: Owner,
        id: Id,
        revision: u64,
        hash: &SecretHash,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (kind, owner_id) = rows::owner_columns(owner);
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE tokens SET secret_hash = $1, revision = revision + 1 \
             WHERE id = $2 AND owner_kind = $3 AND owner_id = $4 AND revision = $5",
        )
        .bind(&hash.as_bytes()[..])
        .bind(id.to_string())
        .bind(kind)
        .bind(owner_id)
        .bind(i64::try_from(revision).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        commit_audited(tx, done.rows_affected(), audit).await?;
        self.changed_unless_gone(owner, id, done.rows_affected())
            .await
    }

    async fn delete_token(
        &self,
        owner: Owner,
        id: Id,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (kind, owner_id) = rows::owner_columns(owner);
        let mut tx = self.pool.begin().await?;
        let done =
            sqlx::query("DELETE FROM tokens WHERE id = $1 AND owner_kind = $2 AND owner_id = $3")
                .bind(id.to_string())
                .bind(kind)
                .bind(owner_id)
                .execute(&mut *tx)
                .await?;
        commit_audited(tx, done.rows_affected(), audit).await?;
        found(done.rows_affected())
    }

    async fn import_tokens(
        &self,
        tokens: &[(Token, SecretHash)],
        audit: &AuditEvent,
    ) -> Result<u64, StoreError> {
        // 14 parameters a row; PostgreSQL allows 65535 per statement.
        const ROWS_PER_STATEMENT: usize = 2000;
        let mut tx = self.pool.begin().await?;
        for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::<Postgres>::new(
                "INSERT INTO tokens (id, owner_kind, owner_id, name, status, secret_hash, \
                 issued_on, modified_on, last_used_on, not_before, expires_on, policies, \
                 condition, revision) ",
            );
            insert.push_values(chunk, |mut row, (token, hash)| {
                let (kind, owner_id) = rows::owner_columns(token.owner);
                row.push_bind(token.id.to_string())
                    .push_bind(kind)
                    .push_bind(owner_id)
                    .push_bind(token.name.clone())
                    .push_bind(token.status.as_str())
                    .push_bind(hash.as_bytes().to_vec())
                    .push_bind(rows::secs(token.issued_on))
                    .push_bind(rows::secs(token.modified_on))
                    .push_bind(token.last_used_on.map(rows::secs))
                    .push_bind(token.not_before.map(rows::secs))
                    .push_bind(token.expires_on.map(rows::secs))
                    .push_bind(rows::policies_json(token))
                    .push_bind(rows::condition_json(token))
                    .push_bind(rows::revision(token));
            });
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(conflict_if_unique(|| {
                    "a token id or secret already exists".into()
                }))?;
        }
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(tokens.len() as u64)
    }

    async fn export_tokens(
        &self,
        cursor: u64,
        limit: u64,
    ) -> Result<Vec<(u64, Token, SecretHash)>, StoreError> {
        let rows = sqlx::query_as::<_, ExportRow>(&format!(
            "SELECT seq, secret_hash, {TOKEN_COLUMNS} FROM tokens WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ExportRow::into_parts).collect()
    }

    async fn record_last_used(&self, uses: &[LastUse]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // Rows found by row number (the primary key) and taken in that order, so that two
        // nodes flushing overlapping batches lock them in the same order instead of
        // deadlocking. The id is compared on the row found, so a use never lands on
        // another token's row.
        let uses = rows::write_order(uses);
        const ROWS_PER_STATEMENT: usize = 5000;
        let mut tx = self.pool.begin().await?;
        for chunk in uses.chunks(ROWS_PER_STATEMENT) {
            let mut update = sqlx::QueryBuilder::<Postgres>::new(
                "UPDATE tokens SET last_used_on = used.at FROM \
                 (SELECT seq, id, at FROM (",
            );
            update.push_values(chunk, |mut row, used| {
                row.push_bind(used.row.0)
                    .push_bind(used.id.to_string())
                    .push_bind(rows::secs(used.at));
            });
            update.push(
                ") AS v (seq, id, at) ORDER BY seq) AS used \
                 WHERE tokens.seq = used.seq AND tokens.id = used.id \
                 AND (tokens.last_used_on IS NULL OR tokens.last_used_on < used.at)",
            );
            // Not kept in the connection's statement cache: the statement's text differs with
            // the batch's size, and each kept one held its whole program (README, "Performance").
            update.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_admin(&self, admin: &NewAdmin, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        insert_user(&mut *tx, &admin.user).await?;
        insert_account(&mut *tx, &admin.account).await?;
        insert_membership(
            &mut *tx,
            admin.account.id,
            admin.user.id,
            admin.user.created_on,
        )
        .await?;
        insert_token(&mut *tx, &admin.token, &admin.hash).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_audit(&self, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit(
        &self,
        owner: Owner,
        query: &AuditQuery,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let (kind, owner_id) = rows::owner_columns(owner);
        let filter = "owner_kind = $1 AND owner_id = $2 AND at >= $3 AND at < $4";
        let since = query.since.map_or(i64::MIN, rows::secs);
        let before = query.before.map_or(i64::MAX, rows::secs);
        let order = match query.direction {
            Direction::Asc => "seq ASC",
            Direction::Desc => "seq DESC",
        };
        let (total,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM audit_log WHERE {filter}"))
                .bind(kind)
                .bind(&owner_id)
                .bind(since)
                .bind(before)
                .fetch_one(&self.pool)
                .await?;
        let offset = query.page.saturating_sub(1).saturating_mul(query.per_page);
        let items = sqlx::query_as::<_, AuditRow>(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {filter} ORDER BY {order} \
             LIMIT $5 OFFSET $6"
        ))
        .bind(kind)
        .bind(&owner_id)
        .bind(since)
        .bind(before)
        .bind(i64::try_from(query.per_page).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuditEntry::try_from)
        .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total: total as u64,
        })
    }

    async fn audit_entries(
        &self,
        after_seq: u64,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        sqlx::query_as::<_, AuditRow>(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(AuditEntry::try_from)
        .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pools(&self) -> Vec<crate::PoolUse> {
        vec![crate::pool_use("main", &self.pool)]
    }

    fn watch(&self) -> Option<mpsc::Receiver<Change>> {
        let (changes, receiver) = mpsc::channel(4096);
        tokio::spawn(listen(self.pool.clone(), changes));
        Some(receiver)
    }
}

/// Forwards notifications until the receiver is dropped. Whenever the listening connection
/// is lost, a [`Change::Resync`] goes out at once (the cache stops trusting itself while
/// nothing is heard) and again once listening resumes (covering what was said meanwhile).
async fn listen(pool: PgPool, changes: mpsc::Sender<Change>) {
    const RETRY: Duration = Duration::from_millis(500);
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for changes; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANGES_CHANNEL).await {
            tracing::warn!(%error, "cannot listen for changes; retrying");
            tokio::time::sleep(RETRY).await;
            continue;
        }
        if changes.send(Change::Resync).await.is_err() {
            return;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => match parse_change(notification.payload()) {
                    Some(change) => {
                        if changes.send(change).await.is_err() {
                            return;
                        }
                    }
                    None => tracing::warn!(
                        payload = notification.payload(),
                        "unknown change notification"
                    ),
                },
                Ok(None) | Err(_) => {
                    tracing::warn!("lost the change feed's connection; reconnecting");
                    if changes.send(Change::Resync).await.is_err() {
                        return;
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// `t:<token id>` or `m:<account id>:<user id>`, as the triggers write them.
fn parse_change(payload: &str) -> Option<Change> {
    if let Some(id) = payload.strip_prefix("t:") {
        return id.parse().ok().map(Change::Token);
    }
    let (account, user) = payload.strip_prefix("m:")?.split_once(':')?;
    Some(Change::Membership {
        account: account.parse().ok()?,
        user: user.parse().ok()?,
    })
}

async fn insert_user<'e>(
    db: impl Executor<'e, Database = Postgres>,
    user: &User,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO users (id, email, created_on) VALUES ($1, $2, $3)")
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(rows::secs(user.created_on))
        .execute(db)
        .await
        .map_err(conflict_if_unique(|| {
            format!("a user with email {} exists", user.email)
        }))?;
    Ok(())
}

async fn insert_account<'e>(
    db: impl Executor<'e, Database = Postgres>,
    account: &Account,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO accounts (id, name, created_on) VALUES ($1, $2, $3)")
        .bind(account.id.to_string())
        .bind(&account.name)
        .bind(rows::secs(account.created_on))
        .execute(db)
        .await?;
    Ok(())
}

async fn insert_membership<'e>(
    db: impl Executor<'e, Database = Postgres>,
    account: Id,
    user: Id,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO memberships (account_id, user_id, created_on) VALUES ($1, $2, $3)")
        .bind(account.to_string())
        .bind(user.to_string())
        .bind(rows::secs(now))
        .execute(db)
        .await
        .map_err(|e| {
            if foreign_key_violation(&e) {
                StoreError::NotFound
            } else {
                conflict_if_unique(|| format!("user {user} is already a member of {account}"))(e)
            }
        })?;
    Ok(())
}

async fn insert_token<'e>(
    db: impl Executor<'e, Database = Postgres>,
    token: &Token,
    hash: &SecretHash,
) -> Result<(), StoreError> {
    let (kind, owner_id) = rows::owner_columns(token.owner);
    sqlx::query(
        "INSERT INTO tokens (id, owner_kind, owner_id, name, status, secret_hash, issued_on, \
         modified_on, last_used_on, not_before, expires_on, policies, condition, revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(token.id.to_string())
    .bind(kind)
    .bind(owner_id)
    .bind(&token.name)
    .bind(token.status.as_str())
    .bind(&hash.as_bytes()[..])
    .bind(rows::secs(token.issued_on))
    .bind(rows::secs(token.modified_on))
    .bind(token.last_used_on.map(rows::secs))
    .bind(token.not_before.map(rows::secs))
    .bind(token.expires_on.map(rows::secs))
    .bind(rows::policies_json(token))
    .bind(rows::condition_json(token))
    .bind(rows::revision(token))
    .execute(db)
    .await
    .map_err(conflict_if_unique(|| {
        "token id or secret already exists".into()
    }))?;
    Ok(())
}

/// Commits a one-row write with its audit entry, or rolls back when it touched no row.
async fn commit_audited(
    mut tx: sqlx::Transaction<'_, Postgres>,
    rows_affected: u64,
    audit: &AuditEvent,
) -> Result<(), StoreError> {
    if rows_affected == 1 {
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
    }
    Ok(())
}

/// Appends `event` to the audit chain inside the caller's transaction. The head row is
/// locked (`FOR UPDATE`) until commit, so appends from every node follow one another; it
/// is the last lock a write takes, so it cannot deadlock with the token rows.
async fn append_audit(tx: &mut PgConnection, event: &AuditEvent) -> Result<(), StoreError> {
    let (seq, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *tx)
            .await?;
    let prev_seq =
        u64::try_from(seq).map_err(|e| StoreError::Corrupt(format!("audit head: {e}")))?;
    let entry = AuditEntry::chain(event.clone(), prev_seq, rows::hash32("audit head", &hash)?);
    let v = AuditValues::of(&entry);
    sqlx::query(&format!(
        "INSERT INTO audit_log ({AUDIT_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(v.seq)
    .bind(v.id)
    .bind(v.at)
    .bind(v.action)
    .bind(v.actor_token)
    .bind(v.owner_kind)
    .bind(v.owner_id)
    .bind(v.target)
    .bind(v.client_ip)
    .bind(&entry.event.details)
    .bind(&entry.prev_hash[..])
    .bind(&entry.hash[..])
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(v.seq)
        .bind(&entry.hash[..])
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_parse_as_the_triggers_write_them() {
        let a: Id = "0123456789abcdef0123456789abcdef".parse().unwrap();
        let b: Id = "fedcba9876543210fedcba9876543210".parse().unwrap();
        assert_eq!(parse_change(&format!("t:{a}")), Some(Change::Token(a)));
        assert_eq!(
            parse_change(&format!("m:{a}:{b}")),
            Some(Change::Membership {
                account: a,
                user: b
            })
        );
        assert_eq!(parse_change("x:1"), None);
        assert_eq!(parse_change("t:nope"), None);
    }
}
