//! Resource keys: `com.cloudflare.api.account.<id>`, `com.cloudflare.api.account.zone.*`, …
//! (docs/cloudflare-tokens.md §4.1). A key names one kind of resource and either one id or `*` (all of them).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kinds of resource a key can name. They double as permission-group scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceKind {
    /// `com.cloudflare.api.user`
    #[serde(rename = "com.cloudflare.api.user")]
    User,
    /// `com.cloudflare.api.account`
    #[serde(rename = "com.cloudflare.api.account")]
    Account,
    /// `com.cloudflare.api.account.zone`
    #[serde(rename = "com.cloudflare.api.account.zone")]
    Zone,
    /// `com.cloudflare.edge.r2.bucket`
    #[serde(rename = "com.cloudflare.edge.r2.bucket")]
    R2Bucket,
}

impl ResourceKind {
    /// Every kind, longest prefix first so that parsing picks `account.zone` over `account`.
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Zone,
        ResourceKind::Account,
        ResourceKind::User,
        ResourceKind::R2Bucket,
    ];

    /// The key prefix without the trailing dot, e.g. `com.cloudflare.api.account`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "com.cloudflare.api.user",
            ResourceKind::Account => "com.cloudflare.api.account",
            ResourceKind::Zone => "com.cloudflare.api.account.zone",
            ResourceKind::R2Bucket => "com.cloudflare.edge.r2.bucket",
        }
    }

    /// Kinds that may appear inside an account in the nested form.
    pub fn nests_in_account(self) -> bool {
        matches!(self, ResourceKind::Zone | ResourceKind::R2Bucket)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceKind {
    type Err = InvalidResourceKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(InvalidResourceKey)
    }
}

/// Which resources of a kind a key names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceId {
    /// `*`: every resource of the kind (bounded by what the token's owner holds).
    Any,
    /// One resource.
    Specific(String),
}

/// A parsed resource key such as `com.cloudflare.api.account.023e105f4ecef8ad9ca31a8372d0c353`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    /// The kind of resource.
    pub kind: ResourceKind,
    /// One id, or all.
    pub id: ResourceId,
}

/// The text is not `<kind>.<id>` or `<kind>.*` with a known kind and a plain id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a resource key is <kind>.<id> or <kind>.*, where kind is one of com.cloudflare.api.user, com.cloudflare.api.account, com.cloudflare.api.account.zone, com.cloudflare.edge.r2.bucket and id is 1 to 128 of [A-Za-z0-9_-]")]
pub struct InvalidResourceKey;

impl ResourceKey {
    /// A key naming exactly one resource.
    pub fn specific(kind: ResourceKind, id: impl Into<String>) -> Self {
        ResourceKey {
            kind,
            id: ResourceId::Specific(id.into()),
        }
    }

    /// Whether this (possibly wildcard) key covers `target`, a specific key.
    pub fn covers(&self, target: &ResourceKey) -> bool {
        self.kind == target.kind
            && match (&self.id, &target.id) {
                (ResourceId::Any, _) => true,
                (ResourceId::Specific(a), ResourceId::Specific(b)) => a == b,
                (ResourceId::Specific(_), ResourceId::Any) => false,
            }
    }

    /// The specific id, if this is not a wildcard.
    pub fn specific_id(&self) -> Option<&str> {
        match &self.id {
            ResourceId::Specific(id) => Some(id),
            ResourceId::Any => None,
        }
    }
}

impl FromStr for ResourceKey {
    type Err = InvalidResourceKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (prefix, id) = s.rsplit_once('.').ok_or(InvalidResourceKey)?;
        let kind: ResourceKind = prefix.parse()?;
        // `com.cloudflare.api.account.zone` alone is a kind missing its id, not account "zone".
        if kind == ResourceKind::Account && id == "zone" {
            return Err(InvalidResourceKey);
        }
        let id = if id == "*" {
            ResourceId::Any
        } else if (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            ResourceId::Specific(id.to_owned())
        } else {
            return Err(InvalidResourceKey);
        };
        Ok(ResourceKey { kind, id })
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            ResourceId::Any => write!(f, "{}.*", self.kind),
            ResourceId::Specific(id) => write!(f, "{}.{}", self.kind, id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        let zone: ResourceKey = "com.cloudflare.api.account.zone.eb78d65290b24279ba6f44721b3ea3c4"
            .parse()
            .unwrap();
        assert_eq!(zone.kind, ResourceKind::Zone);
        let all_accounts: ResourceKey = "com.cloudflare.api.account.*".parse().unwrap();
        assert_eq!(all_accounts.id, ResourceId::Any);
        assert_eq!(all_accounts.kind, ResourceKind::Account);
        let bucket: ResourceKey =
            "com.cloudflare.edge.r2.bucket.023e105f4ecef8ad9ca31a8372d0c353_default_my-bucket"
                .parse()
                .unwrap();
        assert_eq!(bucket.kind, ResourceKind::R2Bucket);
        for text in [
            "com.cloudflare.api.user.*",
            "com.cloudflare.api.account.zone.*",
            "com.cloudflare.api.account.023e105f4ecef8ad9ca31a8372d0c353",
        ] {
            assert_eq!(text.parse::<ResourceKey>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn refuses_malformed_keys() {
        for bad in [
            "",
            "*",
            "com.cloudflare.api.account",
            "com.cloudflare.api.account.",
            "com.cloudflare.api.zone.abc",
            "com.cloudflare.api.account.a*",
            "com.cloudflare.api.account.zone",
            "com.example.thing.abc",
        ] {
            assert_eq!(
                bad.parse::<ResourceKey>(),
                Err(InvalidResourceKey),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn wildcards_cover_only_their_own_kind() {
        let any_zone: ResourceKey = "com.cloudflare.api.account.zone.*".parse().unwrap();
        let zone = ResourceKey::specific(ResourceKind::Zone, "z1");
        let account = ResourceKey::specific(ResourceKind::Account, "z1");
        assert!(any_zone.covers(&zone));
        assert!(!any_zone.covers(&account));
        assert!(zone.covers(&zone));
        assert!(!zone.covers(&ResourceKey::specific(ResourceKind::Zone, "z2")));
    }
}
