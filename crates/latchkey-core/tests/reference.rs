//! The evaluator checked against a second, deliberately naive reference model (docs/cloudflare-tokens.md §4.1–§4.4).
//!
//! The reference model ([`reference`]) is written from the spec, not from `src/evaluator.rs`:
//! it works on the key *texts* (split at the last dot), plain integers for time and hand-made
//! bit masks for CIDRs, unmaps `::ffff:a.b.c.d` by hand, and uses the crate only to read
//! permission groups out of the [`Catalogue`] (as data: `id`, `scopes`, `permissions`).
//! Tokens and requests are generated as plain data ([`TokenModel`], [`RequestModel`]); the
//! real [`Token`] is built from that data by parsing, and [`latchkey_core::evaluate`] is run
//! on it.
//!
//! Invariants tested (each by a property test over random tokens and requests unless noted):
//! 1. **Differential** (5000 cases): `evaluate(..).allowed` equals the reference, and the
//!    reason agrees with it: `Unusable(x)` only for a cause the reference also finds,
//!    `DeniedByPolicy` only when a deny matches, `Allowed` only when an allow matches and no
//!    deny does, `NoAllowMatched` only when nothing matches. The deciding policy is a
//!    matching one of the right effect (the smallest id, as `src/evaluator.rs` documents),
//!    and the reported resource key is one through which that policy matches.
//! 2. **Deny wins**: when a deny matches, nothing is allowed; adding a deny twin of the
//!    deciding allow policy (anywhere in the list) turns the allow into `DeniedByPolicy`.
//! 3. **Implicit deny**: with every allow policy removed nothing is allowed, and the reason
//!    is `Unusable(..)`, `DeniedByPolicy` or `NoAllowMatched` as the reference says.
//! 4. **Order and duplicates**: a random permutation, the reversal, or a doubling of the
//!    policies never changes the decision (allowed, deciding policy, matched key, reason).
//! 5. **Time window**: before `not_before` the reason is `Unusable(NotYetValid)`, at or after
//!    `expires_on` it is `Unusable(Expired)`, and outside the window nothing is allowed;
//!    exactly at `not_before` the token is usable, exactly at `expires_on` it is expired
//!    (unit test, to the nanosecond, with the stored statuses too).
//! 6. **Addresses**: an address inside a `not_in` range is never allowed, even if also inside
//!    `in`; with `in` set, an address outside every `in` range is never allowed (both ranges
//!    are built from the address, not judged by the reference); the reason names the address
//!    in its IPv4 form.
//! 7. **IPv4-mapped IPv6**: `a.b.c.d` and `::ffff:a.b.c.d` always get the same decision.
//! 8. **Resource keys, exactly §4.1**: every row of the §4.1 table reaches what it says and
//!    nothing else (unit test, the reference held to it too); entries nested under account
//!    `a1` never reach a zone or bucket whose enclosing account is not `a1`; top-level account
//!    keys (`a1`, `a2`, `*`) never reach a zone, bucket or user, although the token holds
//!    zone-, bucket- and user-scoped groups; a specific id never matches another id.
//! 9. **The generators are not vacuous**: over a fixed seed, each outcome (allowed, denied by
//!    policy, no allow matched, unusable) is at least 5% of cases and matches through nested
//!    entries at least 1%.
//!
//! Random tokens: status (mostly active), optional `not_before` / `expires_on` within 5 s of
//! [`NOW`], an optional address condition of IPv4, IPv6 and IPv4-mapped CIDRs (/0 to /128,
//! host bits sometimes set), and 0 to 6 policies of random effect, each with 1 to 4 groups
//! (user, account, zone and bucket scoped, plus one unknown id) and 1 to 4 entries over a
//! small id alphabet, top-level or nested. Random requests are often aimed at the token's own
//! entries and groups (see [`token_and_request`]) so that matches and near misses are common.
//!
//! Proptest failure files are not written (the crate tree is left as it is); a failure
//! prints its minimal case.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::IpNet;
use latchkey_core::catalogue::permissions::*;
use latchkey_core::token::Unusable;
use latchkey_core::{
    evaluate, Catalogue, Condition, Decision, Effect, GrantedGroup, Id, IpCondition, Owner, Policy,
    Reason, Request, ResourceKey, ResourceKind, ResourceValue, Resources, Status, Token,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------
// Fixed data
// ---------------------------------------------------------------------------------------

/// The fixed instant around which token windows and request times are drawn.
const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(Catalogue::builtin);

const API_TOKENS_READ: &str = "0cc3a61731504c89b99ec1be78b77aa0"; // user
const API_TOKENS_WRITE: &str = "686d18d5ac6c441c867cbf6771e58a0a"; // user
const ACCOUNT_API_TOKENS_READ: &str = "eb56a6953c034b9d97dd838155666f06"; // account
const ACCOUNT_API_TOKENS_WRITE: &str = "5bc3f8b21c554832afc660159ab75fa4"; // account
const DNS_READ: &str = "82e64a83756745bbbb1c9c2701bf816b"; // zone
const ZONE_READ: &str = "c8fed203ed3043cba015a93ad1616f1f"; // zone
const R2_ITEM_READ: &str = "6a018a9f2fc74eb6b293b0c548f38b39"; // r2 bucket
/// Not in the catalogue: grants nothing.
const UNKNOWN_GROUP: &str = "00000000000000000000000000000000";

/// The groups tokens are drawn from: several of each scope, plus an unknown one.
const GROUPS: [&str; 8] = [
    API_TOKENS_READ,
    API_TOKENS_WRITE,
    ACCOUNT_API_TOKENS_READ,
    ACCOUNT_API_TOKENS_WRITE,
    DNS_READ,
    ZONE_READ,
    R2_ITEM_READ,
    UNKNOWN_GROUP,
];

/// The permissions of the token API (`catalogue::permissions`).
const TOKEN_PERMISSIONS: [&str; 10] = [
    USER_TOKEN_LIST,
    USER_TOKEN_READ,
    USER_TOKEN_CREATE,
    USER_TOKEN_UPDATE,
    USER_TOKEN_DELETE,
    ACCOUNT_TOKEN_LIST,
    ACCOUNT_TOKEN_READ,
    ACCOUNT_TOKEN_CREATE,
    ACCOUNT_TOKEN_UPDATE,
    ACCOUNT_TOKEN_DELETE,
];

const USER: &str = "com.cloudflare.api.user";
const ACCOUNT: &str = "com.cloudflare.api.account";
const ZONE: &str = "com.cloudflare.api.account.zone";
const BUCKET: &str = "com.cloudflare.edge.r2.bucket";

/// Specific resources of requests (a small alphabet, so that policies match often).
const USERS: [&str; 2] = ["u1", "u2"];
const ACCOUNTS: [&str; 2] = ["a1", "a2"];
const ZONES: [&str; 2] = ["z1", "z2"];
const BUCKETS: [&str; 2] = ["a1_default_b1", "a2_eu_b2"];

fn k(prefix: &str, id: &str) -> String {
    format!("{prefix}.{id}")
}

/// Parses a key the test wrote itself.
fn key(text: &str) -> ResourceKey {
    text.parse()
        .unwrap_or_else(|e| panic!("bad test key {text:?}: {e}"))
}

fn at(offset_secs: i64) -> OffsetDateTime {
    NOW + Duration::seconds(offset_secs)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(cases)
    }
}

