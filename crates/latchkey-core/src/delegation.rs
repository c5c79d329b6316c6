//! Strict delegation: may a token create a token with these policies without granting
//! more than it holds itself?
//!
//! A new token's allow policies are cut into atoms, one per (permission group, resource
//! entry), where a nested entry gives one atom per inner key. Each atom must be *covered*
//! by an allow policy of the creator:
//! - by the same group, or by a group that grants every permission of it (API Tokens
//!   Write covers API Tokens Read);
//! - on a resource that covers it: `*` covers any id of its kind, an id covers only itself;
//!   a nested atom `A: {Z}` is covered by a creator's top-level key covering `Z`, or by a
//!   nested entry whose outer key covers `A` and one of whose inner keys covers `Z`.
//!
//! and must not *overlap* any deny policy of the creator (related groups, resources either
//! of which covers the other), since the creator could not use it there. Deny policies of
//! the new token only take rights away and are always accepted.

use time::OffsetDateTime;

use crate::catalogue::{Catalogue, PermissionGroup};
use crate::condition::{Condition, Wider};
use crate::id::Id;
use crate::policy::{Effect, Policy, ResourceValue};
use crate::resource::ResourceKey;
use crate::token::Token;

/// What a token holds, for [`check_grant_within`]: its policies, time window and address
/// condition.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    /// Allow and deny policies.
    pub policies: &'a [Policy],
    /// Not usable before.
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after.
    pub expires_on: Option<OffsetDateTime>,
    /// Client-address condition.
    pub condition: &'a Condition,
}

impl<'a> From<&'a Token> for Grant<'a> {
    fn from(token: &'a Token) -> Self {
        Grant {
            policies: &token.policies,
            not_before: token.not_before,
            expires_on: token.expires_on,
            condition: &token.condition,
        }
    }
}

/// The part of a token that goes beyond what its creator holds: a JSON pointer into the
/// token's fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer} goes beyond the creating token's own grant")]
pub struct Beyond {
    /// `/policies/N`, `/expires_on`, `/not_before`, `/condition/request_ip/in` or
    /// `/condition/request_ip/not_in`.
    pub pointer: String,
}

/// Checks that `new` holds nothing `creator` does not: its allows within the creator's
/// (see the module docs), no expiry later than the creator's (and one if the creator has
/// one), no explicit start before the creator's, and an address condition no wider.
pub fn check_grant_within(
    creator: Grant<'_>,
    new: Grant<'_>,
    catalogue: &Catalogue,
) -> Result<(), Beyond> {
    let beyond = |pointer: &str| Beyond {
        pointer: pointer.to_owned(),
    };
    check_within(creator.policies, new.policies, catalogue).map_err(|e| Beyond {
        pointer: format!("/policies/{}", e.policy_index),
    })?;
    if let Some(end) = creator.expires_on {
        if new.expires_on.is_none_or(|new_end| new_end > end) {
            return Err(beyond("/expires_on"));
        }
    }
    if let (Some(start), Some(new_start)) = (creator.not_before, new.not_before) {
        if new_start < start {
            return Err(beyond("/not_before"));
        }
    }
    new.condition
        .within(creator.condition)
        .map_err(|wider| match wider {
            Wider::In => beyond("/condition/request_ip/in"),
            Wider::NotIn => beyond("/condition/request_ip/not_in"),
        })
}

/// An allow of the new token that the creator's own policies do not cover.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "policy {policy_index} grants {group} on {resource}, beyond the creating token's own rights"
)]
pub struct Exceeds {
    /// Index of the new policy.
    pub policy_index: usize,
    /// The permission group id.
    pub group: Id,
    /// The resource entry's top-level key.
    pub resource: String,
}

/// One grant: a group on a top-level key, or on an inner key of a nested entry.
struct Atom<'a> {
    group: &'a PermissionGroup,
    outer: &'a ResourceKey,
    inner: Option<&'a ResourceKey>,
}

