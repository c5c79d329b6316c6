//! The audit log's entries and their hash chain.
//!
//! Every entry carries the SHA-256 of the entry before it (`prev_hash`; 32 zero bytes for
//! the first) and its own hash over all of its fields, `prev_hash` included. Changing,
//! removing or reordering any entry therefore changes every hash after it, which
//! [`verify_chain`] detects from the first broken link. Entries never hold a secret: the
//! actor is a token id.

use std::fmt;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::{Id, Owner};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A token was created.
    TokenCreate,
    /// A token's name, policies, condition or dates changed.
    TokenUpdate,
    /// A token's status changed (with or without other changes).
    TokenStatus,
    /// A token got a new secret.
    TokenRoll,
    /// A token was deleted.
    TokenDelete,
    /// A token's secret was reported leaked: the token was disabled and marked exposed.
    TokenExposed,
    /// Tokens were imported into an empty database (`latchkey import`).
    TokensImport,
    /// An address was refused after too many failed authentications.
    AuthThrottled,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 8] = [
        AuditAction::TokenCreate,
        AuditAction::TokenUpdate,
        AuditAction::TokenStatus,
        AuditAction::TokenRoll,
        AuditAction::TokenDelete,
        AuditAction::TokenExposed,
        AuditAction::TokensImport,
        AuditAction::AuthThrottled,
    ];

    /// The stored and displayed name, e.g. `token_create`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::TokenCreate => "token_create",
            AuditAction::TokenUpdate => "token_update",
            AuditAction::TokenStatus => "token_status",
            AuditAction::TokenRoll => "token_roll",
            AuditAction::TokenDelete => "token_delete",
            AuditAction::TokenExposed => "token_exposed",
            AuditAction::TokensImport => "tokens_import",
            AuditAction::AuthThrottled => "auth_throttled",
        }
    }

    /// The action named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event to record: what the caller knows. The store adds the position in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Public id of the entry.
    pub id: Id,
    /// When (stored at second precision).
    pub at: OffsetDateTime,
    /// What happened.
    pub action: AuditAction,
    /// The token that made the request, if one did (none for the CLI and for throttling).
    pub actor_token: Option<Id>,
    /// Whose token it concerns (for throttling: the presented token's owner, if known).
    pub owner: Option<Owner>,
    /// The token it concerns.
    pub target: Option<Id>,
    /// The client's address, for requests.
    pub client_ip: Option<IpAddr>,
    /// A JSON object of details (e.g. the name and the status before and after).
    pub details: String,
}

impl AuditEvent {
    /// An event now-ish with a fresh id and no details.
    pub fn new(action: AuditAction, at: OffsetDateTime) -> Self {
        AuditEvent {
            id: Id::random(),
            at: at.replace_nanosecond(0).unwrap_or(at),
            action,
            actor_token: None,
            owner: None,
            target: None,
            client_ip: None,
            details: "{}".to_owned(),
        }
    }
}

/// An entry as stored: the event, its place in the chain and the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1, 2, 3, ... with no gaps.
    pub seq: u64,
    /// The event.
    pub event: AuditEvent,
    /// The hash of entry `seq - 1` (zeros for the first).
    pub prev_hash: [u8; 32],
    /// The hash of this entry, as stored.
    pub hash: [u8; 32],
}

impl AuditEntry {
    /// Chains `event` after an entry `prev_seq` whose hash is `prev_hash`.
    pub fn chain(event: AuditEvent, prev_seq: u64, prev_hash: [u8; 32]) -> Self {
        let seq = prev_seq + 1;
        let hash = entry_hash(seq, &event, &prev_hash);
        AuditEntry {
            seq,
            event,
            prev_hash,
            hash,
        }
    }
}