// ---------------------------------------------------------------------------------------
// Plain-data model of tokens and requests
// ---------------------------------------------------------------------------------------

/// A token as plain data. Times are seconds relative to [`NOW`].
#[derive(Debug, Clone)]
struct TokenModel {
    status: Status,
    not_before: Option<i64>,
    expires_on: Option<i64>,
    /// `(in, not_in)`; `None` is no condition at all.
    condition: Option<(Vec<IpNet>, Vec<IpNet>)>,
    policies: Vec<PolicyModel>,
}

#[derive(Debug, Clone)]
struct PolicyModel {
    /// 32 lowercase hex.
    id: String,
    deny: bool,
    groups: Vec<&'static str>,
    resources: Vec<Entry>,
}

/// One entry of a policy's `resources`.
#[derive(Debug, Clone)]
enum Entry {
    /// `"key": "*"`
    All(String),
    /// `"outer": {"inner": "*", ...}`
    Nested(String, Vec<String>),
}

#[derive(Debug, Clone)]
struct RequestModel {
    permission: &'static str,
    /// Target first, then its enclosing resources.
    chain: Vec<String>,
    ip: IpAddr,
    /// Seconds relative to [`NOW`].
    now: i64,
}

impl TokenModel {
    /// The real token, built by parsing the model's texts.
    fn to_token(&self) -> Token {
        Token {
            id: "ed17574386854bf78a67040be0a770b0".parse().unwrap(),
            owner: Owner::User("4f1c6a0e2b7d4c3f9a8e5d6c7b8a9f01".parse().unwrap()),
            name: "reference".into(),
            status: self.status,
            issued_on: NOW - Duration::days(30),
            modified_on: NOW - Duration::days(30),
            last_used_on: None,
            not_before: self.not_before.map(at),
            expires_on: self.expires_on.map(at),
            policies: self.policies.iter().map(PolicyModel::to_policy).collect(),
            condition: Condition {
                request_ip: self.condition.as_ref().map(|(allow, not_in)| IpCondition {
                    allow: allow.clone(),
                    not_in: not_in.clone(),
                }),
            },
            revision: 0,
            exposure: None,
        }
    }

    /// A token that is active, unlimited in time and address, with these policies.
    fn usable(policies: Vec<PolicyModel>) -> Self {
        TokenModel {
            status: Status::Active,
            not_before: None,
            expires_on: None,
            condition: None,
            policies,
        }
    }
}

impl PolicyModel {
    fn to_policy(&self) -> Policy {
        Policy {
            id: self.id.parse().unwrap(),
            effect: if self.deny {
                Effect::Deny
            } else {
                Effect::Allow
            },
            permission_groups: self
                .groups
                .iter()
                .map(|g| GrantedGroup {
                    id: g.parse().unwrap(),
                    meta: None,
                })
                .collect(),
            resources: Resources(
                self.resources
                    .iter()
                    .map(|entry| match entry {
                        Entry::All(k) => (key(k), ResourceValue::All),
                        Entry::Nested(outer, inner) => (
                            key(outer),
                            ResourceValue::Nested(inner.iter().map(|k| key(k)).collect()),
                        ),
                    })
                    .collect(),
            ),
        }
    }

    /// An allow policy holding every group, so that scopes never stand in the way.
    fn allow_all_groups(id: u128, resources: Vec<Entry>) -> Self {
        PolicyModel {
            id: format!("{id:032x}"),
            deny: false,
            groups: GROUPS.to_vec(),
            resources,
        }
    }
}

/// Runs the real evaluator on the model.
fn run(token: &TokenModel, request: &RequestModel) -> Decision {
    let chain: Vec<ResourceKey> = request.chain.iter().map(|k| key(k)).collect();
    evaluate(
        &CATALOGUE,
        &token.to_token(),
        &Request {
            permission: request.permission,
            chain: &chain,
        },
        request.ip,
        at(request.now),
    )
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

/// What the reference model concludes.
#[derive(Debug)]
struct Verdict {
    /// Every reason the token cannot be used (empty: usable).
    unusable: Vec<Unusable>,
    /// Matching allow policies: (id, the top-level keys through which the policy matches).
    allows: Vec<(String, Vec<String>)>,
    /// Matching deny policies, likewise.
    denies: Vec<(String, Vec<String>)>,
}

impl Verdict {
    fn allowed(&self) -> bool {
        self.unusable.is_empty() && !self.allows.is_empty() && self.denies.is_empty()
    }
}

/// The naive reference evaluator.
fn reference(catalogue: &Catalogue, token: &TokenModel, request: &RequestModel) -> Verdict {
    let mut unusable = Vec::new();
    if token.status == Status::Disabled {
        unusable.push(Unusable::Disabled);
    }
    if token.status == Status::Expired {
        unusable.push(Unusable::Expired);
    }
    if let Some(expires_on) = token.expires_on {
        if request.now >= expires_on {
            unusable.push(Unusable::Expired);
        }
    }
    if let Some(not_before) = token.not_before {
        if request.now < not_before {
            unusable.push(Unusable::NotYetValid);
        }
    }
    let ip = unmap(request.ip);
    if !address_passes(&token.condition, ip) {
        unusable.push(Unusable::AddressRefused(ip));
    }

    let mut allows = Vec::new();
    let mut denies = Vec::new();
    for policy in &token.policies {
        let keys = matching_keys(catalogue, policy, request);
        if keys.is_empty() {
            continue;
        }
        if policy.deny {
            denies.push((policy.id.clone(), keys));
        } else {
            allows.push((policy.id.clone(), keys));
        }
    }
    Verdict {
        unusable,
        allows,
        denies,
    }
}

/// `::ffff:a.b.c.d` becomes `a.b.c.d`; everything else is left alone.
fn unmap(ip: IpAddr) -> IpAddr {
    if let IpAddr::V6(v6) = ip {
        let o = v6.octets();
        if o[..10] == [0; 10] && o[10] == 0xff && o[11] == 0xff {
            return IpAddr::V4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
        }
    }
    ip
}

/// Same family, and the top `prefix_len` bits of the network and the address are equal.
fn cidr_contains(net: &IpNet, ip: IpAddr) -> bool {
    let prefix = u32::from(net.prefix_len());
    match (net.addr(), ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from_be_bytes(n.octets()) & mask == u32::from_be_bytes(a.octets()) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from_be_bytes(n.octets()) & mask == u128::from_be_bytes(a.octets()) & mask
        }
        _ => false,
    }
}

