//! The part of the [`Store`](crate::Store) implementation both backends share, written once.
//!
//! SQL here runs on SQLite and PostgreSQL alike (sqlx's SQLite driver binds `$N` placeholders
//! as PostgreSQL does). The code is a macro rather than generic functions because sqlx's
//! generic executors need a long list of bounds on every function; expanded in each
//! backend's module, it is checked against that backend's concrete types.
//!
//! A backend expands [`store_impl!`] in its own module, giving its store type, its sqlx
//! database type, the pool fields for reads and for writes, the column that breaks ties in
//! insertion order (`rowid` on SQLite, `seq` on PostgreSQL), and the methods that differ
//! (`insert_token`, `record_last_used`, `pools`, `watch`). Its module must also define:
//!
//! - `async fn append_audit(tx: &mut <connection>, event: &AuditEvent) -> Result<(), StoreError>`,
//!   which appends one entry to the audit chain inside the caller's transaction (the locking
//!   differs per backend).
//!
//! The macro defines, in that module, the helpers the backend's own methods may call too:
//! `insert_user`, `insert_account`, `insert_membership`, `insert_token_row` (a plain insert,
//! no quota check) and `commit_audited`.

/// Expands to a backend's `impl Store` (shared methods plus the backend's own) and the shared
/// helpers. See the module documentation.
macro_rules! store_impl {
    (
        store: $store:ty,
        database: $db:ty,
        reader: $reader:ident,
        writer: $writer:ident,
        insertion_order: $order:literal,
        own: { $($own:tt)* }
    ) => {
        #[async_trait::async_trait]
        impl $crate::Store for $store {
            async fn create_user(&self, user: &$crate::User) -> Result<(), $crate::StoreError> {
                insert_user(&self.$writer, user).await
            }

            async fn list_users(&self) -> Result<Vec<$crate::User>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::UserRow>(concat!(
                    "SELECT id, email, created_on FROM users ORDER BY created_on, ",
                    $order
                ))
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map($crate::User::try_from)
                .collect()
            }

            async fn user(
                &self,
                id: latchkey_core::Id,
            ) -> Result<Option<$crate::User>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::UserRow>(
                    "SELECT id, email, created_on FROM users WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.$reader)
                .await?
                .map($crate::User::try_from)
                .transpose()
            }

            async fn user_by_email(
                &self,
                email: &str,
            ) -> Result<Option<$crate::User>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::UserRow>(
                    "SELECT id, email, created_on FROM users WHERE email = $1",
                )
                .bind(email)
                .fetch_optional(&self.$reader)
                .await?
                .map($crate::User::try_from)
                .transpose()
            }

            async fn count_users(&self) -> Result<u64, $crate::StoreError> {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
                    .fetch_one(&self.$writer)
                    .await?;
                Ok(n as u64)
            }

            async fn create_account(
                &self,
                account: &$crate::Account,
            ) -> Result<(), $crate::StoreError> {
                insert_account(&self.$writer, account).await
            }

            async fn list_accounts(&self) -> Result<Vec<$crate::Account>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::AccountRow>(concat!(
                    "SELECT id, name, created_on FROM accounts ORDER BY created_on, ",
                    $order
                ))
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map($crate::Account::try_from)
                .collect()
            }

            async fn account(
                &self,
                id: latchkey_core::Id,
            ) -> Result<Option<$crate::Account>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::AccountRow>(
                    "SELECT id, name, created_on FROM accounts WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.$reader)
                .await?
                .map($crate::Account::try_from)
                .transpose()
            }

            async fn add_member(
                &self,
                account: latchkey_core::Id,
                user: latchkey_core::Id,
                now: time::OffsetDateTime,
            ) -> Result<(), $crate::StoreError> {
                insert_membership(&self.$writer, account, user, now).await
            }

            async fn remove_member(
                &self,
                account: latchkey_core::Id,
                user: latchkey_core::Id,
            ) -> Result<(), $crate::StoreError> {
                let done =
                    sqlx::query("DELETE FROM memberships WHERE account_id = $1 AND user_id = $2")
                        .bind(account.to_string())
                        .bind(user.to_string())
                        .execute(&self.$writer)
                        .await?;
                $crate::error::found(done.rows_affected())
            }

            async fn list_members(
                &self,
                account: latchkey_core::Id,
            ) -> Result<Vec<$crate::User>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::UserRow>(
                    "SELECT u.id, u.email, u.created_on FROM users u \
                     JOIN memberships m ON m.user_id = u.id WHERE m.account_id = $1 \
                     ORDER BY m.created_on, u.email",
                )
                .bind(account.to_string())
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map($crate::User::try_from)
                .collect()
            }

            async fn accounts_of(
                &self,
                user: latchkey_core::Id,
            ) -> Result<Vec<$crate::Account>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::AccountRow>(concat!(
                    "SELECT a.id, a.name, a.created_on FROM accounts a \
                     JOIN memberships m ON m.account_id = a.id WHERE m.user_id = $1 \
                     ORDER BY a.created_on, a.",
                    $order
                ))
                .bind(user.to_string())
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map($crate::Account::try_from)
                .collect()
            }

            async fn is_member(
                &self,
                account: latchkey_core::Id,
                user: latchkey_core::Id,
            ) -> Result<bool, $crate::StoreError> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM memberships WHERE account_id = $1 AND user_id = $2",
                )
                .bind(account.to_string())
                .bind(user.to_string())
                .fetch_one(&self.$reader)
                .await?;
                Ok(n > 0)
            }

            async fn token_by_hash(
                &self,
                hash: &latchkey_core::SecretHash,
            ) -> Result<Option<$crate::StoredToken>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::StoredRow>(&format!(
                    "SELECT seq, {} FROM tokens WHERE secret_hash = $1",
                    $crate::rows::TOKEN_COLUMNS
                ))
                .bind(&hash.as_bytes()[..])
                .fetch_optional(&self.$reader)
                .await?
                .map($crate::StoredToken::try_from)
                .transpose()
            }

            async fn get_token(
                &self,
                owner: latchkey_core::Owner,
                id: latchkey_core::Id,
            ) -> Result<Option<latchkey_core::Token>, $crate::StoreError> {
                let (kind, owner_id) = $crate::rows::owner_columns(owner);
                sqlx::query_as::<_, $crate::rows::TokenRow>(&format!(
                    "SELECT {} FROM tokens WHERE id = $1 AND owner_kind = $2 AND owner_id = $3",
                    $crate::rows::TOKEN_COLUMNS
                ))
                .bind(id.to_string())
                .bind(kind)
                .bind(owner_id)
                .fetch_optional(&self.$reader)
                .await?
                .map(latchkey_core::Token::try_from)
                .transpose()
            }

            async fn list_tokens(
                &self,
                owner: latchkey_core::Owner,
                query: &$crate::ListQuery,
            ) -> Result<$crate::Page<latchkey_core::Token>, $crate::StoreError> {
                let (kind, owner_id) = $crate::rows::owner_columns(owner);
                // `$3` stays bound either way, so both statements take the same arguments.
                let filter = if query.include_expired {
                    "owner_kind = $1 AND owner_id = $2 AND CAST($3 AS BIGINT) IS NOT NULL"
                } else {
                    "owner_kind = $1 AND owner_id = $2 AND status <> 'expired' \
                     AND (expires_on IS NULL OR expires_on > $3)"
                };
                let order = match query.direction {
                    $crate::Direction::Asc => "issued_on ASC, seq ASC",
                    $crate::Direction::Desc => "issued_on DESC, seq DESC",
                };
                let now = $crate::rows::secs(query.now);
                let offset = query.page.saturating_sub(1).saturating_mul(query.per_page);
                // Two statements, no transaction: the count and the page both run on the
                // covering owner index. (A window count in the page query made SQLite build
                // every matching row in full before the LIMIT, several times slower.)
                let (total,): (i64,) =
                    sqlx::query_as(&format!("SELECT COUNT(*) FROM tokens WHERE {filter}"))
                        .bind(kind)
                        .bind(&owner_id)
                        .bind(now)
                        .fetch_one(&self.$reader)
                        .await?;
                let items = sqlx::query_as::<_, $crate::rows::TokenRow>(&format!(
                    "SELECT {} FROM tokens WHERE {filter} ORDER BY {order} LIMIT $4 OFFSET $5",
                    $crate::rows::TOKEN_COLUMNS
                ))
                .bind(kind)
                .bind(&owner_id)
                .bind(now)
                .bind(i64::try_from(query.per_page).unwrap_or(i64::MAX))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map(latchkey_core::Token::try_from)
                .collect::<Result<_, _>>()?;
                Ok($crate::Page {
                    items,
                    total: total as u64,
                })
            }

            async fn update_token(
                &self,
                token: &latchkey_core::Token,
                audit: &latchkey_core::AuditEvent,
            ) -> Result<(), $crate::StoreError> {
                let (kind, owner_id) = $crate::rows::owner_columns(token.owner);
                let mut tx = self.$writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE tokens SET name = $1, status = $2, modified_on = $3, not_before = $4, \
                     expires_on = $5, policies = $6, condition = $7, exposure = $12, \
                     revision = revision + 1 \
                     WHERE id = $8 AND owner_kind = $9 AND owner_id = $10 AND revision = $11",
                )
                .bind(&token.name)
                .bind(token.status.as_str())
                .bind($crate::rows::secs(token.modified_on))
                .bind(token.not_before.map($crate::rows::secs))
                .bind(token.expires_on.map($crate::rows::secs))
                .bind($crate::rows::policies_json(token))
                .bind($crate::rows::condition_json(token))
                .bind(token.id.to_string())
                .bind(kind)
                .bind(owner_id)
                .bind($crate::rows::revision(token))
                .bind($crate::rows::exposure_json(token))
                .execute(&mut *tx)
                .await?;
                commit_audited(tx, done.rows_affected(), audit).await?;
                changed_unless_gone(&self.$writer, token.owner, token.id, done.rows_affected())
                    .await
            }

            async fn roll_token(
                &self,
                owner: latchkey_core::Owner,
                id: latchkey_core::Id,
                revision: u64,
                hash: &latchkey_core::SecretHash,
                audit: &latchkey_core::AuditEvent,
            ) -> Result<(), $crate::StoreError> {
                let (kind, owner_id) = $crate::rows::owner_columns(owner);
                let mut tx = self.$writer.begin().await?;
                let done = sqlx::query(
                    "UPDATE tokens SET secret_hash = $1, revision = revision + 1, \
                     status = CASE WHEN exposure IS NULL THEN status ELSE 'active' END, \
                     exposure = NULL \
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
                changed_unless_gone(&self.$writer, owner, id, done.rows_affected()).await
            }

            async fn delete_token(
                &self,
                owner: latchkey_core::Owner,
                id: latchkey_core::Id,
                audit: &latchkey_core::AuditEvent,
            ) -> Result<(), $crate::StoreError> {
                let (kind, owner_id) = $crate::rows::owner_columns(owner);
                let mut tx = self.$writer.begin().await?;
                let done = sqlx::query(
                    "DELETE FROM tokens WHERE id = $1 AND owner_kind = $2 AND owner_id = $3",
                )
                .bind(id.to_string())
                .bind(kind)
                .bind(owner_id)
                .execute(&mut *tx)
                .await?;
                commit_audited(tx, done.rows_affected(), audit).await?;
                $crate::error::found(done.rows_affected())
            }

            async fn import_tokens(
                &self,
                tokens: &[(latchkey_core::Token, latchkey_core::SecretHash)],
                audit: &latchkey_core::AuditEvent,
            ) -> Result<u64, $crate::StoreError> {
                // 14 parameters a row; SQLite allows 32766 per statement, PostgreSQL 65535.
                const ROWS_PER_STATEMENT: usize = 2000;
                let mut tx = self.$writer.begin().await?;
                for chunk in tokens.chunks(ROWS_PER_STATEMENT) {
                    let mut insert = sqlx::QueryBuilder::<$db>::new(concat!(
                        "INSERT INTO tokens (",
                        $crate::rows::token_insert_columns!(),
                        ") "
                    ));
                    insert.push_values(chunk, |mut row, (token, hash)| {
                        let (kind, owner_id) = $crate::rows::owner_columns(token.owner);
                        row.push_bind(token.id.to_string())
                            .push_bind(kind)
                            .push_bind(owner_id)
                            .push_bind(token.name.clone())
                            .push_bind(token.status.as_str())
                            .push_bind(hash.as_bytes().to_vec())
                            .push_bind($crate::rows::secs(token.issued_on))
                            .push_bind($crate::rows::secs(token.modified_on))
                            .push_bind(token.last_used_on.map($crate::rows::secs))
                            .push_bind(token.not_before.map($crate::rows::secs))
                            .push_bind(token.expires_on.map($crate::rows::secs))
                            .push_bind($crate::rows::policies_json(token))
                            .push_bind($crate::rows::condition_json(token))
                            .push_bind($crate::rows::revision(token))
                            .push_bind($crate::rows::exposure_json(token));
                    });
                    insert
                        .build()
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::error::conflict_if_unique(|| {
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
            ) -> Result<Vec<(u64, latchkey_core::Token, latchkey_core::SecretHash)>, $crate::StoreError>
            {
                let rows = sqlx::query_as::<_, $crate::rows::ExportRow>(&format!(
                    "SELECT seq, secret_hash, {} FROM tokens WHERE seq > $1 ORDER BY seq LIMIT $2",
                    $crate::rows::TOKEN_COLUMNS
                ))
                .bind(i64::try_from(cursor).unwrap_or(i64::MAX))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await?;
                rows.into_iter().map($crate::rows::ExportRow::into_parts).collect()
            }

            async fn create_admin(
                &self,
                admin: &$crate::NewAdmin,
                audit: &latchkey_core::AuditEvent,
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self.$writer.begin().await?;
                insert_user(&mut *tx, &admin.user).await?;
                insert_account(&mut *tx, &admin.account).await?;
                insert_membership(
                    &mut *tx,
                    admin.account.id,
                    admin.user.id,
                    admin.user.created_on,
                )
                .await?;
                insert_token_row(&mut *tx, &admin.token, &admin.hash).await?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn append_audit(
                &self,
                audit: &latchkey_core::AuditEvent,
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self.$writer.begin().await?;
                append_audit(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_audit(
                &self,
                owner: latchkey_core::Owner,
                query: &$crate::AuditQuery,
            ) -> Result<$crate::Page<latchkey_core::AuditEntry>, $crate::StoreError> {
                let (kind, owner_id) = $crate::rows::owner_columns(owner);
                let filter = "owner_kind = $1 AND owner_id = $2 AND at >= $3 AND at < $4";
                let since = query.since.map_or(i64::MIN, $crate::rows::secs);
                let before = query.before.map_or(i64::MAX, $crate::rows::secs);
                let order = match query.direction {
                    $crate::Direction::Asc => "seq ASC",
                    $crate::Direction::Desc => "seq DESC",
                };
                let (total,): (i64,) =
                    sqlx::query_as(&format!("SELECT COUNT(*) FROM audit_log WHERE {filter}"))
                        .bind(kind)
                        .bind(&owner_id)
                        .bind(since)
                        .bind(before)
                        .fetch_one(&self.$reader)
                        .await?;
                let offset = query.page.saturating_sub(1).saturating_mul(query.per_page);
                let items = sqlx::query_as::<_, $crate::rows::AuditRow>(&format!(
                    "SELECT {} FROM audit_log WHERE {filter} ORDER BY {order} \
                     LIMIT $5 OFFSET $6",
                    $crate::rows::AUDIT_COLUMNS
                ))
                .bind(kind)
                .bind(&owner_id)
                .bind(since)
                .bind(before)
                .bind(i64::try_from(query.per_page).unwrap_or(i64::MAX))
                .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map(latchkey_core::AuditEntry::try_from)
                .collect::<Result<_, _>>()?;
                Ok($crate::Page {
                    items,
                    total: total as u64,
                })
            }

            async fn audit_entries(
                &self,
                after_seq: u64,
                limit: u64,
            ) -> Result<Vec<latchkey_core::AuditEntry>, $crate::StoreError> {
                sqlx::query_as::<_, $crate::rows::AuditRow>(&format!(
                    "SELECT {} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
                    $crate::rows::AUDIT_COLUMNS
                ))
                .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.$reader)
                .await?
                .into_iter()
                .map(latchkey_core::AuditEntry::try_from)
                .collect()
            }

            async fn ping(&self) -> Result<(), $crate::StoreError> {
                sqlx::query("SELECT 1").execute(&self.$reader).await?;
                Ok(())
            }

            $($own)*
        }

        async fn insert_user<'e>(
            db: impl sqlx::Executor<'e, Database = $db>,
            user: &$crate::User,
        ) -> Result<(), $crate::StoreError> {
            sqlx::query("INSERT INTO users (id, email, created_on) VALUES ($1, $2, $3)")
                .bind(user.id.to_string())
                .bind(&user.email)
                .bind($crate::rows::secs(user.created_on))
                .execute(db)
                .await
                .map_err($crate::error::conflict_if_unique(|| {
                    format!("a user with email {} exists", user.email)
                }))?;
            Ok(())
        }

        async fn insert_account<'e>(
            db: impl sqlx::Executor<'e, Database = $db>,
            account: &$crate::Account,
        ) -> Result<(), $crate::StoreError> {
            sqlx::query("INSERT INTO accounts (id, name, created_on) VALUES ($1, $2, $3)")
                .bind(account.id.to_string())
                .bind(&account.name)
                .bind($crate::rows::secs(account.created_on))
                .execute(db)
                .await?;
            Ok(())
        }

        async fn insert_membership<'e>(
            db: impl sqlx::Executor<'e, Database = $db>,
            account: latchkey_core::Id,
            user: latchkey_core::Id,
            now: time::OffsetDateTime,
        ) -> Result<(), $crate::StoreError> {
            sqlx::query(
                "INSERT INTO memberships (account_id, user_id, created_on) VALUES ($1, $2, $3)",
            )
            .bind(account.to_string())
            .bind(user.to_string())
            .bind($crate::rows::secs(now))
            .execute(db)
            .await
            .map_err(|e| {
                if $crate::error::foreign_key_violation(&e) {
                    $crate::StoreError::NotFound
                } else {
                    $crate::error::conflict_if_unique(|| {
                        format!("user {user} is already a member of {account}")
                    })(e)
                }
            })?;
            Ok(())
        }

        /// Inserts a token row, with no quota check.
        async fn insert_token_row<'e>(
            db: impl sqlx::Executor<'e, Database = $db>,
            token: &latchkey_core::Token,
            hash: &latchkey_core::SecretHash,
        ) -> Result<(), $crate::StoreError> {
            let (kind, owner_id) = $crate::rows::owner_columns(token.owner);
            sqlx::query(concat!(
                "INSERT INTO tokens (",
                $crate::rows::token_insert_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            ))
            .bind(token.id.to_string())
            .bind(kind)
            .bind(owner_id)
            .bind(&token.name)
            .bind(token.status.as_str())
            .bind(&hash.as_bytes()[..])
            .bind($crate::rows::secs(token.issued_on))
            .bind($crate::rows::secs(token.modified_on))
            .bind(token.last_used_on.map($crate::rows::secs))
            .bind(token.not_before.map($crate::rows::secs))
            .bind(token.expires_on.map($crate::rows::secs))
            .bind($crate::rows::policies_json(token))
            .bind($crate::rows::condition_json(token))
            .bind($crate::rows::revision(token))
            .bind($crate::rows::exposure_json(token))
            .execute(db)
            .await
            .map_err($crate::error::conflict_if_unique(|| {
                "token id or secret already exists".into()
            }))?;
            Ok(())
        }

        /// Commits a one-row write with its audit entry, or rolls back when it touched no row.
        async fn commit_audited(
            mut tx: sqlx::Transaction<'_, $db>,
            rows_affected: u64,
            audit: &latchkey_core::AuditEvent,
        ) -> Result<(), $crate::StoreError> {
            if rows_affected == 1 {
                append_audit(&mut tx, audit).await?;
                tx.commit().await?;
            } else {
                tx.rollback().await?;
            }
            Ok(())
        }

        /// After a conditional write touched `rows_affected` rows: nothing touched means the
        /// token is gone (`NotFound`) or at another revision (`Changed`).
        async fn changed_unless_gone<'e>(
            db: impl sqlx::Executor<'e, Database = $db>,
            owner: latchkey_core::Owner,
            id: latchkey_core::Id,
            rows_affected: u64,
        ) -> Result<(), $crate::StoreError> {
            if rows_affected > 0 {
                return Ok(());
            }
            let (kind, owner_id) = $crate::rows::owner_columns(owner);
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM tokens WHERE id = $1 AND owner_kind = $2 AND owner_id = $3",
            )
            .bind(id.to_string())
            .bind(kind)
            .bind(owner_id)
            .fetch_one(db)
            .await?;
            Err(if n > 0 {
                $crate::StoreError::Changed
            } else {
                $crate::StoreError::NotFound
            })
        }
    };
}

pub(crate) use store_impl;
