//! A token as latchkey stores it (never its secret), and when it may be used.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::condition::Condition;
use crate::id::Id;
use crate::policy::Policy;
use crate::resource::{ResourceKey, ResourceKind};
use crate::secret::SecretKind;

/// Who owns a token: a user (user token, `cfut_`) or an account (account token, `cfat_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A user token acting for this user.
    User(Id),
    /// An account-owned token of this account.
    Account(Id),
}

impl Owner {
    /// The secret family of this owner's tokens.
    pub fn secret_kind(self) -> SecretKind {
        match self {
            Owner::User(_) => SecretKind::User,
            Owner::Account(_) => SecretKind::Account,
        }
    }

    /// The owner as a resource key (`com.cloudflare.api.user.<id>` or `...account.<id>`).
    pub fn resource(self) -> ResourceKey {
        match self {
            Owner::User(id) => ResourceKey::specific(ResourceKind::User, id.to_string()),
            Owner::Account(id) => ResourceKey::specific(ResourceKind::Account, id.to_string()),
        }
    }
}

/// Whether `c` may not appear in a token's name: a control character (C0, DEL, C1) or a
/// bidirectional mark, override or isolate, which could drive or rearrange the terminal or
/// page the name is shown on.
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A token's status. `Active` and `Disabled` are set by clients; `Expired` is what an
/// active token reads back as once `expires_on` has passed (it may also be set directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Usable (within its time window and address condition).
    Active,
    /// Exists but refused everywhere.
    Disabled,
    /// Past `expires_on`, or expired by a client; refused everywhere.
    Expired,
}

impl Status {
    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Disabled => "disabled",
            Status::Expired => "expired",
        }
    }
}

/// Why a token cannot be used right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Status `disabled`.
    Disabled,
    /// Past `expires_on`, or status `expired`.
    Expired,
    /// Before `not_before`.
    NotYetValid,
    /// The client address is refused by `condition.request_ip`.
    AddressRefused(IpAddr),
}

/// Who reported a token's secret as leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reporter {
    /// GitHub's secret scanning partner program (`POST /latchkey/v1/secret-scanning/github`).
    Github,
    /// Anyone holding the secret, through `POST /latchkey/v1/leaks`.
    Report,
}

/// Where and when a token's secret was found in the open. A token with an exposure is
/// disabled and stays so until it is rolled (which clears the exposure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exposure {
    /// When latchkey received the report.
    #[serde(with = "time::serde::rfc3339")]
    pub reported_on: OffsetDateTime,
    /// Where it was found, as the reporter says (e.g. `content`, `commit`, `gitleaks`).
    pub source: String,
    /// A link to where it was found, as the reporter gives it (may be empty).
    pub url: String,
    /// Who reported it.
    pub reporter: Reporter,
}

/// A token without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// 32 lowercase hex.
    pub id: Id,
    /// The user or account it belongs to.
    pub owner: Owner,
    /// Up to 120 characters.
    pub name: String,
    /// What a client last set (see [`Token::status_at`] for what it reads back as).
    pub status: Status,
    /// When it was created.
    pub issued_on: OffsetDateTime,
    /// When its fields were last replaced.
    pub modified_on: OffsetDateTime,
    /// When it last authenticated a request (recorded in batches).
    pub last_used_on: Option<OffsetDateTime>,
    /// Not usable before this instant.
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after this instant.
    pub expires_on: Option<OffsetDateTime>,
    /// Allow and deny policies.
    pub policies: Vec<Policy>,
    /// Client-address condition.
    pub condition: Condition,
    /// Counts committed changes (updates and rolls). A store refuses a change made from an
    /// older revision, so two concurrent writers cannot silently overwrite each other.
    pub revision: u64,
    /// Set when its secret was reported leaked; cleared by a roll.
    pub exposure: Option<Exposure>,
}

impl Token {
    /// A new active token of `owner` issued at `now`, with a fresh id, no policies, no time
    /// window and no address condition.
    pub fn new(owner: Owner, name: impl Into<String>, now: OffsetDateTime) -> Self {
        Token {
            id: Id::random(),
            owner,
            name: name.into(),
            status: Status::Active,
            issued_on: now,
            modified_on: now,
            last_used_on: None,
            not_before: None,
            expires_on: None,
            policies: Vec::new(),
            condition: Condition::default(),
            revision: 0,
            exposure: None,
        }
    }

