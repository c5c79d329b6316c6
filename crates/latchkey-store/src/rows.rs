//! Row structs and their conversion to and from domain types.

use std::borrow::Cow;

use latchkey_core::{
    AuditAction, AuditEntry, AuditEvent, Condition, Id, Owner, Policy, SecretHash, Status, Token,
};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{Account, LastUse, RowId, StoredToken, User};

/// The columns of `tokens` that make up a [`Token`].
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub id: String,
    pub owner_kind: String,
    pub owner_id: String,
    pub name: String,
    pub status: String,
    pub issued_on: i64,
    pub modified_on: i64,
    pub last_used_on: Option<i64>,
    pub not_before: Option<i64>,
    pub expires_on: Option<i64>,
    pub policies: String,
    pub condition: String,
    pub revision: i64,
    pub exposure: Option<String>,
}

/// The column list matching [`TokenRow`].
pub(crate) const TOKEN_COLUMNS: &str = "id, owner_kind, owner_id, name, status, issued_on, \
     modified_on, last_used_on, not_before, expires_on, policies, condition, revision, exposure";

/// The columns an insert into `tokens` names, in the order both backends bind them (a
/// macro, so that statements can be built with `concat!`).
macro_rules! token_insert_columns {
    () => {
        "id, owner_kind, owner_id, name, status, secret_hash, issued_on, modified_on, \
         last_used_on, not_before, expires_on, policies, condition, revision, exposure"
    };
}
pub(crate) use token_insert_columns;

/// A token row with its row number, as [`crate::Store::token_by_hash`] reads it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StoredRow {
    pub seq: i64,
    #[sqlx(flatten)]
    pub token: TokenRow,
}

impl TryFrom<StoredRow> for StoredToken {
    type Error = StoreError;

    fn try_from(row: StoredRow) -> Result<Self, StoreError> {
        Ok(StoredToken {
            token: Token::try_from(row.token)?,
            row: RowId(row.seq),
        })
    }
}

/// `uses` in the order a batch is written ([`LastUse::latest_per_token`]), copied only when
/// they are not already (latchkey's own flush passes them so).
pub(crate) fn write_order(uses: &[LastUse]) -> Cow<'_, [LastUse]> {
    if LastUse::is_latest_per_token(uses) {
        Cow::Borrowed(uses)
    } else {
        Cow::Owned(LastUse::latest_per_token(uses.to_vec()))
    }
}

/// A token row with its position and secret hash, for export.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct ExportRow {
    pub seq: i64,
    pub secret_hash: Vec<u8>,
    #[sqlx(flatten)]
    pub token: TokenRow,
}

impl ExportRow {
    pub(crate) fn into_parts(self) -> Result<(u64, Token, SecretHash), StoreError> {
        let hash: [u8; 32] = self
            .secret_hash
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("secret_hash", "not 32 bytes"))?;
        let seq = u64::try_from(self.seq).map_err(|e| corrupt("seq", e))?;
        Ok((seq, Token::try_from(self.token)?, SecretHash(hash)))
    }
}

/// A row of `audit_log`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub action: String,
    pub actor_token: Option<String>,
    pub owner_kind: Option<String>,
    pub owner_id: Option<String>,
    pub target: Option<String>,
    pub client_ip: Option<String>,
    pub details: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The column list matching [`AuditRow`], in insert order.
pub(crate) const AUDIT_COLUMNS: &str = "seq, id, at, action, actor_token, owner_kind, owner_id, \
     target, client_ip, details, prev_hash, hash";

/// A stored 32-byte hash.
pub(crate) fn hash32(what: &str, bytes: &[u8]) -> Result<[u8; 32], StoreError> {
    bytes.try_into().map_err(|_| corrupt(what, "not 32 bytes"))
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;

    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        let optional_id = |text: Option<String>| text.as_deref().map(id).transpose();
        let owner = match (row.owner_kind.as_deref(), row.owner_id.as_deref()) {
            (None, None) => None,
            (Some("user"), Some(owner)) => Some(Owner::User(id(owner)?)),
            (Some("account"), Some(owner)) => Some(Owner::Account(id(owner)?)),
            (kind, _) => return Err(corrupt("audit owner_kind", format!("{kind:?}"))),
        };
        Ok(AuditEntry {
            seq: u64::try_from(row.seq).map_err(|e| corrupt("audit seq", e))?,
            event: AuditEvent {
                id: id(&row.id)?,
                at: time(row.at)?,
                action: AuditAction::parse(&row.action)
                    .ok_or_else(|| corrupt("audit action", &row.action))?,
                actor_token: optional_id(row.actor_token)?,
                owner,
                target: optional_id(row.target)?,
                client_ip: row
                    .client_ip
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(|e| corrupt("audit client_ip", e))?,
                details: row.details,
            },
            prev_hash: hash32("audit prev_hash", &row.prev_hash)?,
            hash: hash32("audit hash", &row.hash)?,
        })
    }
}

