//! The embedded SQLite backend. Token inserts go through group commit
//! ([`crate::group_commit`]).
//!
//! WAL mode with `synchronous=FULL`: a commit is on disk before the call returns. Writes go
//! through a pool of exactly one connection, so writers queue in the pool instead of
//! fighting over SQLite's lock (no `SQLITE_BUSY` reaches a caller); reads use their own pool
//! and never wait for writers.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use latchkey_core::{AuditEntry, AuditEvent, Id, Owner, SecretHash, Token};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Sqlite, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use crate::error::{conflict_if_unique, foreign_key_violation, found, StoreError};
use crate::group_commit::Inserter;
use crate::model::{
    Account, AuditQuery, Direction, LastUse, ListQuery, NewAdmin, Page, StoredToken, User,
};
use crate::rows::{
    self, AccountRow, AuditRow, AuditValues, ExportRow, StoredRow, TokenRow, UserRow,
    AUDIT_COLUMNS, TOKEN_COLUMNS,
};
use crate::{Change, Store};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// SQLite storage in one file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    reader: SqlitePool,
    writer: SqlitePool,
    inserter: Inserter,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at a `sqlite://` URL and runs migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let Some(file) = crate::sqlite_file(url) else {
            return Err(StoreError::Unsupported(
                "an in-memory SQLite database cannot be shared by latchkey's pools; give a file path".into(),
            ));
        };
        create_private(&file);
        // Page caches (negative = KiB), small because they count in resident memory and the
        // OS's page cache holds the file anyway: the writer's keeps the upper levels of the
        // random-key indexes (4 MiB: creates measured the same as with 16 MiB, and the
        // last-use flushes, which touch a page per token used, no longer grow it by 12 MiB);
        // readers mostly fetch single rows.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().pragma("cache_size", "-4096"))
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true).pragma("cache_size", "-1024"))
            .await?;
        Ok(SqliteStore {
            inserter: Inserter::spawn(writer.clone()),
            reader,
            writer,
        })
    }
}

/// Creates the database file, if missing, readable and writable by its owner only: it holds
/// emails, client addresses and secret hashes. SQLite gives the `-wal` and `-shm` files it
/// makes beside it the same mode.
fn create_private(file: &std::path::Path) {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    // An existing file is kept as it is; any other failure is left to SQLite, whose error
    // names the cause (a missing directory, say).
    let _ = options.open(file);
}

impl SqliteStore {
    /// After a conditional write touched `rows_affected` rows: nothing touched means the
    /// token is gone (`NotFound`) or at another revision (`Changed`).
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
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM tokens WHERE id = ? AND owner_kind = ? AND owner_id = ?")
                .bind(id.to_string())
                .bind(kind)
                .bind(owner_id)
                .fetch_optional(&self.writer)
                .await?;
        Err(if exists.is_some() {
            StoreError::Changed
        } else {
            StoreError::NotFound
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        insert_user(&self.writer, user).await
    }

    async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT id, email, created_on FROM users ORDER BY created_on, rowid",
        )
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    async fn user(&self, id: Id) -> Result<Option<User>, StoreError> {
        sqlx::query_as::<_, UserRow>("SELECT id, email, created_on FROM users WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .map(User::try_from)
            .transpose()
    }

    async fn account(&self, id: Id) -> Result<Option<Account>, StoreError> {
        sqlx::query_as::<_, AccountRow>("SELECT id, name, created_on FROM accounts WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .map(Account::try_from)
            .transpose()
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.writer)
            .await?;
        Ok(n as u64)
    }

    async fn create_account(&self, account: &Account) -> Result<(), StoreError> {
        insert_account(&self.writer, account).await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
        sqlx::query_as::<_, AccountRow>(
            "SELECT id, name, created_on FROM accounts ORDER BY created_on, rowid",
        )
        .fetch_all(&self.reader)
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
        insert_membership(&self.writer, account, user, now).await
    }

    async fn remove_member(&self, account: Id, user: Id) -> Result<(), StoreError> {
        let done = sqlx::query("DELETE FROM memberships WHERE account_id = ? AND user_id = ?")
            .bind(account.to_string())
            .bind(user.to_string())
            .execute(&self.writer)
            .await?;
        found(done.rows_affected())
    }

    async fn list_members(&self, account: Id) -> Result<Vec<User>, StoreError> {
        sqlx::query_as::<_, UserRow>(
            "SELECT u.id, u.email, u.created_on FROM users u \
             JOIN memberships m ON m.user_id = u.id WHERE m.account_id = ? \
             ORDER BY m.created_on, u.email",
        )
        .bind(account.to_string())
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(User::try_from)
        .collect()
    }

    async fn accounts_of(&self, user: Id) -> Result<Vec<Account>, StoreError> {
        sqlx::query_as::<_, AccountRow>(
            "SELECT a.id, a.name, a.created_on FROM accounts a \
             JOIN memberships m ON m.account_id = a.id WHERE m.user_id = ? \
             ORDER BY a.created_on, a.rowid",
        )
        .bind(user.to_string())
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(Account::try_from)
        .collect()
    }

    async fn is_member(&self, account: Id, user: Id) -> Result<bool, StoreError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM memberships WHERE account_id = ? AND user_id = ?")
                .bind(account.to_string())
                .bind(user.to_string())
                .fetch_optional(&self.reader)
                .await?;
        Ok(row.is_some())
    }

