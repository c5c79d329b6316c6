//! The PostgreSQL backend, for several latchkey nodes behind one database.
//!
//! - Migrations are embedded and run at start under sqlx's advisory lock, so nodes starting
//!   together migrate once.
//! - Quotas hold across nodes: a trigger counts each owner's tokens in `token_counts`, and
//!   an insert holds its owner's count row locked until commit, so concurrent creates are
//!   counted one after another and checked after the insert (see `insert_token` below).
//! - Updates and rolls are conditional on the token's revision: of two racing writers, one
//!   commits and the other gets [`StoreError::Changed`].
//! - Triggers announce token and membership changes on the `latchkey_changes` channel;
//!   [`crate::Store::watch`] turns them into [`crate::Change`]s for cache invalidation.
//! - No call waits longer than [`ACQUIRE_TIMEOUT`] for a connection: while the database is
//!   away, calls fail with [`StoreError::Unavailable`], and the pool reconnects by itself
//!   when it is back.

use std::str::FromStr;
use std::time::Duration;

use latchkey_core::{AuditEntry, AuditEvent, SecretHash, Token};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres};
use tokio::sync::mpsc;

use crate::error::StoreError;
use crate::model::LastUse;
use crate::rows::{self, AuditValues, AUDIT_COLUMNS};
use crate::Change;

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
        // One plain connection first: when the database cannot be reached, the pool would
        // only say that it timed out; this says why (refused, authentication, no database).
        match tokio::time::timeout(
            ACQUIRE_TIMEOUT,
            <PgConnection as sqlx::Connection>::connect_with(&options),
        )
        .await
        {
            Ok(Ok(connection)) => {
                let _ = sqlx::Connection::close(connection).await;
            }
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL: {e}"
                )))
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot connect to PostgreSQL: no answer within {} s",
                    ACQUIRE_TIMEOUT.as_secs()
                )))
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }
}

crate::shared::store_impl! {
    store: PgStore,
    database: Postgres,
    reader: pool,
    writer: pool,
    insertion_order: "seq",
    own: {
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
        insert_token_row(&mut *tx, token, hash).await?;
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
            // the batch's size, and each kept one held its whole program (docs/performance.md).
            update.build().persistent(false).execute(&mut *tx).await?;
        }
        tx.commit().await?;
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
    use latchkey_core::Id;

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