/// §4.3: no condition allows all; `not_in` refuses; a non-empty `in` must contain the address.
fn address_passes(condition: &Option<(Vec<IpNet>, Vec<IpNet>)>, ip: IpAddr) -> bool {
    let Some((allow, not_in)) = condition else {
        return true;
    };
    for net in not_in {
        if cidr_contains(net, ip) {
            return false;
        }
    }
    if allow.is_empty() {
        return true;
    }
    allow.iter().any(|net| cidr_contains(net, ip))
}

/// Splits a key at its last dot: (kind prefix, id or `*`).
fn split_key(text: &str) -> (&str, &str) {
    text.rsplit_once('.').expect("a key has a dot")
}

/// A key matches a (specific) target: same kind prefix, and `*` or the same id.
fn key_matches(key: &str, target: &str) -> bool {
    let (key_kind, key_id) = split_key(key);
    let (target_kind, target_id) = split_key(target);
    key_kind == target_kind && (key_id == "*" || key_id == target_id)
}

/// The key prefix of a scope, written out by hand.
fn scope_text(scope: ResourceKind) -> &'static str {
    match scope {
        ResourceKind::User => USER,
        ResourceKind::Account => ACCOUNT,
        ResourceKind::Zone => ZONE,
        ResourceKind::R2Bucket => BUCKET,
    }
}

/// Whether the group grants `permission` on resources of `target_kind` (a key prefix).
fn group_grants(
    catalogue: &Catalogue,
    group_id: &str,
    permission: &str,
    target_kind: &str,
) -> bool {
    let Ok(id) = group_id.parse::<Id>() else {
        return false;
    };
    let Some(group) = catalogue.get(&id) else {
        return false;
    };
    let grants = permission == group.id.to_string() || group.permissions.contains(&permission);
    let scoped = group.scopes.iter().any(|&s| scope_text(s) == target_kind);
    grants && scoped
}

/// The top-level keys through which `policy` matches the request (empty: it does not).
fn matching_keys(
    catalogue: &Catalogue,
    policy: &PolicyModel,
    request: &RequestModel,
) -> Vec<String> {
    let Some((target, parents)) = request.chain.split_first() else {
        return Vec::new();
    };
    let (target_kind, _) = split_key(target);
    let granted = policy
        .groups
        .iter()
        .any(|g| group_grants(catalogue, g, request.permission, target_kind));
    if !granted {
        return Vec::new();
    }
    let mut keys = Vec::new();
    for entry in &policy.resources {
        match entry {
            Entry::All(k) => {
                if key_matches(k, target) {
                    keys.push(k.clone());
                }
            }
            Entry::Nested(outer, inner) => {
                let inner_hits = inner.iter().any(|k| key_matches(k, target));
                let outer_hits = parents.iter().any(|p| key_matches(outer, p));
                if inner_hits && outer_hits {
                    keys.push(outer.clone());
                }
            }
        }
    }
    keys
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        10 => Just(Status::Active),
        1 => Just(Status::Disabled),
        1 => Just(Status::Expired),
    ]
}

fn hex_id() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| format!("{n:032x}"))
}

/// Top-level keys: specific ids from the small alphabet and wildcards of every kind.
fn top_level_key() -> impl Strategy<Value = String> {
    let mut keys = Vec::new();
    for (prefix, ids) in [
        (USER, &USERS),
        (ACCOUNT, &ACCOUNTS),
        (ZONE, &ZONES),
        (BUCKET, &BUCKETS),
    ] {
        keys.extend(ids.iter().chain(&["*"]).map(|id| k(prefix, id)));
    }
    select(keys)
}

/// Keys that may sit inside an account in the nested form.
fn nested_inner_keys() -> Vec<String> {
    vec![
        k(ZONE, "*"),
        k(ZONE, "z1"),
        k(BUCKET, "*"),
        k(BUCKET, "a1_default_b1"),
    ]
}

/// `account.(a1|a2|*) -> [some of zone.*, zone.z1, bucket.*, bucket.a1_default_b1]`.
fn nested_entry() -> impl Strategy<Value = Entry> {
    (
        select(vec!["a1", "a2", "*"]),
        subsequence(nested_inner_keys(), 1..=3),
    )
        .prop_map(|(account, inner)| Entry::Nested(k(ACCOUNT, account), inner))
}

fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        3 => top_level_key().prop_map(Entry::All),
        2 => nested_entry(),
    ]
}

fn policy() -> impl Strategy<Value = PolicyModel> {
    (
        hex_id(),
        any::<bool>(),
        subsequence(GROUPS.to_vec(), 1..=4),
        proptest::collection::vec(entry(), 1..=4),
    )
        .prop_map(|(id, deny, groups, resources)| PolicyModel {
            id,
            deny,
            groups,
            resources,
        })
}

const V4_POOL: [Ipv4Addr; 8] = [
    Ipv4Addr::new(10, 0, 0, 1),
    Ipv4Addr::new(10, 0, 0, 2),
    Ipv4Addr::new(10, 1, 2, 3),
    Ipv4Addr::new(10, 255, 255, 255),
    Ipv4Addr::new(192, 0, 2, 7),
    Ipv4Addr::new(127, 0, 0, 1),
    Ipv4Addr::new(0, 0, 0, 0),
    Ipv4Addr::new(255, 255, 255, 255),
];

const V6_POOL: [Ipv6Addr; 8] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb9, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
    // IPv4-compatible ::10.0.0.1 (not mapped: it stays IPv6).
    Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0x0a00, 0x0001),
    Ipv6Addr::new(0xffff, 0, 0, 0, 0, 0, 0, 1),
];

/// `::ffff:a.b.c.d`, built by hand.
fn mapped(v4: Ipv4Addr) -> Ipv6Addr {
    let [a, b, c, d] = v4.octets();
    Ipv6Addr::new(
        0,
        0,
        0,
        0,
        0,
        0xffff,
        u16::from_be_bytes([a, b]),
        u16::from_be_bytes([c, d]),
    )
}

fn v4_addr() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        3 => select(V4_POOL.to_vec()),
        1 => any::<u32>().prop_map(Ipv4Addr::from),
    ]
}

fn v6_addr() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        3 => select(V6_POOL.to_vec()),
        1 => any::<u128>().prop_map(Ipv6Addr::from),
    ]
}