/// Whether holding `holder` implies holding `wanted`.
fn group_covers(holder: &PermissionGroup, wanted: &PermissionGroup) -> bool {
    holder.id == wanted.id
        || (!wanted.permissions.is_empty()
            && wanted
                .permissions
                .iter()
                .all(|p| holder.permissions.contains(p))
            && wanted.scopes.iter().all(|s| holder.scopes.contains(s)))
}

fn groups_related(a: &PermissionGroup, b: &PermissionGroup) -> bool {
    group_covers(a, b) || group_covers(b, a)
}

fn keys_overlap(a: &ResourceKey, b: &ResourceKey) -> bool {
    a.covers(b) || b.covers(a)
}

fn atoms<'a>(policy: &'a Policy, catalogue: &'a Catalogue) -> Vec<Atom<'a>> {
    let mut out = Vec::new();
    for granted in &policy.permission_groups {
        let Some(group) = catalogue.get(&granted.id) else {
            continue;
        };
        for (outer, value) in &policy.resources.0 {
            match value {
                ResourceValue::All => out.push(Atom {
                    group,
                    outer,
                    inner: None,
                }),
                ResourceValue::Nested(inner) => out.extend(inner.iter().map(|k| Atom {
                    group,
                    outer,
                    inner: Some(k),
                })),
            }
        }
    }
    out
}

fn covered(atom: &Atom<'_>, by: &Atom<'_>) -> bool {
    if !group_covers(by.group, atom.group) {
        return false;
    }
    match (atom.inner, by.inner) {
        (None, None) => by.outer.covers(atom.outer),
        (Some(inner), None) => by.outer.covers(inner),
        (Some(inner), Some(by_inner)) => by.outer.covers(atom.outer) && by_inner.covers(inner),
        (None, Some(_)) => false,
    }
}

fn overlaps(atom: &Atom<'_>, deny: &Atom<'_>) -> bool {
    if !groups_related(atom.group, deny.group) {
        return false;
    }
    fn target<'a>(a: &Atom<'a>) -> &'a ResourceKey {
        a.inner.unwrap_or(a.outer)
    }
    let outer_overlaps = match (atom.inner, deny.inner) {
        (Some(_), Some(_)) => keys_overlap(atom.outer, deny.outer),
        _ => true,
    };
    outer_overlaps && keys_overlap(target(atom), target(deny))
}