    async fn insert_token(
        &self,
        token: &Token,
        hash: &SecretHash,
        quota: u64,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.inserter.insert(token, hash, quota, audit).await
    }

    async fn token_by_hash(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        sqlx::query_as::<_, StoredRow>(&format!(
            "SELECT seq, {TOKEN_COLUMNS} FROM tokens WHERE secret_hash = ?"
        ))
        .bind(&hash.as_bytes()[..])
        .fetch_optional(&self.reader)
        .await?
        .map(StoredToken::try_from)
        .transpose()
    }

    async fn get_token(&self, owner: Owner, id: Id) -> Result<Option<Token>, StoreError> {
        let (kind, owner_id) = rows::owner_columns(owner);
        sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ? AND owner_kind = ? AND owner_id = ?"
        ))
        .bind(id.to_string())
        .bind(kind)
        .bind(owner_id)
        .fetch_optional(&self.reader)
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
            "owner_kind = ?1 AND owner_id = ?2 AND ?3 = ?3"
        } else {
            "owner_kind = ?1 AND owner_id = ?2 AND status <> 'expired' \
             AND (expires_on IS NULL OR expires_on > ?3)"
        };
        let order = match query.direction {
            Direction::Asc => "issued_on ASC, seq ASC",
            Direction::Desc => "issued_on DESC, seq DESC",
        };
        let now = rows::secs(query.now);
        let offset = query.page.saturating_sub(1).saturating_mul(query.per_page);
        // Two statements, no transaction: the count and the page both run on the covering
        // owner index. (A window count in the page query made SQLite build every matching row
        // in full before the LIMIT, several times slower.)
        let (total,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) FROM tokens WHERE {filter}"))
                .bind(kind)
                .bind(&owner_id)
                .bind(now)
                .fetch_one(&self.reader)
                .await?;
        let items = sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE {filter} ORDER BY {order} LIMIT ?4 OFFSET ?5"
        ))
        .bind(kind)
        .bind(&owner_id)
        .bind(now)
        .bind(i64::try_from(query.per_page).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
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
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE tokens SET name = ?, status = ?, modified_on = ?, not_before = ?, \
             expires_on = ?, policies = ?, condition = ?, revision = revision + 1 \
             WHERE id = ? AND owner_kind = ? AND owner_id = ? AND revision = ?",
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
        let mut tx = self.writer.begin().await?;
        let done = sqlx::query(
            "UPDATE tokens SET secret_hash = ?, revision = revision + 1 \
             WHERE id = ? AND owner_kind = ? AND owner_id = ? AND revision = ?",
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
        let mut tx = self.writer.begin().await?;
        let done =
            sqlx::query("DELETE FROM tokens WHERE id = ? AND owner_kind = ? AND owner_id = ?")
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
        // 14 parameters a row; SQLite allows 32766 per statement.
        const ROWS_PER_STATEMENT: usize = 2000;
        let mut tx = self.writer.begin().await?;
        for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
            let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
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
            "SELECT seq, secret_hash, {TOKEN_COLUMNS} FROM tokens WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter().map(ExportRow::into_parts).collect()
    }

    async fn record_last_used(&self, uses: &[LastUse]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // A few statements for the whole batch: one UPDATE ... FROM (VALUES ...) per chunk
        // instead of one round trip per token. Rows are found by row number (the table's
        // rowid), in order: through the id index, every use cost SQLite a walk of a second
        // B-tree whose pages mostly were not in its cache (README, "Performance"). The id
        // is compared on the row found, so a use never lands on another token's row.
        const ROWS_PER_STATEMENT: usize = 5000;
        let uses = rows::write_order(uses);
        let mut tx = self.writer.begin().await?;
        for chunk in uses.chunks(ROWS_PER_STATEMENT) {
            let mut update = sqlx::QueryBuilder::<Sqlite>::new(
                "UPDATE tokens SET last_used_on = used.column3 FROM (",
            );
            update.push_values(chunk, |mut row, used| {
                row.push_bind(used.row.0)
                    .push_bind(used.id.to_string())
                    .push_bind(rows::secs(used.at));
            });
            update.push(
                ") AS used WHERE tokens.seq = used.column1 AND tokens.id = used.column2 \
                 AND (tokens.last_used_on IS NULL OR tokens.last_used_on < used.column3)",
            );
            // Not kept in the connection's statement cache: the statement's text differs with
            // the batch's size, and each kept one held its whole program (README, "Performance").
            update.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn create_admin(&self, admin: &NewAdmin, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
        insert_user(&mut *tx, &admin.user).await?;
        insert_account(&mut *tx, &admin.account).await?;
        insert_membership(
            &mut *tx,
            admin.account.id,
            admin.user.id,
            admin.user.created_on,
        )
        .await?;
        insert_token(&mut *tx, &admin.token, &admin.hash, u64::MAX).await?;
        append_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn append_audit(&self, audit: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.writer.begin().await?;
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
        let filter = "owner_kind = ?1 AND owner_id = ?2 AND at >= ?3 AND at < ?4";
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
                .fetch_one(&self.reader)
                .await?;
        let offset = query.page.saturating_sub(1).saturating_mul(query.per_page);
        let items = sqlx::query_as::<_, AuditRow>(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE {filter} ORDER BY {order} \
             LIMIT ?5 OFFSET ?6"
        ))
        .bind(kind)
        .bind(&owner_id)
        .bind(since)
        .bind(before)
        .bind(i64::try_from(query.per_page).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
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
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(AuditEntry::try_from)
        .collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    fn pools(&self) -> Vec<crate::PoolUse> {
        vec![
            crate::pool_use("reader", &self.reader),
            crate::pool_use("writer", &self.writer),
        ]
    }

    /// Polls the membership change counter every [`WATCH_INTERVAL`]: the CLI changes
    /// memberships from another process. (Tokens are changed only through `serve`, which
    /// invalidates its own cache.)
    fn watch(&self) -> Option<mpsc::Receiver<Change>> {
        let (changes, receiver) = mpsc::channel(16);
        let reader = self.reader.clone();
        tokio::spawn(async move {
            let mut seen = None;
            let mut tick = tokio::time::interval(WATCH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let count: Result<(i64,), _> =
                    sqlx::query_as("SELECT n FROM change_counts WHERE what = 'memberships'")
                        .fetch_one(&reader)
                        .await;
                match count {
                    Ok((n,)) => {
                        if seen.is_some_and(|seen| seen != n)
                            && changes.send(Change::Memberships).await.is_err()
                        {
                            return;
                        }
                        seen = Some(n);
                    }
                    Err(error) => tracing::warn!(%error, "cannot read the change counter"),
                }
                if changes.is_closed() {
                    return;
                }
            }
        });
        Some(receiver)
    }
}

/// How often a SQLite node looks for membership changes made by another process.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

async fn insert_user<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    user: &User,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO users (id, email, created_on) VALUES (?, ?, ?)")
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
    db: impl Executor<'e, Database = Sqlite>,
    account: &Account,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO accounts (id, name, created_on) VALUES (?, ?, ?)")
        .bind(account.id.to_string())
        .bind(&account.name)
        .bind(rows::secs(account.created_on))
        .execute(db)
        .await?;
    Ok(())
}

async fn insert_membership<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    account: Id,
    user: Id,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO memberships (account_id, user_id, created_on) VALUES (?, ?, ?)")
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

/// Inserts a token unless its owner already has `quota` (counted in `token_counts`, kept by
/// triggers). The check and the insert are one statement on the single writer connection,
/// so concurrent creates cannot overshoot.
pub(crate) async fn insert_token<'e>(
    db: impl Executor<'e, Database = Sqlite>,
    token: &Token,
    hash: &SecretHash,
    quota: u64,
) -> Result<(), StoreError> {
    let (kind, owner_id) = rows::owner_columns(token.owner);
    let done = sqlx::query(
        "INSERT INTO tokens (id, owner_kind, owner_id, name, status, secret_hash, issued_on, \
         modified_on, last_used_on, not_before, expires_on, policies, condition) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13 \
         WHERE COALESCE((SELECT n FROM token_counts WHERE owner_kind = ?2 AND owner_id = ?3), 0) < ?14",
    )
    .bind(token.id.to_string())
    .bind(kind)
    .bind(&owner_id)
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
    .bind(i64::try_from(quota).unwrap_or(i64::MAX))
    .execute(db)
    .await
    .map_err(conflict_if_unique(|| "token id or secret already exists".into()))?;
    if done.rows_affected() == 0 {
        return Err(StoreError::QuotaExceeded(quota));
    }
    Ok(())
}

/// Commits a one-row write with its audit entry, or rolls back when it touched no row.
async fn commit_audited(
    mut tx: sqlx::Transaction<'_, Sqlite>,
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

/// Appends `event` to the audit chain inside the caller's transaction.
pub(crate) async fn append_audit(
    tx: &mut SqliteConnection,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    append_audits(tx, std::slice::from_ref(event)).await
}

/// Appends `events`, in order, to the audit chain inside the caller's transaction: reads
/// the head once, writes the entries in one statement, moves the head. The single writer
/// connection serializes appends.
pub(crate) async fn append_audits(
    tx: &mut SqliteConnection,
    events: &[AuditEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    let (seq, hash): (i64, Vec<u8>) =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
    let mut prev_seq =
        u64::try_from(seq).map_err(|e| StoreError::Corrupt(format!("audit head: {e}")))?;
    let mut prev_hash = rows::hash32("audit head", &hash)?;
    let mut entries = Vec::with_capacity(events.len());
    for event in events {
        let entry = AuditEntry::chain(event.clone(), prev_seq, prev_hash);
        (prev_seq, prev_hash) = (entry.seq, entry.hash);
        entries.push(entry);
    }
    // 12 parameters a row; SQLite allows 32766 per statement.
    for chunk in entries.chunks(2000) {
        let mut insert =
            sqlx::QueryBuilder::<Sqlite>::new(format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) "));
        insert.push_values(chunk, |mut row, entry| {
            let v = AuditValues::of(entry);
            row.push_bind(v.seq)
                .push_bind(v.id)
                .push_bind(v.at)
                .push_bind(v.action)
                .push_bind(v.actor_token)
                .push_bind(v.owner_kind)
                .push_bind(v.owner_id)
                .push_bind(v.target)
                .push_bind(v.client_ip)
                .push_bind(entry.event.details.clone())
                .push_bind(entry.prev_hash.to_vec())
                .push_bind(entry.hash.to_vec());
        });
        insert.build().execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1")
        .bind(i64::try_from(prev_seq).unwrap_or(i64::MAX))
        .bind(&prev_hash[..])
        .execute(&mut *tx)
        .await?;
    Ok(())
}