/// A client address: IPv4, IPv6, or IPv4-mapped IPv6.
fn client_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        2 => v4_addr().prop_map(IpAddr::V4),
        1 => v6_addr().prop_map(IpAddr::V6),
        1 => v4_addr().prop_map(|a| IpAddr::V6(mapped(a))),
    ]
}

/// A CIDR (host bits may be set), including /0, /8, /32, /128 and IPv4-mapped ranges.
fn cidr() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        3 => (v4_addr(), select(vec![0u8, 1, 8, 16, 24, 31, 32]))
            .prop_map(|(a, p)| IpNet::new(IpAddr::V4(a), p).unwrap()),
        2 => (v6_addr(), select(vec![0u8, 1, 16, 32, 64, 127, 128]))
            .prop_map(|(a, p)| IpNet::new(IpAddr::V6(a), p).unwrap()),
        1 => (v4_addr(), select(vec![96u8, 104, 120, 128]))
            .prop_map(|(a, p)| IpNet::new(IpAddr::V6(mapped(a)), p).unwrap()),
    ]
}

fn condition() -> impl Strategy<Value = Option<(Vec<IpNet>, Vec<IpNet>)>> {
    let nets = || proptest::collection::vec(cidr(), 0..=3);
    prop_oneof![
        3 => Just(None),
        1 => (nets(), nets()).prop_map(Some),
    ]
}

fn token_with(
    policies: impl Strategy<Value = Vec<PolicyModel>>,
) -> impl Strategy<Value = TokenModel> {
    (status(), instant(), instant(), condition(), policies).prop_map(
        |(status, not_before, expires_on, condition, policies)| TokenModel {
            status,
            not_before,
            expires_on,
            condition,
            policies,
        },
    )
}

/// An optional instant a few seconds around [`NOW`].
fn instant() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        4 => Just(None),
        1 => (-5i64..=5).prop_map(Some),
    ]
}

/// At most this many policies per random token.
const MAX_POLICIES: usize = 6;

fn token() -> impl Strategy<Value = TokenModel> {
    token_with(proptest::collection::vec(policy(), 0..=MAX_POLICIES))
}

fn permission() -> impl Strategy<Value = &'static str> {
    prop_oneof![select(GROUPS.to_vec()), select(TOKEN_PERMISSIONS.to_vec())]
}

/// `[user]`, `[account]`, `[zone]`, `[zone, account]`, `[bucket, account]`, `[bucket]`, `[]`.
fn chain() -> impl Strategy<Value = Vec<String>> {
    let one = |prefix: &'static str, ids: &'static [&'static str; 2]| {
        select(ids.to_vec()).prop_map(move |id| k(prefix, id))
    };
    prop_oneof![
        2 => one(USER, &USERS).prop_map(|u| vec![u]),
        2 => one(ACCOUNT, &ACCOUNTS).prop_map(|a| vec![a]),
        1 => one(ZONE, &ZONES).prop_map(|z| vec![z]),
        3 => (one(ZONE, &ZONES), one(ACCOUNT, &ACCOUNTS)).prop_map(|(z, a)| vec![z, a]),
        2 => (one(BUCKET, &BUCKETS), one(ACCOUNT, &ACCOUNTS)).prop_map(|(b, a)| vec![b, a]),
        1 => one(BUCKET, &BUCKETS).prop_map(|b| vec![b]),
        1 => Just(Vec::new()),
    ]
}

/// A token and a request for it. Half the time the chain is aimed at one of the token's own
/// resource entries (a specific resource its key or inner key names, inside the account its
/// outer key names, a random account or none), otherwise it is any [`chain`]. Half the time
/// the permission is one that a group the token holds grants on the target's kind, a
/// quarter of the time one that some group of [`GROUPS`] grants on it, otherwise any
/// permission. So policies match, and narrowly miss, often.
///
/// The request is drawn as raw choices ([`RawRequest`]) resolved against the token, rather
/// than through `prop_flat_map`, so that failures shrink quickly.
fn token_and_request() -> impl Strategy<Value = (TokenModel, RequestModel)> {
    (token(), raw_request()).prop_map(|(token, raw)| {
        let request = raw.resolve(&token);
        (token, request)
    })
}

/// Random choices from which [`RawRequest::resolve`] builds a request for a given token.
#[derive(Debug, Clone)]
struct RawRequest {
    /// Aim at one of the token's entries (if it has any) rather than use `chain`.
    aim: bool,
    /// Which entry, which inner key, which id for a wildcard, which account.
    entry: Index,
    inner: Index,
    id: Index,
    account: Index,
    /// 0..=2: inside an account (the outer key's, for a nested entry, two times in three);
    /// 3: alone (zones and buckets of top-level entries only).
    parent_mode: u8,
    chain: Vec<String>,
    /// 0..=1: a permission a held group grants; 2: one some group grants; 3: `any_permission`.
    permission_mode: u8,
    permission: Index,
    any_permission: &'static str,
    ip: IpAddr,
    now: i64,
}

fn raw_request() -> impl Strategy<Value = RawRequest> {
    (
        (
            any::<bool>(),
            any::<Index>(),
            any::<Index>(),
            any::<Index>(),
            any::<Index>(),
            0u8..4,
            chain(),
        ),
        (0u8..4, any::<Index>(), permission(), client_ip(), -6i64..=6),
    )
        .prop_map(
            |(
                (aim, entry, inner, id, account, parent_mode, chain),
                (permission_mode, permission, any_permission, ip, now),
            )| RawRequest {
                aim,
                entry,
                inner,
                id,
                account,
                parent_mode,
                chain,
                permission_mode,
                permission,
                any_permission,
                ip,
                now,
            },
        )
}

impl RawRequest {
    fn resolve(&self, token: &TokenModel) -> RequestModel {
        let chain = self.chain_for(token);
        let permission = match chain.first() {
            None => self.any_permission,
            Some(target) => {
                let kind = split_key(target).0;
                let held: Vec<&'static str> = GROUPS
                    .into_iter()
                    .chain(TOKEN_PERMISSIONS)
                    .filter(|p| {
                        let holds = |g: &&str| group_grants(&CATALOGUE, g, p, kind);
                        token
                            .policies
                            .iter()
                            .any(|policy| policy.groups.iter().any(holds))
                    })
                    .collect();
                let fitting = permissions_for(kind);
                match self.permission_mode {
                    0 | 1 if !held.is_empty() => *self.permission.get(&held),
                    0..=2 => *self.permission.get(&fitting),
                    _ => self.any_permission,
                }
            }
        };
        RequestModel {
            permission,
            chain,
            ip: self.ip,
            now: self.now,
        }
    }