/// Checks that every allow of `new` is within what `creator` holds (see the module docs).
pub fn check_within(
    creator: &[Policy],
    new: &[Policy],
    catalogue: &Catalogue,
) -> Result<(), Exceeds> {
    let (mut allows, mut denies) = (Vec::new(), Vec::new());
    for policy in creator {
        match policy.effect {
            Effect::Allow => allows.extend(atoms(policy, catalogue)),
            Effect::Deny => denies.extend(atoms(policy, catalogue)),
        }
    }
    for (policy_index, policy) in new.iter().enumerate() {
        if policy.effect == Effect::Deny {
            continue;
        }
        for atom in atoms(policy, catalogue) {
            let ok = allows.iter().any(|by| covered(&atom, by))
                && !denies.iter().any(|deny| overlaps(&atom, deny));
            if !ok {
                return Err(Exceeds {
                    policy_index,
                    group: atom.group.id,
                    resource: atom.outer.to_string(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{API_TOKENS_READ, API_TOKENS_WRITE};
    use time::macros::datetime;

    #[test]
    fn a_grant_may_not_outlive_start_before_or_reach_wider_than_its_creator() {
        let user = serde_json::json!({"com.cloudflare.api.user.u1": "*"});
        let policies = vec![policy("allow", API_TOKENS_READ, user)];
        let loopback: Condition =
            serde_json::from_value(serde_json::json!({"request_ip": {"in": ["127.0.0.0/8"]}}))
                .unwrap();
        let creator = Grant {
            policies: &policies,
            not_before: Some(datetime!(2026-01-01 0:00 UTC)),
            expires_on: Some(datetime!(2030-01-01 0:00 UTC)),
            condition: &loopback,
        };
        let pointer = |new: Grant<'_>| {
            check_grant_within(creator, new, &Catalogue::builtin())
                .err()
                .map(|e| e.pointer)
        };
        assert_eq!(pointer(creator), None, "a copy of itself");
        let forever = Grant {
            expires_on: None,
            ..creator
        };
        assert_eq!(pointer(forever).as_deref(), Some("/expires_on"));
        let later = Grant {
            expires_on: Some(datetime!(2031-01-01 0:00 UTC)),
            ..creator
        };
        assert_eq!(pointer(later).as_deref(), Some("/expires_on"));
        let earlier = Grant {
            not_before: Some(datetime!(2025-01-01 0:00 UTC)),
            ..creator
        };
        assert_eq!(pointer(earlier).as_deref(), Some("/not_before"));
        let from_now = Grant {
            not_before: None,
            ..creator
        };
        assert_eq!(
            pointer(from_now),
            None,
            "no start is from now, after the creator's"
        );
        let anywhere = Condition::default();
        let unbounded = Grant {
            condition: &anywhere,
            ..creator
        };
        assert_eq!(
            pointer(unbounded).as_deref(),
            Some("/condition/request_ip/in")
        );
    }

    const DNS_READ: &str = "82e64a83756745bbbb1c9c2701bf816b";
    const DNS_WRITE: &str = "4755a26eedb94da69e1066d98aa820be";

    fn policy(effect: &str, group: &str, resources: serde_json::Value) -> Policy {
        serde_json::from_value(serde_json::json!({
            "id": Id::random(), "effect": effect,
            "permission_groups": [{"id": group}], "resources": resources,
        }))
        .unwrap()
    }

    fn within(creator: Vec<Policy>, new: Vec<Policy>) -> bool {
        check_within(&creator, &new, &Catalogue::builtin()).is_ok()
    }

    #[test]
    fn write_covers_read_but_not_the_other_way() {
        let user = serde_json::json!({"com.cloudflare.api.user.u1": "*"});
        let write = policy("allow", API_TOKENS_WRITE, user.clone());
        let read = policy("allow", API_TOKENS_READ, user);
        assert!(within(vec![write.clone()], vec![read.clone()]));
        assert!(!within(vec![read], vec![write]));
    }

    #[test]
    fn wildcards_cover_ids_but_ids_do_not_cover_wildcards() {
        let all = policy(
            "allow",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.zone.*": "*"}),
        );
        let one = policy(
            "allow",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.zone.z1": "*"}),
        );
        let nested = policy(
            "allow",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.a1": {"com.cloudflare.api.account.zone.*": "*"}}),
        );
        assert!(within(vec![all.clone()], vec![one.clone()]));
        assert!(within(vec![all.clone()], vec![nested.clone()]));
        assert!(!within(vec![one.clone()], vec![all.clone()]));
        assert!(!within(vec![nested.clone()], vec![all]));
        assert!(
            !within(vec![nested.clone()], vec![one]),
            "a zone's account is unknown"
        );
        let other_account = policy(
            "allow",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.a2": {"com.cloudflare.api.account.zone.*": "*"}}),
        );
        assert!(!within(vec![nested.clone()], vec![other_account]));
        assert!(within(vec![nested.clone()], vec![nested]));
    }

    #[test]
    fn unrelated_groups_and_creator_denies_are_refused() {
        let zones = serde_json::json!({"com.cloudflare.api.account.zone.*": "*"});
        let read = policy("allow", DNS_READ, zones.clone());
        assert!(!within(
            vec![read.clone()],
            vec![policy("allow", DNS_WRITE, zones.clone())]
        ));
        let deny_one = policy(
            "deny",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.zone.z9": "*"}),
        );
        assert!(!within(
            vec![read.clone(), deny_one.clone()],
            vec![read.clone()]
        ));
        let z1 = policy(
            "allow",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.zone.z1": "*"}),
        );
        assert!(within(vec![read.clone(), deny_one.clone()], vec![z1]));
        // A deny in the new token is always fine.
        assert!(within(vec![read], vec![deny_one]));
    }
}
