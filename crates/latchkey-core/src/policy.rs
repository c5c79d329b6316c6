//! Policies: an effect, permission groups, and the resources they apply to (docs/cloudflare-tokens.md §3.2, §4.1).

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalogue::Catalogue;
use crate::id::Id;
use crate::resource::{ResourceKey, ResourceKind};

/// Allow or deny. A matching deny always wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grants the policy's permissions.
    Allow,
    /// Takes them away, whatever any allow says.
    Deny,
}

/// A permission group named in a policy, with the optional `meta` a client may attach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedGroup {
    /// The group's id in the catalogue.
    pub id: Id,
    /// Opaque `{key, value}` metadata, returned as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<GroupMeta>,
}

/// Opaque permission-group metadata (`meta: {key, value}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMeta {
    /// Optional key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Optional value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a resource key of a policy maps to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourceValue {
    /// `"*"`: the key itself.
    All,
    /// The nested form: these keys, inside the outer key (zones or buckets of an account).
    Nested(Vec<ResourceKey>),
}

/// A policy's resources, in the order the client sent them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(pub Vec<(ResourceKey, ResourceValue)>);

/// One policy of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Assigned by latchkey; clients' ids are ignored.
    pub id: Id,
    /// Allow or deny.
    pub effect: Effect,
    /// The groups whose permissions the policy grants or denies.
    pub permission_groups: Vec<GrantedGroup>,
    /// Where it applies.
    pub resources: Resources,
}

/// A permission group of a policy applies to none of the policy's resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("permission group {group_index} does not apply to any resource of this policy")]
pub struct ScopeMismatch {
    /// Index of the offending group in `permission_groups`.
    pub group_index: usize,
}

impl Resources {
    /// Every key a request target can be matched against directly, with the kind it names:
    /// top-level keys whose value is `*`, and the inner keys of nested entries.
    pub fn target_kinds(&self) -> impl Iterator<Item = ResourceKind> + '_ {
        self.0.iter().flat_map(|(key, value)| match value {
            ResourceValue::All => vec![key.kind],
            ResourceValue::Nested(inner) => inner.iter().map(|k| k.kind).collect(),
        })
    }
}

impl Policy {
    /// A new allow policy granting one group on one resource key (its value `*`).
    pub fn allow_one(group: Id, key: ResourceKey) -> Self {
        Policy {
            id: Id::random(),
            effect: Effect::Allow,
            permission_groups: vec![GrantedGroup {
                id: group,
                meta: None,
            }],
            resources: Resources(vec![(key, ResourceValue::All)]),
        }
    }

    /// Checks that every permission group applies to at least one resource kind the policy
    /// names. Unknown groups are the caller's to refuse first; they are skipped here.
    pub fn check_scopes(&self, catalogue: &Catalogue) -> Result<(), ScopeMismatch> {
        for (group_index, granted) in self.permission_groups.iter().enumerate() {
            let Some(group) = catalogue.get(&granted.id) else {
                continue;
            };
            if !self.resources.target_kinds().any(|k| group.applies_to(k)) {
                return Err(ScopeMismatch { group_index });
            }
        }
        Ok(())
    }
}

impl Serialize for Resources {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Nested<'a>(&'a [ResourceKey]);
        impl Serialize for Nested<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for key in self.0 {
                    map.serialize_entry(&key.to_string(), "*")?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            match value {
                ResourceValue::All => map.serialize_entry(&key.to_string(), "*")?,
                ResourceValue::Nested(inner) => {
                    map.serialize_entry(&key.to_string(), &Nested(inner))?
                }
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Resources {
    /// Reads the stored form back, in order; the API layer validates client input itself.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ResourcesVisitor)
    }
}

fn parse_key<E: serde::de::Error>(text: &str) -> Result<ResourceKey, E> {
    text.parse().map_err(E::custom)
}

struct ResourcesVisitor;

impl<'de> Visitor<'de> for ResourcesVisitor {
    type Value = Resources;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a map of resource keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Resources, A::Error> {
        let mut out = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<StoredValue>()?;
            out.push((parse_key(&key)?, value.0));
        }
        Ok(Resources(out))
    }
}

/// `"*"` or `{key: "*", ...}`.
struct StoredValue(ResourceValue);

impl<'de> Deserialize<'de> for StoredValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StoredValue;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"*\" or a map of resource keys")
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<StoredValue, E> {
                Ok(StoredValue(ResourceValue::All))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StoredValue, A::Error> {
                let mut inner = Vec::new();
                while let Some((key, _)) = map.next_entry::<String, String>()? {
                    inner.push(parse_key(&key)?);
                }
                Ok(StoredValue(ResourceValue::Nested(inner)))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{ACCOUNT_API_TOKENS_WRITE, API_TOKENS_READ};

    fn policy(group: &str, resources: &str) -> Policy {
        serde_json::from_value(serde_json::json!({
            "id": Id::random(),
            "effect": "allow",
            "permission_groups": [{"id": group}],
            "resources": serde_json::from_str::<serde_json::Value>(resources).unwrap(),
        }))
        .unwrap()
    }

    #[test]
    fn stored_form_round_trips_in_order() {
        let p = policy(
            API_TOKENS_READ,
            r#"{"com.cloudflare.api.user.abc":"*","com.cloudflare.api.account.a1":{"com.cloudflare.api.account.zone.*":"*"}}"#,
        );
        let text = serde_json::to_string(&p.resources).unwrap();
        assert_eq!(
            text,
            r#"{"com.cloudflare.api.user.abc":"*","com.cloudflare.api.account.a1":{"com.cloudflare.api.account.zone.*":"*"}}"#
        );
        let back: Resources = serde_json::from_str(&text).unwrap();
        assert_eq!(back, p.resources);
    }

    #[test]
    fn groups_must_fit_a_resource_kind() {
        let catalogue = Catalogue::builtin();
        assert!(
            policy(API_TOKENS_READ, r#"{"com.cloudflare.api.user.abc":"*"}"#)
                .check_scopes(&catalogue)
                .is_ok()
        );
        assert_eq!(
            policy(
                ACCOUNT_API_TOKENS_WRITE,
                r#"{"com.cloudflare.api.user.abc":"*"}"#
            )
            .check_scopes(&catalogue),
            Err(ScopeMismatch { group_index: 0 })
        );
        // Zone groups reach an account's zones only through the nested form.
        let dns_read = "82e64a83756745bbbb1c9c2701bf816b";
        assert!(policy(dns_read, r#"{"com.cloudflare.api.account.a1":"*"}"#)
            .check_scopes(&catalogue)
            .is_err());
        assert!(policy(
            dns_read,
            r#"{"com.cloudflare.api.account.a1":{"com.cloudflare.api.account.zone.*":"*"}}"#
        )
        .check_scopes(&catalogue)
        .is_ok());
    }
}