    fn chain_for(&self, token: &TokenModel) -> Vec<String> {
        let entries: Vec<&Entry> = token.policies.iter().flat_map(|p| &p.resources).collect();
        if !self.aim || entries.is_empty() {
            return self.chain.clone();
        }
        let random_account = k(ACCOUNT, self.account.get::<&str>(&ACCOUNTS));
        match self.entry.get(&entries) {
            Entry::All(key) => {
                let target = self.specific(key);
                let kind = split_key(key).0;
                if matches!(kind, ZONE | BUCKET) && self.parent_mode < 3 {
                    vec![target, random_account]
                } else {
                    vec![target]
                }
            }
            Entry::Nested(outer, inner) => {
                let inner_key: &String = self.inner.get(inner);
                let target = self.specific(inner_key);
                let account = if self.parent_mode < 2 {
                    self.specific(outer)
                } else {
                    random_account
                };
                vec![target, account]
            }
        }
    }

    /// A specific resource named by `key`: one of its kind's small ids if it is a wildcard.
    fn specific(&self, key: &str) -> String {
        match split_key(key) {
            (kind, "*") => k(kind, self.id.get::<&str>(&ids_of(kind))),
            _ => key.to_owned(),
        }
    }
}

/// The small-alphabet ids of a kind.
fn ids_of(kind: &str) -> Vec<&'static str> {
    match kind {
        USER => USERS.to_vec(),
        ACCOUNT => ACCOUNTS.to_vec(),
        ZONE => ZONES.to_vec(),
        BUCKET => BUCKETS.to_vec(),
        _ => unreachable!("unknown kind {kind}"),
    }
}

/// The permissions some group of [`GROUPS`] grants on a resource of this kind (a key prefix).
fn permissions_for(kind: &str) -> Vec<&'static str> {
    let account_api = |p: &&str| p.contains(".account.");
    match kind {
        USER => [API_TOKENS_READ, API_TOKENS_WRITE]
            .into_iter()
            .chain(TOKEN_PERMISSIONS.into_iter().filter(|p| !account_api(p)))
            .collect(),
        ACCOUNT => [ACCOUNT_API_TOKENS_READ, ACCOUNT_API_TOKENS_WRITE]
            .into_iter()
            .chain(TOKEN_PERMISSIONS.into_iter().filter(account_api))
            .collect(),
        ZONE => vec![DNS_READ, ZONE_READ],
        BUCKET => vec![R2_ITEM_READ],
        _ => unreachable!("unknown kind {kind}"),
    }
}

/// One of [`permissions_for`] the kind of `chain`'s target.
fn with_fitting_permission(
    chains: impl Strategy<Value = Vec<String>>,
) -> impl Strategy<Value = (Vec<String>, &'static str)> {
    (chains, any::<Index>()).prop_map(|(chain, i)| {
        let permission = *i.get(&permissions_for(split_key(&chain[0]).0));
        (chain, permission)
    })
}

// ---------------------------------------------------------------------------------------
// 1. Differential test
// ---------------------------------------------------------------------------------------

/// Checks the real decision against the reference verdict, reason and deciding policy included.
fn check_against_reference(
    token: &TokenModel,
    request: &RequestModel,
) -> Result<(), TestCaseError> {
    let decision = run(token, request);
    let verdict = reference(&CATALOGUE, token, request);
    prop_assert_eq!(
        decision.allowed,
        verdict.allowed(),
        "evaluate says {:?}, the reference says {:?}",
        decision,
        verdict
    );
    // The deciding policy must be the smallest matching id, with a key it matches through.
    let decided_by = |matches: &[(String, Vec<String>)]| -> Result<(), TestCaseError> {
        let (id, keys) = matches.iter().min_by(|a, b| a.0.cmp(&b.0)).unwrap();
        let decided = decision.policy_id.map(|i| i.to_string());
        prop_assert_eq!(decided.as_ref(), Some(id));
        let resource = decision.matched_resource.clone().unwrap_or_default();
        prop_assert!(
            keys.contains(&resource),
            "{resource:?} is not among {keys:?}"
        );
        Ok(())
    };
    match decision.reason {
        Reason::Unusable(why) => {
            prop_assert!(
                verdict.unusable.contains(&why),
                "{why:?} but the reference says {verdict:?}"
            );
            prop_assert_eq!(decision.policy_id, None);
        }
        Reason::DeniedByPolicy => {
            prop_assert!(verdict.unusable.is_empty(), "{:?}", verdict);
            prop_assert!(!verdict.denies.is_empty(), "{:?}", verdict);
            decided_by(&verdict.denies)?;
        }
        Reason::Allowed => {
            prop_assert!(verdict.allowed(), "{:?}", verdict);
            decided_by(&verdict.allows)?;
        }
        Reason::NoAllowMatched => {
            prop_assert!(verdict.unusable.is_empty(), "{:?}", verdict);
            prop_assert!(
                verdict.allows.is_empty() && verdict.denies.is_empty(),
                "{:?}",
                verdict
            );
            prop_assert_eq!(decision.policy_id, None);
        }
        Reason::OwnerLacksResource => {
            prop_assert!(false, "evaluate does not check membership");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(5000))]

    /// Invariant 1.
    #[test]
    fn evaluate_agrees_with_the_reference_model((token, request) in token_and_request()) {
        check_against_reference(&token, &request)?;
    }
}

