//! `latchkey export` and `latchkey import`: a whole deployment as JSON lines, to move it
//! between databases (SQLite to PostgreSQL and back) without reissuing a token.
//!
//! One JSON object per line, each with a `type`: a `header` first, then every `user`,
//! `account`, `membership` and `token`, tokens in issue order. Tokens carry the SHA-256 of
//! their secret (`secret_hash`, hex); secrets are never stored, so none can be exported.
//! Times are Unix seconds, as stored. Membership times are not carried: an imported
//! membership is dated at the import.

use std::io::{BufRead, Write};

use anyhow::{bail, Context};
use latchkey_core::{
    AuditAction, AuditEvent, Condition, Id, Owner, Policy, SecretHash, Status, Token,
};
use latchkey_store::{Account, Store, User};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The export format's version, in the header line.
pub const FORMAT_VERSION: u32 = 1;
/// Tokens read from the store, or written to it, per call.
const BATCH: usize = 5000;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Record {
    /// First line: what this is.
    Header {
        /// Always "latchkey".
        format: String,
        /// [`FORMAT_VERSION`].
        version: u32,
    },
    /// A user.
    User {
        /// User id.
        id: Id,
        /// Email.
        email: String,
        /// Unix seconds.
        created_on: i64,
    },
    /// An account.
    Account {
        /// Account id.
        id: Id,
        /// Display name.
        name: String,
        /// Unix seconds.
        created_on: i64,
    },
    /// A user's membership of an account.
    Membership {
        /// Account id.
        account_id: Id,
        /// User id.
        user_id: Id,
    },
    /// A token and the hash of its secret.
    Token(Box<TokenRecord>),
}

/// A token as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Token id.
    pub id: Id,
    /// `user` or `account`.
    pub owner_kind: String,
    /// The owning user or account.
    pub owner_id: Id,
    /// Name.
    pub name: String,
    /// Stored status.
    pub status: Status,
    /// Unix seconds.
    pub issued_on: i64,
    /// Unix seconds.
    pub modified_on: i64,
    /// Unix seconds.
    pub last_used_on: Option<i64>,
    /// Unix seconds.
    pub not_before: Option<i64>,
    /// Unix seconds.
    pub expires_on: Option<i64>,
    /// Policies, as stored.
    pub policies: Vec<Policy>,
    /// Address condition, as stored.
    pub condition: Condition,
    /// Change counter.
    pub revision: u64,
    /// Where and when its secret was reported leaked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<latchkey_core::Exposure>,
    /// SHA-256 of the secret, 64 hex digits.
    pub secret_hash: String,
}

impl TokenRecord {
    fn new(token: &Token, hash: &SecretHash) -> Self {
        let (owner_kind, owner_id) = match token.owner {
            Owner::User(id) => ("user", id),
            Owner::Account(id) => ("account", id),
        };
        TokenRecord {
            id: token.id,
            owner_kind: owner_kind.into(),
            owner_id,
            name: token.name.clone(),
            status: token.status,
            issued_on: token.issued_on.unix_timestamp(),
            modified_on: token.modified_on.unix_timestamp(),
            last_used_on: token.last_used_on.map(OffsetDateTime::unix_timestamp),
            not_before: token.not_before.map(OffsetDateTime::unix_timestamp),
            expires_on: token.expires_on.map(OffsetDateTime::unix_timestamp),
            policies: token.policies.clone(),
            condition: token.condition.clone(),
            revision: token.revision,
            exposure: token.exposure.clone(),
            secret_hash: hex::encode(hash.as_bytes()),
        }
    }

    fn into_token(self) -> anyhow::Result<(Token, SecretHash)> {
        let owner = match self.owner_kind.as_str() {
            "user" => Owner::User(self.owner_id),
            "account" => Owner::Account(self.owner_id),
            other => bail!(
                "token {}: owner_kind {other:?} is neither user nor account",
                self.id
            ),
        };
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&self.secret_hash, &mut hash)
            .with_context(|| format!("token {}: secret_hash is not 64 hex digits", self.id))?;
        let token = Token {
            id: self.id,
            owner,
            name: self.name,
            status: self.status,
            issued_on: time(self.issued_on)?,
            modified_on: time(self.modified_on)?,
            last_used_on: self.last_used_on.map(time).transpose()?,
            not_before: self.not_before.map(time).transpose()?,
            expires_on: self.expires_on.map(time).transpose()?,
            policies: self.policies,
            condition: self.condition,
            revision: self.revision,
            exposure: self.exposure,
        };
        Ok((token, SecretHash(hash)))
    }
}

