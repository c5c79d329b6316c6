//! Policies: an effect, permission groups, and the resources they apply to (spec §3.2, §4.1).

use serde::de::Error as _;
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

    /// Every key, outer and inner.
    pub fn keys(&self) -> impl Iterator<Item = &ResourceKey> {
        self.0.iter().flat_map(|(key, value)| {
            let inner: &[ResourceKey] = match value {
                ResourceValue::All => &[],
                ResourceValue::Nested(inner) => inner,
            };
            std::iter::once(key).chain(inner)
        })
    }
}

impl Policy {
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
    /// Reads the stored form back; the API layer validates client input separately.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Value {
            All(String),
            Nested(Vec<(String, String)>),
        }
        // A map of key -> "*" or {key: "*"}; read as ordered pairs to keep client order.
        struct Pairs(Vec<(String, Value)>);
        impl<'de> Deserialize<'de> for Pairs {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Pairs;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a map of resource keys")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<Pairs, A::Error> {
                        let mut out = Vec::new();
                        while let Some((k, v)) = map.next_entry::<String, NestedOrStar>()? {
                            out.push((k, v.0));
                        }
                        Ok(Pairs(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        struct NestedOrStar(Value);
        impl<'de> Deserialize<'de> for NestedOrStar {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = NestedOrStar;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("\"*\" or a map of resource keys")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NestedOrStar, E> {
                        Ok(NestedOrStar(Value::All(v.to_owned())))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<NestedOrStar, A::Error> {
                        let mut out = Vec::new();
                        while let Some(pair) = map.next_entry::<String, String>()? {
                            out.push(pair);
                        }
                        Ok(NestedOrStar(Value::Nested(out)))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let parse = |k: &str| k.parse::<ResourceKey>().map_err(D::Error::custom);
        let Pairs(pairs) = Pairs::deserialize(deserializer)?;
        let mut out = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let value = match value {
                Value::All(_) => ResourceValue::All,
                Value::Nested(inner) => ResourceValue::Nested(
                    inner
                        .iter()
                        .map(|(k, _)| parse(k))
                        .collect::<Result<_, _>>()?,
                ),
            };
            out.push((parse(&key)?, value));
        }
        Ok(Resources(out))
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
        assert!(policy(API_TOKENS_READ, r#"{"com.cloudflare.api.user.abc":"*"}"#)
            .check_scopes(&catalogue)
            .is_ok());
        assert_eq!(
            policy(ACCOUNT_API_TOKENS_WRITE, r#"{"com.cloudflare.api.user.abc":"*"}"#)
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