// ---------------------------------------------------------------------------------------
// 2–4. Deny wins, implicit deny, order and duplicates
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1000))]

    /// Invariant 2: a matching deny beats any allow, and a deny twin of the allowing policy
    /// (inserted anywhere) turns the allow into a deny.
    #[test]
    fn a_matching_deny_beats_any_allow(
        (token, request) in token_and_request(),
        twin_id in hex_id(),
        position in any::<prop::sample::Index>(),
    ) {
        let decision = run(&token, &request);
        if !reference(&CATALOGUE, &token, &request).denies.is_empty() {
            prop_assert!(!decision.allowed, "{:?}", decision);
        }
        if decision.allowed {
            let deciding = decision.policy_id.unwrap().to_string();
            let mut twin = token.policies.iter().find(|p| p.id == deciding).unwrap().clone();
            twin.id = twin_id;
            twin.deny = true;
            let mut with_twin = token.clone();
            with_twin.policies.insert(position.index(token.policies.len() + 1), twin);
            let after = run(&with_twin, &request);
            prop_assert!(!after.allowed, "{:?}", after);
            prop_assert_eq!(after.reason, Reason::DeniedByPolicy);
        }
    }

    /// Invariant 3: without allow policies nothing is allowed, for the right reason.
    #[test]
    fn no_matching_allow_means_deny((token, request) in token_and_request()) {
        let mut denies_only = token.clone();
        denies_only.policies.retain(|p| p.deny);
        let decision = run(&denies_only, &request);
        prop_assert!(!decision.allowed, "{:?}", decision);
        let verdict = reference(&CATALOGUE, &denies_only, &request);
        if !verdict.unusable.is_empty() {
            prop_assert!(matches!(decision.reason, Reason::Unusable(_)), "{:?}", decision);
        } else if !verdict.denies.is_empty() {
            prop_assert_eq!(decision.reason, Reason::DeniedByPolicy);
        } else {
            prop_assert_eq!(decision.reason, Reason::NoAllowMatched);
            prop_assert_eq!(decision.policy_id, None);
        }
    }

    /// Invariant 4: policy order and duplicates never change the decision.
    #[test]
    fn policy_order_and_duplicates_never_change_the_decision(
        (token, request) in token_and_request(),
        sort_keys in proptest::collection::vec(any::<u32>(), MAX_POLICIES),
    ) {
        // A random permutation of the policies: their indices sorted by random keys.
        let mut order: Vec<usize> = (0..token.policies.len()).collect();
        order.sort_by_key(|&i| sort_keys[i]);
        let decision = run(&token, &request);
        let with = |policies: Vec<PolicyModel>| {
            run(&TokenModel { policies, ..token.clone() }, &request)
        };
        let policies = &token.policies;

        let shuffled = order.iter().map(|&i| policies[i].clone()).collect();
        prop_assert_eq!(&with(shuffled), &decision, "shuffled as {:?}", order);

        let reversed = policies.iter().rev().cloned().collect();
        prop_assert_eq!(&with(reversed), &decision, "reversed");

        let doubled = policies.iter().chain(policies).cloned().collect();
        prop_assert_eq!(&with(doubled), &decision, "doubled");

        let each_twice = policies.iter().flat_map(|p| [p.clone(), p.clone()]).collect();
        prop_assert_eq!(&with(each_twice), &decision, "each twice");
    }
}

// ---------------------------------------------------------------------------------------
// 5. Time window
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(1000))]

    /// Invariant 5: outside [not_before, expires_on) an otherwise usable token is refused as
    /// not yet valid or expired; inside, time is never the reason. With any status and
    /// condition, outside the window is never allowed.
    #[test]
    fn outside_the_time_window_is_always_refused((token, request) in token_and_request()) {
        let before = token.not_before.is_some_and(|nb| request.now < nb);
        let after = token.expires_on.is_some_and(|e| request.now >= e);
        if before || after {
            let decision = run(&token, &request);
            prop_assert!(!decision.allowed, "{:?}", decision);
        }

        let active = TokenModel { status: Status::Active, condition: None, ..token };
        let reason = run(&active, &request).reason;
        let expired = Reason::Unusable(Unusable::Expired);
        let not_yet = Reason::Unusable(Unusable::NotYetValid);
        match (before, after) {
            (false, true) => prop_assert_eq!(reason, expired),
            (true, false) => prop_assert_eq!(reason, not_yet),
            // Both at once (expires_on <= not_before): either reason is right.
            (true, true) => prop_assert!(reason == expired || reason == not_yet, "{:?}", reason),
            (false, false) => prop_assert!(!matches!(reason, Reason::Unusable(_)), "{:?}", reason),
        }
    }
}

/// Invariant 5, at the exact boundaries (to the nanosecond).
#[test]
fn not_before_is_inclusive_and_expires_on_is_exclusive() {
    let mut token = TokenModel::usable(vec![PolicyModel::allow_all_groups(
        1,
        vec![Entry::All(k(USER, "*"))],
    )])
    .to_token();
    let not_before = NOW;
    let expires_on = NOW + Duration::hours(1);
    token.not_before = Some(not_before);
    token.expires_on = Some(expires_on);
    let chain = [key(&k(USER, "u1"))];
    let request = Request {
        permission: USER_TOKEN_READ,
        chain: &chain,
    };
    let ip: IpAddr = "192.0.2.7".parse().unwrap();
    let ask = |token: &Token, now| evaluate(&CATALOGUE, token, &request, ip, now).reason;
    let ns = Duration::nanoseconds(1);

    assert_eq!(
        ask(&token, not_before - ns),
        Reason::Unusable(Unusable::NotYetValid)
    );
    assert_eq!(ask(&token, not_before), Reason::Allowed);
    assert_eq!(ask(&token, expires_on - ns), Reason::Allowed);
    assert_eq!(ask(&token, expires_on), Reason::Unusable(Unusable::Expired));
    assert_eq!(
        ask(&token, expires_on + ns),
        Reason::Unusable(Unusable::Expired)
    );

    // The stored status is checked too.
    for (status, why) in [
        (Status::Disabled, Unusable::Disabled),
        (Status::Expired, Unusable::Expired),
    ] {
        token.status = status;
        assert_eq!(ask(&token, not_before), Reason::Unusable(why));
    }
}

// ---------------------------------------------------------------------------------------
// 6–7. Addresses
// ---------------------------------------------------------------------------------------

/// The CIDR `ip/prefix`, or, with `flip`, the same-size range next to it (the bit at
/// `prefix` flipped), which does not contain `ip`. Prefixes are taken modulo the width.
fn range_around(ip: IpAddr, prefix: u8, flip: bool) -> IpNet {
    match ip {
        IpAddr::V4(a) => {
            let p = if flip { 1 + prefix % 32 } else { prefix % 33 };
            let bits = u32::from(a) ^ if flip { 1 << (32 - p) } else { 0 };
            IpNet::new(IpAddr::V4(Ipv4Addr::from(bits)), p).unwrap()
        }
        IpAddr::V6(a) => {
            let p = if flip { 1 + prefix % 128 } else { prefix % 129 };
            let bits = u128::from(a) ^ if flip { 1 << (128 - p) } else { 0 };
            IpNet::new(IpAddr::V6(Ipv6Addr::from(bits)), p).unwrap()
        }
    }
}

/// The whole other address family: never contains `ip` (IPv4-mapped counts as IPv4).
fn other_family(ip: IpAddr) -> IpNet {
    match ip {
        IpAddr::V4(_) => "::/0".parse().unwrap(),
        IpAddr::V6(_) => "0.0.0.0/0".parse().unwrap(),
    }
}