fn time(secs: i64) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(secs).with_context(|| format!("{secs} is not a time"))
}

fn write_line(out: &mut impl Write, record: &Record) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// What an export or import moved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Users.
    pub users: u64,
    /// Accounts.
    pub accounts: u64,
    /// Memberships.
    pub memberships: u64,
    /// Tokens.
    pub tokens: u64,
}

/// Writes the whole of `store` to `out`.
pub async fn export(store: &dyn Store, out: &mut impl Write) -> anyhow::Result<Counts> {
    let mut counts = Counts::default();
    write_line(
        out,
        &Record::Header {
            format: "latchkey".into(),
            version: FORMAT_VERSION,
        },
    )?;
    for user in store.list_users().await? {
        write_line(
            out,
            &Record::User {
                id: user.id,
                email: user.email,
                created_on: user.created_on.unix_timestamp(),
            },
        )?;
        counts.users += 1;
    }
    let accounts = store.list_accounts().await?;
    for account in &accounts {
        write_line(
            out,
            &Record::Account {
                id: account.id,
                name: account.name.clone(),
                created_on: account.created_on.unix_timestamp(),
            },
        )?;
        counts.accounts += 1;
    }
    for account in &accounts {
        for member in store.list_members(account.id).await? {
            write_line(
                out,
                &Record::Membership {
                    account_id: account.id,
                    user_id: member.id,
                },
            )?;
            counts.memberships += 1;
        }
    }
    let mut cursor = 0;
    loop {
        let page = store.export_tokens(cursor, BATCH as u64).await?;
        let Some((last, _, _)) = page.last() else {
            break;
        };
        cursor = *last;
        for (_, token, hash) in &page {
            write_line(out, &Record::Token(Box::new(TokenRecord::new(token, hash))))?;
            counts.tokens += 1;
        }
    }
    out.flush()?;
    Ok(counts)
}

/// Reads an export from `input` into `store`, which must be empty (no users): an import
/// never merges into a live deployment. It is not one transaction: if it fails, start
/// again on a new empty database.
pub async fn import(
    store: &dyn Store,
    input: impl BufRead,
    now: OffsetDateTime,
) -> anyhow::Result<Counts> {
    if store.count_users().await? > 0 {
        bail!("the database already has users; import only into an empty database (run `latchkey migrate` on a new one, not `serve`)");
    }
    let mut counts = Counts::default();
    let mut tokens = Vec::with_capacity(BATCH);
    let mut header = false;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("reading line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line)
            .with_context(|| format!("line {number} is not a latchkey export record"))?;
        let at = || format!("line {number}");
        match record {
            Record::Header { format, version } => {
                if format != "latchkey" || version != FORMAT_VERSION {
                    bail!("line {number}: a {format} export of version {version}; this latchkey reads latchkey version {FORMAT_VERSION}");
                }
                header = true;
            }
            _ if !header => bail!("line {number}: the export must start with its header line"),
            Record::User {
                id,
                email,
                created_on,
            } => {
                let user = User {
                    id,
                    email,
                    created_on: time(created_on).with_context(at)?,
                };
                store.create_user(&user).await.with_context(at)?;
                counts.users += 1;
            }
            Record::Account {
                id,
                name,
                created_on,
            } => {
                let account = Account {
                    id,
                    name,
                    created_on: time(created_on).with_context(at)?,
                };
                store.create_account(&account).await.with_context(at)?;
                counts.accounts += 1;
            }
            Record::Membership {
                account_id,
                user_id,
            } => {
                store
                    .add_member(account_id, user_id, now)
                    .await
                    .with_context(at)?;
                counts.memberships += 1;
            }
            Record::Token(record) => {
                tokens.push(record.into_token().with_context(at)?);
                if tokens.len() == BATCH {
                    counts.tokens += store
                        .import_tokens(&tokens, &import_event(&tokens, now))
                        .await?;
                    tokens.clear();
                }
            }
        }
    }
    if !header {
        bail!("the input is empty: no export header");
    }
    if !tokens.is_empty() {
        counts.tokens += store
            .import_tokens(&tokens, &import_event(&tokens, now))
            .await?;
    }
    Ok(counts)
}

/// The audit entry of one imported batch.
fn import_event(tokens: &[(Token, SecretHash)], now: OffsetDateTime) -> AuditEvent {
    let mut event = AuditEvent::new(AuditAction::TokensImport, now);
    event.details = serde_json::json!({"tokens": tokens.len()}).to_string();
    event
}