    /// Releases spare capacity in every list it holds. Lists decoded from JSON keep room for
    /// several elements when they hold one; a cache of 100,000 tokens would carry that
    /// slack (several hundred bytes a token) for as long as they stay cached.
    pub fn shrink_to_fit(&mut self) {
        self.name.shrink_to_fit();
        self.policies.shrink_to_fit();
        for policy in &mut self.policies {
            policy.permission_groups.shrink_to_fit();
            policy.resources.0.shrink_to_fit();
            for (_, value) in &mut policy.resources.0 {
                if let crate::policy::ResourceValue::Nested(inner) = value {
                    inner.shrink_to_fit();
                }
            }
        }
        if let Some(ip) = &mut self.condition.request_ip {
            ip.allow.shrink_to_fit();
            ip.not_in.shrink_to_fit();
        }
    }

    /// The status a client sees at `now`: an active token past `expires_on` is `expired`.
    pub fn status_at(&self, now: OffsetDateTime) -> Status {
        match self.status {
            Status::Active if self.expires_on.is_some_and(|e| now >= e) => Status::Expired,
            status => status,
        }
    }

    /// Whether the token may authenticate a request from `ip` at `now`.
    pub fn check_usable(&self, now: OffsetDateTime, ip: IpAddr) -> Result<(), Unusable> {
        match self.status_at(now) {
            Status::Disabled => return Err(Unusable::Disabled),
            Status::Expired => return Err(Unusable::Expired),
            Status::Active => {}
        }
        if self.not_before.is_some_and(|nb| now < nb) {
            return Err(Unusable::NotYetValid);
        }
        if !self.condition.allows(ip) {
            return Err(Unusable::AddressRefused(ip.to_canonical()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn token() -> Token {
        Token {
            id: Id::random(),
            owner: Owner::User(Id::random()),
            name: "t".into(),
            status: Status::Active,
            issued_on: datetime!(2026-01-01 0:00 UTC),
            modified_on: datetime!(2026-01-01 0:00 UTC),
            last_used_on: None,
            not_before: Some(datetime!(2026-02-01 0:00 UTC)),
            expires_on: Some(datetime!(2026-03-01 0:00 UTC)),
            policies: vec![],
            condition: Condition::default(),
            revision: 0,
            exposure: None,
        }
    }

    #[test]
    fn shrinking_leaves_no_spare_capacity_and_changes_nothing() {
        let mut t = token();
        t.policies = serde_json::from_str(
            r#"[{"id":"0123456789abcdef0123456789abcdef","effect":"allow",
                 "permission_groups":[{"id":"82e64a83756745bbbb1c9c2701bf816b"}],
                 "resources":{"com.cloudflare.api.account.0123456789abcdef0123456789abcdef":"*"}}]"#,
        )
        .unwrap();
        let before = t.clone();
        t.shrink_to_fit();
        assert_eq!(t, before);
        assert_eq!(t.policies.capacity(), 1);
        assert_eq!(t.policies[0].permission_groups.capacity(), 1);
        assert_eq!(t.policies[0].resources.0.capacity(), 1);
    }

    #[test]
    fn usable_only_inside_its_window() {
        let t = token();
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(
            t.check_usable(datetime!(2026-01-31 23:59:59 UTC), ip),
            Err(Unusable::NotYetValid)
        );
        assert_eq!(t.check_usable(datetime!(2026-02-01 0:00 UTC), ip), Ok(()));
        assert_eq!(
            t.check_usable(datetime!(2026-02-28 23:59:59 UTC), ip),
            Ok(())
        );
        assert_eq!(
            t.check_usable(datetime!(2026-03-01 0:00 UTC), ip),
            Err(Unusable::Expired)
        );
        assert_eq!(t.status_at(datetime!(2026-03-01 0:00 UTC)), Status::Expired);
    }

    #[test]
    fn disabled_beats_everything() {
        let mut t = token();
        t.status = Status::Disabled;
        assert_eq!(
            t.check_usable(datetime!(2026-02-02 0:00 UTC), "127.0.0.1".parse().unwrap()),
            Err(Unusable::Disabled)
        );
        assert_eq!(
            t.status_at(datetime!(2027-01-01 0:00 UTC)),
            Status::Disabled
        );
    }
}