proptest! {
    #![proptest_config(config(1000))]

    /// Invariant 6: a range around the client's address in `not_in` always refuses it, even
    /// when the same range (or everything) is also in `in`.
    #[test]
    fn an_address_in_a_not_in_range_is_never_allowed(
        (token, request) in token_and_request(),
        prefix in any::<u8>(),
        also_in in any::<bool>(),
        position in any::<prop::sample::Index>(),
    ) {
        let ip = unmap(request.ip);
        let refused = range_around(ip, prefix, false);
        let mut token = token;
        let (allow, not_in) = token.condition.get_or_insert_with(Default::default);
        not_in.insert(position.index(not_in.len() + 1), refused);
        if also_in {
            allow.push(refused);
        }
        let decision = run(&token, &request);
        prop_assert!(!decision.allowed, "{:?}", decision);
        prop_assert!(matches!(decision.reason, Reason::Unusable(_)), "{:?}", decision);

        // Otherwise usable, the token is refused for the address, named in its IPv4 form.
        let usable = TokenModel {
            status: Status::Active,
            not_before: None,
            expires_on: None,
            ..token
        };
        let refused = Reason::Unusable(Unusable::AddressRefused(ip));
        prop_assert_eq!(run(&usable, &request).reason, refused);
    }

    /// Invariant 6: with `in` set, an address outside every `in` range is refused.
    #[test]
    fn an_address_outside_every_in_range_is_never_allowed(
        (token, request) in token_and_request(),
        prefixes in proptest::collection::vec(any::<u8>(), 0..=3),
    ) {
        let ip = unmap(request.ip);
        let mut allow: Vec<IpNet> =
            prefixes.iter().map(|&p| range_around(ip, p, true)).collect();
        allow.push(other_family(ip));
        let mut token = token;
        let not_in = token.condition.take().map(|(_, not_in)| not_in).unwrap_or_default();
        token.condition = Some((allow, not_in));
        let decision = run(&token, &request);
        prop_assert!(!decision.allowed, "{:?}", decision);
        prop_assert!(matches!(decision.reason, Reason::Unusable(_)), "{:?}", decision);

        // Otherwise usable, the token is refused for the address, named in its IPv4 form.
        let usable = TokenModel {
            status: Status::Active,
            not_before: None,
            expires_on: None,
            ..token
        };
        let refused = Reason::Unusable(Unusable::AddressRefused(ip));
        prop_assert_eq!(run(&usable, &request).reason, refused);
    }

    /// Invariant 7: `a.b.c.d` and `::ffff:a.b.c.d` get the same decision.
    #[test]
    fn an_ipv4_address_and_its_mapped_form_decide_alike(
        (token, request) in token_and_request(),
        v4 in v4_addr(),
    ) {
        let as_v4 = RequestModel { ip: IpAddr::V4(v4), ..request.clone() };
        let as_mapped = RequestModel { ip: IpAddr::V6(mapped(v4)), ..request };
        prop_assert_eq!(run(&token, &as_v4), run(&token, &as_mapped));
    }
}

// ---------------------------------------------------------------------------------------
// 8. Resource keys: exactly what §4.1 says
// ---------------------------------------------------------------------------------------

/// Asks (real evaluator, reference) whether a usable token reaches a chain, for a permission
/// some group of [`GROUPS`] grants on the target's kind (so that a refusal is never just a
/// scope mismatch).
fn ask(token: &TokenModel, chain: &[String]) -> (bool, bool) {
    let (kind, _) = split_key(&chain[0]);
    let permission = match kind {
        USER => USER_TOKEN_READ,
        ACCOUNT => ACCOUNT_TOKEN_READ,
        ZONE => DNS_READ,
        BUCKET => R2_ITEM_READ,
        _ => unreachable!(),
    };
    let request = RequestModel {
        permission,
        chain: chain.to_vec(),
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
        now: 0,
    };
    let real = run(token, &request).allowed;
    let model = reference(&CATALOGUE, token, &request).allowed();
    (real, model)
}

/// Invariant 8: the §4.1 table, row by row. Each row is tried on chains it must reach and
/// chains it must not; the reference model is held to the same table.
#[test]
fn the_resource_key_table_of_section_4_1() {
    let z = |zone: &str, account: &str| vec![k(ZONE, zone), k(ACCOUNT, account)];
    let b = |bucket: &str, account: &str| vec![k(BUCKET, bucket), k(ACCOUNT, account)];
    let one = |prefix: &str, id: &str| vec![k(prefix, id)];
    let all = |key: String| vec![Entry::All(key)];
    let nested = |account: &str, inner: &str| {
        vec![Entry::Nested(k(ACCOUNT, account), vec![inner.to_owned()])]
    };

    // (row, resources, chains reached, chains not reached)
    let rows = vec![
        (
            "one account",
            all(k(ACCOUNT, "a1")),
            vec![one(ACCOUNT, "a1")],
            vec![
                one(ACCOUNT, "a2"),
                z("z1", "a1"),
                b("a1_default_b1", "a1"),
                one(USER, "a1"),
            ],
        ),
        (
            "all accounts",
            all(k(ACCOUNT, "*")),
            vec![one(ACCOUNT, "a1"), one(ACCOUNT, "a2")],
            vec![
                z("z1", "a1"),
                one(ZONE, "z1"),
                b("a1_default_b1", "a1"),
                one(USER, "u1"),
            ],
        ),
        (
            "one zone",
            all(k(ZONE, "z1")),
            vec![z("z1", "a1"), z("z1", "a2"), one(ZONE, "z1")],
            vec![z("z2", "a1"), one(ACCOUNT, "a1"), one(ACCOUNT, "z1")],
        ),
        (
            "all zones in one account",
            nested("a1", &k(ZONE, "*")),
            vec![z("z1", "a1"), z("z2", "a1")],
            vec![
                z("z1", "a2"),
                one(ZONE, "z1"),
                one(ACCOUNT, "a1"),
                b("a1_default_b1", "a1"),
            ],
        ),
        (
            "all zones in all accounts",
            all(k(ZONE, "*")),
            vec![z("z1", "a1"), z("z2", "a2"), one(ZONE, "z1")],
            vec![
                one(ACCOUNT, "a1"),
                b("a1_default_b1", "a1"),
                one(USER, "u1"),
            ],
        ),
        (
            "the user",
            all(k(USER, "u1")),
            vec![one(USER, "u1")],
            vec![one(USER, "u2"), one(ACCOUNT, "u1"), z("u1", "a1")],
        ),
        (
            "one R2 bucket",
            all(k(BUCKET, "a1_default_b1")),
            vec![b("a1_default_b1", "a1"), one(BUCKET, "a1_default_b1")],
            vec![b("a1_eu_b1", "a1"), b("a2_eu_b2", "a2"), one(ACCOUNT, "a1")],
        ),
        (
            "all R2 buckets in an account",
            nested("a1", &k(BUCKET, "*")),
            vec![b("a1_default_b1", "a1"), b("a1_eu_b2", "a1")],
            vec![
                b("a2_eu_b2", "a2"),
                one(BUCKET, "a1_default_b1"),
                z("z1", "a1"),
                one(ACCOUNT, "a1"),
            ],
        ),
    ];

    for (row, resources, reached, not_reached) in rows {
        let token = TokenModel::usable(vec![PolicyModel::allow_all_groups(7, resources)]);
        for chain in reached {
            assert_eq!(
                ask(&token, &chain),
                (true, true),
                "{row}: should reach {chain:?}"
            );
        }
        for chain in not_reached {
            assert_eq!(
                ask(&token, &chain),
                (false, false),
                "{row}: should not reach {chain:?}"
            );
        }
    }
}

