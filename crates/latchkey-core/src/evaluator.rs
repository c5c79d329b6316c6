//! The evaluator: a pure function of (token, permission, resource chain, client address,
//! now) to a [`Decision`]: allowed or not, the deciding policy, and the reason.
//!
//! Invariants (each is tested, here and against a naive reference model in
//! `tests/reference.rs`):
//! - a token that is disabled, expired (`now >= expires_on`), not yet valid
//!   (`now < not_before`) or used from a refused address is never allowed;
//! - an address inside any `not_in` range is never allowed; with `in` set, only addresses
//!   inside one of its ranges are; an IPv4-mapped IPv6 address counts as its IPv4 form;
//! - a matching deny beats any allow;
//! - no matching allow means deny (implicit deny-all);
//! - policy order and duplicate policies never change the decision, nor the deciding policy
//!   (the smallest matching policy id decides among equals);
//! - a group applies only to resources of the kinds in its scopes;
//! - a top-level key matches the target (`chain[0]`) itself; a nested entry
//!   `outer: {inner: "*"}` matches when `inner` covers the target and `outer` covers one of
//!   its enclosing resources (`chain[1..]`), so zones nested under account A never reach a
//!   zone of account B.
//!
//! Whether the token's owner holds the resource (membership) is the caller's to check; it
//! can only turn an allow into a deny ([`Reason::OwnerLacksResource`]).

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::catalogue::Catalogue;
use crate::id::Id;
use crate::policy::{Effect, Policy, ResourceValue};
use crate::resource::ResourceKey;
use crate::token::{Token, Unusable};

/// What is being asked: a permission on a resource, with its enclosing resources.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// A permission name (e.g. `com.cloudflare.api.token.read`) or a permission-group id.
    pub permission: &'a str,
    /// The target first, then its enclosing resources from the nearest outward.
    pub chain: &'a [ResourceKey],
}

/// Why a decision came out as it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An allow policy matched and no deny did.
    Allowed,
    /// A deny policy matched.
    DeniedByPolicy,
    /// No policy matched: implicit deny.
    NoAllowMatched,
    /// The token cannot be used now, from this address.
    Unusable(Unusable),
    /// The policies allow it, but the token's owner does not hold the resource (a user not
    /// a member of the account, an account token outside its account).
    OwnerLacksResource,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Allowed => f.write_str("allowed by policy"),
            Reason::DeniedByPolicy => f.write_str("denied by policy"),
            Reason::NoAllowMatched => f.write_str("no allow matched"),
            Reason::Unusable(Unusable::Disabled) => f.write_str("the token is disabled"),
            Reason::Unusable(Unusable::Expired) => f.write_str("the token has expired"),
            Reason::Unusable(Unusable::NotYetValid) => f.write_str("the token is not valid yet"),
            Reason::Unusable(Unusable::AddressRefused(ip)) => {
                write!(f, "the token cannot be used from {ip}")
            }
            Reason::OwnerLacksResource => {
                f.write_str("the token's owner does not hold the resource")
            }
        }
    }
}

/// The evaluator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// The policy that decided, if any matched.
    pub policy_id: Option<Id>,
    /// The policy's resource key that matched (the outer key of a nested entry).
    pub matched_resource: Option<String>,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// A refusal decided by no policy.
    pub fn refused(reason: Reason) -> Self {
        Decision {
            allowed: false,
            policy_id: None,
            matched_resource: None,
            reason,
        }
    }
}

/// Decides whether `token` may use `request.permission` on `request.chain` from
/// `client_ip` at `now`: first whether the token is usable, then its policies.
pub fn evaluate(
    catalogue: &Catalogue,
    token: &Token,
    request: &Request<'_>,
    client_ip: IpAddr,
    now: OffsetDateTime,
) -> Decision {
    match token.check_usable(now, client_ip) {
        Ok(()) => evaluate_policies(&token.policies, catalogue, request),
        Err(unusable) => Decision::refused(Reason::Unusable(unusable)),
    }
}

/// Decides `request` against `policies`. Unknown permission groups grant nothing.
pub fn evaluate_policies(
    policies: &[Policy],
    catalogue: &Catalogue,
    request: &Request<'_>,
) -> Decision {
    let mut best: [Option<(Id, &ResourceKey)>; 2] = [None, None];
    for policy in policies {
        let Some(matched) = matches(policy, catalogue, request) else {
            continue;
        };
        let slot = &mut best[usize::from(policy.effect == Effect::Deny)];
        if slot.is_none_or(|(id, _)| policy.id < id) {
            *slot = Some((policy.id, matched));
        }
    }
    let decide = |reason: Reason, (id, key): (Id, &ResourceKey)| Decision {
        allowed: reason == Reason::Allowed,
        policy_id: Some(id),
        matched_resource: Some(key.to_string()),
        reason,
    };
    match best {
        [_, Some(deny)] => decide(Reason::DeniedByPolicy, deny),
        [Some(allow), None] => decide(Reason::Allowed, allow),
        [None, None] => Decision::refused(Reason::NoAllowMatched),
    }
}

