//! The embedded SQLite backend: what differs from PostgreSQL (opening and pragmas, the quota
//! insert and its group commit ([`group_commit`]), the audit append, the last-use flush,
//! change polling). The rest is [`crate::shared`].
//!
//! WAL mode with `synchronous=FULL`: a commit is on disk before the call returns. Writes go
//! through a pool of exactly one connection, so writers queue in the pool instead of
//! fighting over SQLite's lock (no `SQLITE_BUSY` reaches a caller); reads use their own pool
//! and never wait for writers.

use std::str::FromStr;
use std::time::Duration;

mod group_commit;

use latchkey_core::{AuditEntry, AuditEvent, SecretHash, Token};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Executor, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::mpsc;

use crate::error::{conflict_if_unique, StoreError};
use crate::model::LastUse;
use crate::rows::{self, AuditValues, AUDIT_COLUMNS};
use crate::Change;
use group_commit::Inserter;

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
        if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StoreError::Unsupported(format!(
                    "the directory {} of the SQLite database does not exist: create it, or \
                     choose another file with --database sqlite://PATH",
                    dir.display()
                )));
            }
        }
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

crate::shared::store_impl! {
    store: SqliteStore,
    database: Sqlite,
    reader: reader,
    writer: writer,
    insertion_order: "rowid",
    own: {
    async fn insert_token(
        &self,
        token: &Token,
        hash: &SecretHash,
        quota: u64,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.inserter.insert(token, hash, quota, audit).await
    }

    async fn record_last_used(&self, uses: &[LastUse]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // A few statements for the whole batch: one UPDATE ... FROM (VALUES ...) per chunk
        // instead of one round trip per token. Rows are found by row number (the table's
        // rowid), in order: through the id index, every use cost SQLite a walk of a second
        // B-tree whose pages mostly were not in its cache (docs/performance.md). The id
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
            // the batch's size, and each kept one held its whole program (docs/performance.md).
            update.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
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
}

/// How often a SQLite node looks for membership changes made by another process.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Inserts a token unless its owner already has `quota` (counted in `token_counts`, kept by
/// triggers). The check and the insert are one statement on the single writer connection,
/// so concurrent creates cannot overshoot.
pub(crate) async fn insert_token_within_quota<'e>(
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