/// The column values of an entry, in [`AUDIT_COLUMNS`] order (hashes last, as bytes).
pub(crate) struct AuditValues {
    pub seq: i64,
    pub id: String,
    pub at: i64,
    pub action: &'static str,
    pub actor_token: Option<String>,
    pub owner_kind: Option<&'static str>,
    pub owner_id: Option<String>,
    pub target: Option<String>,
    pub client_ip: Option<String>,
}

impl AuditValues {
    pub(crate) fn of(entry: &AuditEntry) -> Self {
        let event = &entry.event;
        let (owner_kind, owner_id) = match event.owner {
            Some(owner) => {
                let (kind, id) = owner_columns(owner);
                (Some(kind), Some(id))
            }
            None => (None, None),
        };
        AuditValues {
            seq: i64::try_from(entry.seq).unwrap_or(i64::MAX),
            id: event.id.to_string(),
            at: secs(event.at),
            action: event.action.as_str(),
            actor_token: event.actor_token.map(|id| id.to_string()),
            owner_kind,
            owner_id,
            target: event.target.map(|id| id.to_string()),
            client_ip: event.client_ip.map(|ip| ip.to_string()),
        }
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub created_on: i64,
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountRow {
    pub id: String,
    pub name: String,
    pub created_on: i64,
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

pub(crate) fn id(text: &str) -> Result<Id, StoreError> {
    text.parse().map_err(|e| corrupt("id", e))
}

pub(crate) fn time(secs: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|e| corrupt("timestamp", e))
}

/// A revision as the `revision` column holds it.
pub(crate) fn revision(token: &Token) -> i64 {
    i64::try_from(token.revision).unwrap_or(i64::MAX)
}

pub(crate) fn secs(t: OffsetDateTime) -> i64 {
    t.unix_timestamp()
}

/// `(owner_kind, owner_id)` columns of an owner.
pub(crate) fn owner_columns(owner: Owner) -> (&'static str, String) {
    match owner {
        Owner::User(id) => ("user", id.to_string()),
        Owner::Account(id) => ("account", id.to_string()),
    }
}

pub(crate) fn policies_json(token: &Token) -> String {
    serde_json::to_string(&token.policies).expect("policies serialise")
}

pub(crate) fn condition_json(token: &Token) -> String {
    serde_json::to_string(&token.condition).expect("conditions serialise")
}

pub(crate) fn exposure_json(token: &Token) -> Option<String> {
    token
        .exposure
        .as_ref()
        .map(|e| serde_json::to_string(e).expect("an exposure serialises"))
}

impl TryFrom<TokenRow> for Token {
    type Error = StoreError;

    fn try_from(row: TokenRow) -> Result<Self, StoreError> {
        let owner_id = id(&row.owner_id)?;
        let owner = match row.owner_kind.as_str() {
            "user" => Owner::User(owner_id),
            "account" => Owner::Account(owner_id),
            other => return Err(corrupt("owner_kind", other)),
        };
        let status = match row.status.as_str() {
            "active" => Status::Active,
            "disabled" => Status::Disabled,
            "expired" => Status::Expired,
            other => return Err(corrupt("status", other)),
        };
        let policies: Vec<Policy> =
            serde_json::from_str(&row.policies).map_err(|e| corrupt("policies", e))?;
        let condition: Condition =
            serde_json::from_str(&row.condition).map_err(|e| corrupt("condition", e))?;
        let mut token = Token {
            id: id(&row.id)?,
            owner,
            name: row.name,
            status,
            issued_on: time(row.issued_on)?,
            modified_on: time(row.modified_on)?,
            last_used_on: row.last_used_on.map(time).transpose()?,
            not_before: row.not_before.map(time).transpose()?,
            expires_on: row.expires_on.map(time).transpose()?,
            policies,
            condition,
            revision: u64::try_from(row.revision).map_err(|e| corrupt("revision", e))?,
            exposure: row
                .exposure
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| corrupt("exposure", e))?,
        };
        token.shrink_to_fit();
        Ok(token)
    }
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: id(&row.id)?,
            email: row.email,
            created_on: time(row.created_on)?,
        })
    }
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;

    fn try_from(row: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            id: id(&row.id)?,
            name: row.name,
            created_on: time(row.created_on)?,
        })
    }
}