/// The resource key by which `policy` matches `request`, if it does.
fn matches<'p>(
    policy: &'p Policy,
    catalogue: &Catalogue,
    request: &Request<'_>,
) -> Option<&'p ResourceKey> {
    let (target, parents) = request.chain.split_first()?;
    let group_applies = policy.permission_groups.iter().any(|granted| {
        catalogue
            .get(&granted.id)
            .is_some_and(|group| group.grants(request.permission) && group.applies_to(target.kind))
    });
    if !group_applies {
        return None;
    }
    policy
        .resources
        .0
        .iter()
        .find(|(key, value)| match value {
            ResourceValue::All => key.covers(target),
            ResourceValue::Nested(inner) => {
                inner.iter().any(|k| k.covers(target)) && parents.iter().any(|p| key.covers(p))
            }
        })
        .map(|(key, _)| key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::{permissions::*, API_TOKENS_READ, API_TOKENS_WRITE};
    use crate::resource::ResourceKind;

    const DNS_READ: &str = "82e64a83756745bbbb1c9c2701bf816b";

    fn policy(effect: &str, group: &str, resources: serde_json::Value) -> Policy {
        serde_json::from_value(serde_json::json!({
            "id": Id::random(), "effect": effect,
            "permission_groups": [{"id": group}], "resources": resources,
        }))
        .unwrap()
    }

    fn key(kind: ResourceKind, id: &str) -> ResourceKey {
        ResourceKey::specific(kind, id)
    }

    #[test]
    fn write_grants_read_on_the_users_own_resource_only() {
        let catalogue = Catalogue::builtin();
        let p = vec![policy(
            "allow",
            API_TOKENS_WRITE,
            serde_json::json!({"com.cloudflare.api.user.u1": "*"}),
        )];
        let ask = |permission, user| {
            evaluate_policies(
                &p,
                &catalogue,
                &Request {
                    permission,
                    chain: &[key(ResourceKind::User, user)],
                },
            )
        };
        assert!(ask(USER_TOKEN_READ, "u1").allowed);
        assert!(ask(USER_TOKEN_CREATE, "u1").allowed);
        assert!(!ask(USER_TOKEN_READ, "u2").allowed);
        assert!(!ask(ACCOUNT_TOKEN_READ, "u1").allowed);
        assert_eq!(ask(USER_TOKEN_READ, "u2").reason, Reason::NoAllowMatched);
        assert_eq!(
            ask(USER_TOKEN_READ, "u2").reason.to_string(),
            "no allow matched"
        );
    }

    #[test]
    fn deny_wins_over_allow_in_any_order() {
        let catalogue = Catalogue::builtin();
        let allow = policy(
            "allow",
            API_TOKENS_WRITE,
            serde_json::json!({"com.cloudflare.api.user.*": "*"}),
        );
        let deny = policy(
            "deny",
            API_TOKENS_READ,
            serde_json::json!({"com.cloudflare.api.user.u1": "*"}),
        );
        let chain = [key(ResourceKind::User, "u1")];
        let request = Request {
            permission: USER_TOKEN_LIST,
            chain: &chain,
        };
        for policies in [
            vec![allow.clone(), deny.clone()],
            vec![deny.clone(), allow.clone()],
        ] {
            let d = evaluate_policies(&policies, &catalogue, &request);
            assert!(!d.allowed);
            assert_eq!(d.policy_id, Some(deny.id));
            assert_eq!(
                d.matched_resource.as_deref(),
                Some("com.cloudflare.api.user.u1")
            );
        }
        // Create is not denied: the deny's group does not grant it.
        let create = Request {
            permission: USER_TOKEN_CREATE,
            chain: &chain,
        };
        assert!(evaluate_policies(&[allow, deny], &catalogue, &create).allowed);
    }

    #[test]
    fn nested_zone_wildcards_stay_inside_their_account() {
        let catalogue = Catalogue::builtin();
        let p = vec![policy(
            "allow",
            DNS_READ,
            serde_json::json!({"com.cloudflare.api.account.a1": {"com.cloudflare.api.account.zone.*": "*"}}),
        )];
        let zone_in = |account: &str| {
            evaluate_policies(
                &p,
                &catalogue,
                &Request {
                    permission: DNS_READ,
                    chain: &[
                        key(ResourceKind::Zone, "z1"),
                        key(ResourceKind::Account, account),
                    ],
                },
            )
            .allowed
        };
        assert!(zone_in("a1"));
        assert!(!zone_in("a2"));
        // A zone with no known parent is not reached through the nested form.
        let bare = Request {
            permission: DNS_READ,
            chain: &[key(ResourceKind::Zone, "z1")],
        };
        assert!(!evaluate_policies(&p, &catalogue, &bare).allowed);
        // Nor is the account itself.
        let account = Request {
            permission: DNS_READ,
            chain: &[key(ResourceKind::Account, "a1")],
        };
        assert!(!evaluate_policies(&p, &catalogue, &account).allowed);
    }

    #[test]
    fn empty_chain_and_unknown_groups_grant_nothing() {
        let catalogue = Catalogue::builtin();
        let p = vec![policy(
            "allow",
            "00000000000000000000000000000000",
            serde_json::json!({"com.cloudflare.api.user.*": "*"}),
        )];
        let chain = [key(ResourceKind::User, "u1")];
        let r = Request {
            permission: "00000000000000000000000000000000",
            chain: &chain,
        };
        assert!(!evaluate_policies(&p, &catalogue, &r).allowed);
        let r = Request {
            permission: USER_TOKEN_READ,
            chain: &[],
        };
        assert!(!evaluate_policies(&p, &catalogue, &r).allowed);
    }

    mod properties {
        use super::*;
        use crate::policy::{GrantedGroup, Resources};
        use proptest::prelude::*;

        const GROUPS: [&str; 4] = [
            API_TOKENS_READ,
            API_TOKENS_WRITE,
            DNS_READ,
            crate::catalogue::ACCOUNT_API_TOKENS_READ,
        ];
        const PERMISSIONS: [&str; 4] = [
            USER_TOKEN_READ,
            USER_TOKEN_CREATE,
            DNS_READ,
            ACCOUNT_TOKEN_LIST,
        ];

        fn resource() -> impl Strategy<Value = (ResourceKey, ResourceValue)> {
            let keys = prop_oneof![
                Just(key(ResourceKind::User, "u1")),
                Just(key(ResourceKind::User, "u2")),
                Just(key(ResourceKind::Account, "a1")),
                Just(key(ResourceKind::Zone, "z1")),
                Just("com.cloudflare.api.user.*".parse().unwrap()),
                Just("com.cloudflare.api.account.*".parse().unwrap()),
                Just("com.cloudflare.api.account.zone.*".parse().unwrap()),
            ];
            prop_oneof![
                keys.prop_map(|k| (k, ResourceValue::All)),
                Just((
                    key(ResourceKind::Account, "a1"),
                    ResourceValue::Nested(vec!["com.cloudflare.api.account.zone.*"
                        .parse()
                        .unwrap()])
                )),
            ]
        }

        fn policy() -> impl Strategy<Value = Policy> {
            (
                any::<bool>(),
                proptest::sample::subsequence(GROUPS.to_vec(), 1..=2),
                proptest::collection::vec(resource(), 1..=3),
            )
                .prop_map(|(deny, groups, resources)| Policy {
                    id: Id::random(),
                    effect: if deny { Effect::Deny } else { Effect::Allow },
                    permission_groups: groups
                        .into_iter()
                        .map(|g| GrantedGroup {
                            id: g.parse().unwrap(),
                            meta: None,
                        })
                        .collect(),
                    resources: Resources(resources),
                })
        }

        fn chain() -> impl Strategy<Value = Vec<ResourceKey>> {
            prop_oneof![
                Just(vec![key(ResourceKind::User, "u1")]),
                Just(vec![key(ResourceKind::Account, "a1")]),
                Just(vec![
                    key(ResourceKind::Zone, "z1"),
                    key(ResourceKind::Account, "a1")
                ]),
                Just(vec![
                    key(ResourceKind::Zone, "z1"),
                    key(ResourceKind::Account, "a2")
                ]),
            ]
        }

        proptest! {
            #[test]
            fn order_and_duplicates_never_change_the_decision(
                policies in proptest::collection::vec(policy(), 0..6),
                chain in chain(),
                permission in proptest::sample::select(PERMISSIONS.to_vec()),
            ) {
                let catalogue = Catalogue::builtin();
                let request = Request { permission, chain: &chain };
                let decision = evaluate_policies(&policies, &catalogue, &request);
                let mut reversed = policies.clone();
                reversed.reverse();
                prop_assert_eq!(&evaluate_policies(&reversed, &catalogue, &request), &decision);
                let mut doubled = policies.clone();
                doubled.extend(policies.iter().cloned());
                prop_assert_eq!(&evaluate_policies(&doubled, &catalogue, &request), &decision);
            }

            #[test]
            fn a_deny_twin_of_any_allowing_policy_turns_the_answer_to_no(
                policies in proptest::collection::vec(policy(), 1..6),
                chain in chain(),
                permission in proptest::sample::select(PERMISSIONS.to_vec()),
            ) {
                let catalogue = Catalogue::builtin();
                let request = Request { permission, chain: &chain };
                let decision = evaluate_policies(&policies, &catalogue, &request);
                if let Some(id) = decision.policy_id.filter(|_| decision.allowed) {
                    let mut twin = policies.iter().find(|p| p.id == id).unwrap().clone();
                    twin.id = Id::random();
                    twin.effect = Effect::Deny;
                    let mut with_twin = policies.clone();
                    with_twin.push(twin);
                    prop_assert!(!evaluate_policies(&with_twin, &catalogue, &request).allowed);
                }
                // Without any allow there is no yes.
                let denies: Vec<Policy> = policies.into_iter().filter(|p| p.effect == Effect::Deny).collect();
                prop_assert!(!evaluate_policies(&denies, &catalogue, &request).allowed);
            }
        }
    }
}
