//! Audit-log entries, in the shape of Cloudflare's `GET /accounts/{id}/audit_logs` where it
//! fits, plus latchkey's `chain` (the entry's place in the hash chain).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timestamp;

/// One entry of `GET .../audit_logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogEntry {
    /// 32 lowercase hex.
    pub id: String,
    /// What happened.
    pub action: AuditLogAction,
    /// Who did it.
    pub actor: AuditLogActor,
    /// Always `API` (or `CLI` for the command line).
    pub interface: String,
    /// Details: the token's name, the status before and after, and so on.
    pub metadata: serde_json::Value,
    /// Whose token it concerns.
    pub owner: AuditLogOwner,
    /// The token it concerns.
    pub resource: AuditLogResource,
    /// When.
    #[serde(with = "timestamp")]
    pub when: OffsetDateTime,
    /// The entry's place in latchkey's hash chain.
    pub chain: AuditLogChain,
}

/// `action` of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogAction {
    /// e.g. `token_create`, `token_roll`, `auth_throttled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether it succeeded (always true: only what happened is recorded).
    pub result: bool,
}

/// `actor` of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogActor {
    /// The acting token's id, when a token acted.
    pub id: Option<String>,
    /// `token`, or `system` for the command line and for throttling.
    #[serde(rename = "type")]
    pub kind: String,
    /// The client's address, for requests.
    pub ip: Option<String>,
}

/// `owner` of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogOwner {
    /// The owning user's or account's id.
    pub id: Option<String>,
    /// `user` or `account`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// `resource` of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogResource {
    /// The token's id.
    pub id: Option<String>,
    /// Always `token`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `chain` of an entry: see `latchkey audit verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditLogChain {
    /// 1, 2, 3, ... across the whole log.
    pub seq: u64,
    /// SHA-256 of the previous entry, hex.
    pub prev_hash: String,
    /// SHA-256 of this entry, hex.
    pub hash: String,
}