/// SHA-256 over every field, each length-prefixed so that no two entries encode alike.
pub fn entry_hash(seq: u64, event: &AuditEvent, prev_hash: &[u8; 32]) -> [u8; 32] {
    fn field(hasher: &mut Sha256, value: Option<&[u8]>) {
        match value {
            Some(bytes) => {
                hasher.update(u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
                hasher.update(bytes);
            }
            None => hasher.update(u32::MAX.to_be_bytes()),
        }
    }
    let text = |value: Option<String>| value.map(String::into_bytes);
    let (owner_kind, owner_id) = match event.owner {
        Some(Owner::User(id)) => (Some("user"), Some(id)),
        Some(Owner::Account(id)) => (Some("account"), Some(id)),
        None => (None, None),
    };
    let mut hasher = Sha256::new();
    hasher.update(b"latchkey audit v1");
    field(&mut hasher, Some(&seq.to_be_bytes()));
    field(&mut hasher, Some(event.id.to_string().as_bytes()));
    field(&mut hasher, Some(&event.at.unix_timestamp().to_be_bytes()));
    field(&mut hasher, Some(event.action.as_str().as_bytes()));
    field(
        &mut hasher,
        text(event.actor_token.map(|id| id.to_string())).as_deref(),
    );
    field(&mut hasher, owner_kind.map(str::as_bytes));
    field(
        &mut hasher,
        text(owner_id.map(|id| id.to_string())).as_deref(),
    );
    field(
        &mut hasher,
        text(event.target.map(|id| id.to_string())).as_deref(),
    );
    field(
        &mut hasher,
        text(event.client_ip.map(|ip| ip.to_string())).as_deref(),
    );
    field(&mut hasher, Some(event.details.as_bytes()));
    field(&mut hasher, Some(prev_hash));
    hasher.finalize().into()
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first entry that does not fit (or the seq that is missing).
    pub seq: u64,
    /// Why.
    pub problem: String,
}

impl fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry {}: {}", self.seq, self.problem)
    }
}

/// Checks a run of entries that follows the entry `prev_seq` with hash `prev_hash` (0 and
/// zeros for the start); returns the last (seq, hash) for the next run.
pub fn verify_chain(
    entries: &[AuditEntry],
    prev_seq: u64,
    prev_hash: [u8; 32],
) -> Result<(u64, [u8; 32]), ChainBreak> {
    let (mut seq, mut hash) = (prev_seq, prev_hash);
    for entry in entries {
        let broken = |problem: &str| ChainBreak {
            seq: entry.seq,
            problem: problem.to_owned(),
        };
        if entry.seq != seq + 1 {
            return Err(ChainBreak {
                seq: seq + 1,
                problem: format!("missing (the next entry is {})", entry.seq),
            });
        }
        if entry.prev_hash != hash {
            return Err(broken("its prev_hash is not the previous entry's hash"));
        }
        if entry_hash(entry.seq, &entry.event, &entry.prev_hash) != entry.hash {
            return Err(broken("its contents do not match its hash"));
        }
        (seq, hash) = (entry.seq, entry.hash);
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<AuditEntry> {
        let mut entries = Vec::new();
        let (mut seq, mut hash) = (0, [0; 32]);
        for i in 0..n {
            let mut event = AuditEvent::new(AuditAction::ALL[i % 7], OffsetDateTime::UNIX_EPOCH);
            event.actor_token = Some(Id::random());
            event.owner = Some(Owner::Account(Id::random()));
            event.client_ip = Some("192.0.2.1".parse().unwrap());
            event.details = format!("{{\"name\":\"token {i}\"}}");
            let entry = AuditEntry::chain(event, seq, hash);
            (seq, hash) = (entry.seq, entry.hash);
            entries.push(entry);
        }
        entries
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let entries = chain(10);
        assert_eq!(verify_chain(&entries, 0, [0; 32]).unwrap().0, 10);
        // In two runs, as `latchkey audit verify` reads it.
        let (seq, hash) = verify_chain(&entries[..4], 0, [0; 32]).unwrap();
        assert_eq!(verify_chain(&entries[4..], seq, hash).unwrap().0, 10);
    }

    #[test]
    fn any_change_is_found_at_the_entry_changed() {
        let entries = chain(10);
        let mut edited = entries.clone();
        edited[4].event.details = "{\"name\":\"innocent\"}".into();
        assert_eq!(verify_chain(&edited, 0, [0; 32]).unwrap_err().seq, 5);

        let mut ip = entries.clone();
        ip[2].event.client_ip = Some("198.51.100.1".parse().unwrap());
        assert_eq!(verify_chain(&ip, 0, [0; 32]).unwrap_err().seq, 3);

        // Recomputing the edited entry's hash does not help: the next link breaks.
        let mut rehashed = entries.clone();
        rehashed[4].event.details = "{}".into();
        rehashed[4].hash = entry_hash(5, &rehashed[4].event, &rehashed[4].prev_hash);
        assert_eq!(verify_chain(&rehashed, 0, [0; 32]).unwrap_err().seq, 6);

        let mut removed = entries.clone();
        removed.remove(6);
        assert_eq!(verify_chain(&removed, 0, [0; 32]).unwrap_err().seq, 7);

        let mut swapped = entries;
        swapped.swap(1, 2);
        assert_eq!(verify_chain(&swapped, 0, [0; 32]).unwrap_err().seq, 2);
    }

    #[test]
    fn actions_round_trip_by_name() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("token_explode"), None);
    }
}
