//! The audit log at the edge: the events handlers record with their writes, their wire
//! shape, and `latchkey audit verify`. The entries and their hash chain are defined in
//! `latchkey_core::audit`; the store appends them in the same transaction as each write.

use latchkey_api as api;
use latchkey_core::audit::{verify_chain, ChainBreak};
use latchkey_core::{AuditAction, AuditEntry, AuditEvent, Id, Owner, Token};
use latchkey_store::{Store, StoreError};
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::state::AppState;

/// The event for `action` on token `target` of `owner`, done by `principal`.
pub fn token_event(
    state: &AppState,
    principal: &Principal,
    action: AuditAction,
    (owner, target): (Owner, Id),
    details: Value,
) -> AuditEvent {
    let mut event = AuditEvent::new(action, state.clock.now());
    event.actor_token = Some(principal.token.id);
    event.owner = Some(owner);
    event.target = Some(target);
    event.client_ip = Some(principal.client_ip);
    event.details = details.to_string();
    event
}

/// The details of an update: the name, and the status when it changed.
pub fn update_details(before: &Token, after: &Token) -> (AuditAction, Value) {
    if before.status == after.status {
        (AuditAction::TokenUpdate, json!({"name": after.name}))
    } else {
        (
            AuditAction::TokenStatus,
            json!({"name": after.name,
                   "status": {"from": before.status.as_str(), "to": after.status.as_str()}}),
        )
    }
}

/// An entry as `GET .../audit_logs` shows it.
pub fn to_wire(entry: &AuditEntry) -> api::AuditLogEntry {
    let event = &entry.event;
    let (owner_kind, owner_id) = match event.owner {
        Some(Owner::User(id)) => (Some("user"), Some(id)),
        Some(Owner::Account(id)) => (Some("account"), Some(id)),
        None => (None, None),
    };
    api::AuditLogEntry {
        id: event.id.to_string(),
        action: api::AuditLogAction {
            kind: event.action.as_str().to_owned(),
            result: true,
        },
        actor: api::AuditLogActor {
            id: event.actor_token.map(|id| id.to_string()),
            kind: if event.actor_token.is_some() {
                "token"
            } else {
                "system"
            }
            .to_owned(),
            ip: event.client_ip.map(|ip| ip.to_string()),
        },
        interface: if event.client_ip.is_some() {
            "API"
        } else {
            "CLI"
        }
        .to_owned(),
        metadata: serde_json::from_str(&event.details).unwrap_or_else(|_| json!({})),
        owner: api::AuditLogOwner {
            id: owner_id.map(|id| id.to_string()),
            kind: owner_kind.map(str::to_owned),
        },
        resource: api::AuditLogResource {
            id: event.target.map(|id| id.to_string()),
            kind: "token".to_owned(),
        },
        when: event.at,
        chain: api::AuditLogChain {
            seq: entry.seq,
            prev_hash: hex::encode(entry.prev_hash),
            hash: hex::encode(entry.hash),
        },
    }
}

/// Writes an entry for each address refused for failed authentications since the last
/// call (see [`crate::auth::rate_limit`]); `serve` calls it every second. A refused address is not
/// a write, so a failure here is logged, not returned to any client.
pub async fn record_throttled(state: &AppState, now: std::time::Instant, all: bool) {
    let bursts = state.rates.take_bursts(now, all);
    let at = state.clock.now();
    let mut events: Vec<AuditEvent> = bursts
        .ended
        .iter()
        .map(|burst| {
            let mut event = AuditEvent::new(AuditAction::AuthThrottled, at);
            event.client_ip = Some(burst.address);
            event.details = json!({
                "refused": burst.refused,
                "lasted_secs": burst.lasted.as_secs(),
            })
            .to_string();
            event
        })
        .collect();
    if bursts.unlisted > 0 {
        let mut event = AuditEvent::new(AuditAction::AuthThrottled, at);
        event.details = json!({
            "more_addresses": bursts.unlisted,
            "refused": bursts.unlisted_refused,
        })
        .to_string();
        events.push(event);
    }
    for event in events {
        if let Err(error) = state.store.append_audit(&event).await {
            tracing::error!(%error, "cannot write a throttled address to the audit log");
        }
    }
}

/// What `latchkey audit verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The whole chain holds: this many entries, ending in this hash.
    Intact { entries: u64, head: [u8; 32] },
    /// The chain breaks here.
    Broken(ChainBreak),
}

/// Reads the whole log in order, `batch` entries at a time, and checks every link.
pub async fn verify(store: &dyn Store, batch: u64) -> Result<Verdict, StoreError> {
    let (mut seq, mut hash) = (0, [0u8; 32]);
    loop {
        let entries = store.audit_entries(seq, batch).await?;
        if entries.is_empty() {
            return Ok(Verdict::Intact {
                entries: seq,
                head: hash,
            });
        }
        match verify_chain(&entries, seq, hash) {
            Ok(next) => (seq, hash) = next,
            Err(broken) => return Ok(Verdict::Broken(broken)),
        }
    }
}