/// Ids for specific keys: a wider alphabet than the rest of the file.
fn resource_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,6}"
}

fn any_kind() -> impl Strategy<Value = &'static str> {
    select(vec![USER, ACCOUNT, ZONE, BUCKET])
}

/// A target of any kind, alone or inside an account.
fn any_chain() -> impl Strategy<Value = Vec<String>> {
    (
        any_kind(),
        resource_id(),
        proptest::option::of(resource_id()),
    )
        .prop_map(|(kind, id, account)| {
            let mut chain = vec![k(kind, &id)];
            chain.extend(account.map(|a| k(ACCOUNT, &a)));
            chain
        })
}

fn allow_policies(
    entries: impl Strategy<Value = Entry> + Clone,
) -> impl Strategy<Value = Vec<PolicyModel>> {
    proptest::collection::vec(
        (any::<u128>(), proptest::collection::vec(entries, 1..=3))
            .prop_map(|(id, resources)| PolicyModel::allow_all_groups(id, resources)),
        1..=3,
    )
}

proptest! {
    #![proptest_config(config(500))]

    /// Invariant 8: entries nested under account a1 never reach a resource whose enclosing
    /// account is anything else (another account, or none).
    #[test]
    fn nested_entries_never_leave_their_account(
        policies in allow_policies(subsequence(nested_inner_keys(), 1..=4)
            .prop_map(|inner| Entry::Nested(k(ACCOUNT, "a1"), inner))),
        (target, permission) in with_fitting_permission(prop_oneof![
            select(ZONES.to_vec()).prop_map(|z| vec![k(ZONE, z)]),
            select(BUCKETS.to_vec()).prop_map(|b| vec![k(BUCKET, b)]),
        ]),
        parent in proptest::option::of(prop_oneof![Just("a2".to_owned()), resource_id()]),
    ) {
        prop_assume!(parent.as_deref() != Some("a1"));
        let mut chain = target;
        chain.extend(parent.map(|a| k(ACCOUNT, &a)));
        let token = TokenModel::usable(policies);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let request = RequestModel { permission, chain: chain.clone(), ip, now: 0 };
        let decision = run(&token, &request);
        prop_assert!(!decision.allowed, "{:?} reached {:?}", decision, chain);
        prop_assert_eq!(decision.reason, Reason::NoAllowMatched);

        // The same target under a1 is reached exactly when an inner key covers it.
        chain.truncate(1);
        chain.push(k(ACCOUNT, "a1"));
        let under_a1 = RequestModel { chain, ..request };
        prop_assert_eq!(
            run(&token, &under_a1).allowed,
            reference(&CATALOGUE, &token, &under_a1).allowed()
        );
    }

    /// Invariant 8: top-level account keys (a1, a2, `*`) never reach a zone, a bucket or a
    /// user, even though the token holds zone-, bucket- and user-scoped groups.
    #[test]
    fn top_level_account_keys_never_reach_zones_buckets_or_users(
        policies in allow_policies(
            select(vec!["a1", "a2", "*"]).prop_map(|a| Entry::All(k(ACCOUNT, a))),
        ),
        (chain, permission) in with_fitting_permission(
            any_chain().prop_filter("not an account", |c| split_key(&c[0]).0 != ACCOUNT),
        ),
    ) {
        let token = TokenModel::usable(policies);
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let request = RequestModel { permission, chain, ip, now: 0 };
        let decision = run(&token, &request);
        prop_assert!(!decision.allowed, "{:?}", decision);
        prop_assert_eq!(decision.reason, Reason::NoAllowMatched);
    }

    /// Invariant 8: a key with a specific id never matches another id of the same kind, and
    /// does match its own.
    #[test]
    fn a_specific_id_never_matches_another_id(
        kind in any_kind(),
        id in resource_id(),
        other in resource_id(),
    ) {
        prop_assume!(id != other);
        let token = TokenModel::usable(vec![PolicyModel::allow_all_groups(
            3,
            vec![Entry::All(k(kind, &id))],
        )]);
        // Zones and buckets sit in an account bearing the policy's id, to tempt a match on
        // ids alone.
        let chain_to = |target: &str| {
            let mut chain = vec![k(kind, target)];
            if matches!(kind, ZONE | BUCKET) {
                chain.push(k(ACCOUNT, &id));
            }
            chain
        };
        prop_assert_eq!(ask(&token, &chain_to(&other)), (false, false), "{}", other);
        prop_assert_eq!(ask(&token, &chain_to(&id)), (true, true), "{}", id);
    }
}

// ---------------------------------------------------------------------------------------
// 9. The generators are not vacuous
// ---------------------------------------------------------------------------------------

/// Invariant 9: with a fixed seed, the random tokens and requests produce every outcome
/// often enough for the properties above to mean something.
#[test]
fn the_generators_exercise_every_outcome() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = token_and_request();
    let (mut allowed, mut denied, mut nothing, mut unusable, mut nested) = (0, 0, 0, 0, 0);
    let total = 4000;
    for _ in 0..total {
        let (token, request) = strategy.new_tree(&mut runner).unwrap().current();
        let verdict = reference(&CATALOGUE, &token, &request);
        if !verdict.unusable.is_empty() {
            unusable += 1;
        } else if !verdict.denies.is_empty() {
            denied += 1;
        } else if verdict.allows.is_empty() {
            nothing += 1;
        } else {
            allowed += 1;
            let through_nested = token.policies.iter().any(|p| {
                verdict.allows.iter().any(|(id, keys)| {
                    *id == p.id
                        && p.resources
                            .iter()
                            .any(|e| matches!(e, Entry::Nested(outer, _) if keys.contains(outer)))
                })
            });
            nested += usize::from(through_nested);
        }
    }
    let stats = format!(
        "of {total}: allowed {allowed} (via nested {nested}), denied {denied}, \
         no allow {nothing}, unusable {unusable}"
    );
    eprintln!("{stats}");
    for count in [allowed, denied, nothing, unusable] {
        assert!(count * 20 >= total, "an outcome is rarer than 5%: {stats}");
    }
    assert!(
        nested * 100 >= total,
        "nested matches are rarer than 1%: {stats}"
    );
}
