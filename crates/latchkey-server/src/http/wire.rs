//! Between wire types (latchkey-api) and the domain (latchkey-core): validation of client
//! input, with the field at fault named in every error, and rendering of tokens.

use ipnet::IpNet;
use latchkey_api as api;
use latchkey_core::policy::GroupMeta;
use latchkey_core::{
    Catalogue, Condition, Effect, GrantedGroup, Id, IpCondition, Policy, ResourceKey, ResourceKind,
    ResourceValue, Resources, Status, Token,
};
use time::OffsetDateTime;

use crate::http::codes;
use crate::http::error::{pointer_segment, ApiError};

/// Longest accepted token name, in characters.
pub const MAX_NAME_CHARS: usize = 120;

/// How large a token may be. Each limit is enforced with a 400 (code 1017) naming the
/// field; together they keep the largest token latchkey accepts near 32 KiB, and so a full
/// page of 50 near 2 MiB (docs/security.md, "What the largest token costs").
pub mod limits {
    /// Policies per token.
    pub const POLICIES: usize = 32;
    /// Permission groups per policy.
    pub const GROUPS_PER_POLICY: usize = 32;
    /// Resource keys per policy, nested inner keys included.
    pub const RESOURCES_PER_POLICY: usize = 64;
    /// Ranges in each of `condition.request_ip.in` and `not_in`.
    pub const RANGES: usize = 64;
    /// Bytes of a permission group's `meta.key` and of its `meta.value`.
    pub const META_BYTES: usize = 256;
    /// Bytes of a token's policies and condition as latchkey stores them (JSON).
    pub const TOKEN_BYTES: usize = 32 * 1024;
}

/// 400 1017: `what` at `pointer` holds `got`, over `max`.
fn over_limit(what: &str, got: usize, max: usize, pointer: impl Into<String>) -> ApiError {
    ApiError::invalid(
        codes::OVER_LIMIT,
        format!("{what}: at most {max} (got {got})"),
        pointer,
    )
}

/// The validated, domain form of a create or update body.
#[derive(Debug, Clone)]
pub struct TokenFields {
    /// Token name.
    pub name: String,
    /// Policies with fresh ids.
    pub policies: Vec<Policy>,
    /// Not usable before.
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after.
    pub expires_on: Option<OffsetDateTime>,
    /// Address condition.
    pub condition: Condition,
}

/// The fields create and update bodies share, borrowed from either.
#[derive(Debug, Clone, Copy)]
pub struct TokenBody<'a> {
    /// `name`
    pub name: &'a str,
    /// `policies`
    pub policies: &'a [api::Policy],
    /// `not_before`
    pub not_before: Option<OffsetDateTime>,
    /// `expires_on`
    pub expires_on: Option<OffsetDateTime>,
    /// `condition`
    pub condition: Option<&'a api::Condition>,
}

impl<'a> From<&'a api::CreateTokenRequest> for TokenBody<'a> {
    fn from(body: &'a api::CreateTokenRequest) -> Self {
        TokenBody {
            name: &body.name,
            policies: &body.policies,
            not_before: body.not_before,
            expires_on: body.expires_on,
            condition: body.condition.as_ref(),
        }
    }
}

impl<'a> From<&'a api::UpdateTokenRequest> for TokenBody<'a> {
    fn from(body: &'a api::UpdateTokenRequest) -> Self {
        TokenBody {
            name: &body.name,
            policies: &body.policies,
            not_before: body.not_before,
            expires_on: body.expires_on,
            condition: body.condition.as_ref(),
        }
    }
}

/// Validates the fields common to create and update.
pub fn token_fields(catalogue: &Catalogue, body: TokenBody<'_>) -> Result<TokenFields, ApiError> {
    let TokenBody {
        name,
        policies,
        not_before,
        expires_on,
        condition,
    } = body;
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > MAX_NAME_CHARS {
        return Err(ApiError::invalid(
            codes::INVALID_NAME,
            format!("name must be 1 to {MAX_NAME_CHARS} characters (got {chars})"),
            "/name",
        ));
    }
    if let Some(at) = name.chars().position(latchkey_core::token::unprintable) {
        return Err(ApiError::invalid(
            codes::INVALID_NAME,
            format!(
                "name may not hold control characters or bidirectional overrides (character {})",
                at + 1
            ),
            "/name",
        ));
    }
    if policies.len() > limits::POLICIES {
        return Err(over_limit(
            "policies",
            policies.len(),
            limits::POLICIES,
            "/policies",
        ));
    }
    if let (Some(nb), Some(exp)) = (not_before, expires_on) {
        if exp <= nb {
            return Err(ApiError::invalid(
                codes::INVALID_TIMESTAMP,
                "expires_on must be later than not_before",
                "/expires_on",
            ));
        }
    }
    if policies.is_empty() {
        return Err(ApiError::invalid(
            codes::INVALID_FIELD,
            "policies must hold at least one policy",
            "/policies",
        ));
    }
    let policies: Vec<Policy> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| policy(catalogue, p, &format!("/policies/{i}")))
        .collect::<Result<_, _>>()?;
    let condition = condition
        .map(self::condition)
        .transpose()?
        .unwrap_or_default();
    let bytes = serde_json::to_vec(&policies).map_or(0, |v| v.len())
        + serde_json::to_vec(&condition).map_or(0, |v| v.len());
    if bytes > limits::TOKEN_BYTES {
        return Err(over_limit(
            "bytes of policies and condition",
            bytes,
            limits::TOKEN_BYTES,
            "/policies",
        ));
    }
    Ok(TokenFields {
        name: name.to_owned(),
        policies,
        not_before,
        expires_on,
        condition,
    })
}

fn policy(catalogue: &Catalogue, wire: &api::Policy, at: &str) -> Result<Policy, ApiError> {
    if wire.permission_groups.is_empty() {
        return Err(ApiError::invalid(
            codes::INVALID_FIELD,
            "a policy needs at least one permission group",
            format!("{at}/permission_groups"),
        ));
    }
    if wire.permission_groups.len() > limits::GROUPS_PER_POLICY {
        return Err(over_limit(
            "permission groups in a policy",
            wire.permission_groups.len(),
            limits::GROUPS_PER_POLICY,
            format!("{at}/permission_groups"),
        ));
    }
    let resource_keys: usize = wire
        .resources
        .values()
        .map(|value| match value {
            api::ResourceValue::Scalar(_) => 1,
            api::ResourceValue::Nested(inner) => 1 + inner.len(),
        })
        .sum();
    if resource_keys > limits::RESOURCES_PER_POLICY {
        return Err(over_limit(
            "resource keys in a policy",
            resource_keys,
            limits::RESOURCES_PER_POLICY,
            format!("{at}/resources"),
        ));
    }
    let mut permission_groups = Vec::with_capacity(wire.permission_groups.len());
    for (j, group) in wire.permission_groups.iter().enumerate() {
        if let Some(meta) = &group.meta {
            for (field, text) in [("key", &meta.key), ("value", &meta.value)] {
                let Some(text) = text else { continue };
                if text.len() > limits::META_BYTES {
                    return Err(over_limit(
                        &format!("bytes of meta.{field}"),
                        text.len(),
                        limits::META_BYTES,
                        format!("{at}/permission_groups/{j}/meta/{field}"),
                    ));
                }
            }
        }
        let pointer = format!("{at}/permission_groups/{j}/id");
        let id: Id = group.id.parse().map_err(|_| {
            ApiError::invalid(
                codes::UNKNOWN_PERMISSION_GROUP,
                format!(
                    "Permission group id {:?} is not 32 lowercase hex characters",
                    group.id
                ),
                pointer.clone(),
            )
        })?;
        if catalogue.get(&id).is_none() {
            return Err(ApiError::invalid(
                codes::UNKNOWN_PERMISSION_GROUP,
                format!("Unknown permission group {id}"),
                pointer,
            ));
        }
        permission_groups.push(GrantedGroup {
            id,
            meta: group.meta.as_ref().map(|m| GroupMeta {
                key: m.key.clone(),
                value: m.value.clone(),
            }),
        });
    }
    if wire.resources.is_empty() {
        return Err(ApiError::invalid(
            codes::INVALID_RESOURCE,
            "a policy needs at least one resource",
            format!("{at}/resources"),
        ));
    }
    let mut resources = Vec::with_capacity(wire.resources.len());
    for (key_text, value) in &wire.resources {
        let pointer = format!("{at}/resources/{}", pointer_segment(key_text));
        let key = resource_key(key_text, &pointer)?;
        let value = match value {
            api::ResourceValue::Scalar(star) => {
                require_star(star, &pointer)?;
                ResourceValue::All
            }
            api::ResourceValue::Nested(inner) => {
                if key.kind != ResourceKind::Account {
                    return Err(ApiError::invalid(
                        codes::INVALID_RESOURCE,
                        "only an account key can hold nested resources",
                        pointer,
                    ));
                }
                let mut keys = Vec::with_capacity(inner.len());
                for (inner_text, star) in inner {
                    let pointer = format!("{pointer}/{}", pointer_segment(inner_text));
                    let inner_key = resource_key(inner_text, &pointer)?;
                    if !inner_key.kind.nests_in_account() {
                        return Err(ApiError::invalid(
                            codes::INVALID_RESOURCE,
                            "only zone and R2 bucket keys can be nested in an account",
                            pointer,
                        ));
                    }
                    require_star(star, &pointer)?;
                    keys.push(inner_key);
                }
                if keys.is_empty() {
                    return Err(ApiError::invalid(
                        codes::INVALID_RESOURCE,
                        "a nested resource map cannot be empty",
                        pointer,
                    ));
                }
                ResourceValue::Nested(keys)
            }
        };
        resources.push((key, value));
    }
    let policy = Policy {
        id: Id::random(),
        effect: match wire.effect {
            api::Effect::Allow => Effect::Allow,
            api::Effect::Deny => Effect::Deny,
        },
        permission_groups,
        resources: Resources(resources),
    };
    policy.check_scopes(catalogue).map_err(|mismatch| {
        let group = &policy.permission_groups[mismatch.group_index];
        let name = catalogue
            .get(&group.id)
            .map(|g| g.name.as_str())
            .unwrap_or_default();
        ApiError::invalid(
            codes::SCOPE_MISMATCH,
            format!("Permission group {name:?} does not apply to any resource of this policy"),
            format!("{at}/permission_groups/{}", mismatch.group_index),
        )
    })?;
    Ok(policy)
}

fn resource_key(text: &str, pointer: &str) -> Result<ResourceKey, ApiError> {
    text.parse().map_err(|e| {
        ApiError::invalid(
            codes::INVALID_RESOURCE,
            format!("Invalid resource key {text:?}: {e}"),
            pointer,
        )
    })
}

fn require_star(value: &str, pointer: &str) -> Result<(), ApiError> {
    if value == "*" {
        Ok(())
    } else {
        Err(ApiError::invalid(
            codes::INVALID_RESOURCE,
            format!("A resource value must be \"*\" (got {value:?})"),
            pointer,
        ))
    }
}

fn condition(wire: &api::Condition) -> Result<Condition, ApiError> {
    let Some(ranges) = &wire.request_ip else {
        return Ok(Condition::default());
    };
    let parse = |list: &[String], name: &str| {
        if list.len() > limits::RANGES {
            return Err(over_limit(
                "address ranges",
                list.len(),
                limits::RANGES,
                format!("/condition/request_ip/{name}"),
            ));
        }
        list.iter()
            .enumerate()
            .map(|(k, text)| {
                text.parse::<IpNet>().map(ipv4_form).map_err(|_| {
                    ApiError::invalid(
                        codes::INVALID_CIDR,
                        format!("{text:?} is not a CIDR such as 192.0.2.0/24 or 2001:db8::/32"),
                        format!("/condition/request_ip/{name}/{k}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Condition {
        request_ip: Some(IpCondition {
            allow: parse(&ranges.allow, "in")?,
            not_in: parse(&ranges.not_in, "not_in")?,
        }),
    })
}

/// An IPv4-mapped IPv6 range (`::ffff:10.0.0.0/104`) as the IPv4 range it means
/// (`10.0.0.0/8`): clients are judged by their IPv4 form, so the mapped spelling would
/// otherwise never match anyone.
fn ipv4_form(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
}

/// The wire status of a domain status.
pub fn status(status: Status) -> api::TokenStatus {
    match status {
        Status::Active => api::TokenStatus::Active,
        Status::Disabled => api::TokenStatus::Disabled,
        Status::Expired => api::TokenStatus::Expired,
    }
}

/// The domain status of a wire status.
pub fn status_from_wire(status: api::TokenStatus) -> Status {
    match status {
        api::TokenStatus::Active => Status::Active,
        api::TokenStatus::Disabled => Status::Disabled,
        api::TokenStatus::Expired => Status::Expired,
    }
}

/// Renders a token for a response (never with its secret; create adds `value` itself).
pub fn token(
    catalogue: &Catalogue,
    token: &Token,
    now: OffsetDateTime,
    pending_use: Option<OffsetDateTime>,
) -> api::Token {
    api::Token {
        id: token.id.to_string(),
        name: token.name.clone(),
        status: status(token.status_at(now)),
        issued_on: token.issued_on,
        modified_on: token.modified_on,
        last_used_on: token.last_used_on.max(pending_use),
        not_before: token.not_before,
        expires_on: token.expires_on,
        policies: token
            .policies
            .iter()
            .map(|p| policy_to_wire(catalogue, p))
            .collect(),
        condition: token.condition.request_ip.as_ref().map(|c| api::Condition {
            request_ip: Some(api::IpRanges {
                allow: c.allow.iter().map(ToString::to_string).collect(),
                not_in: c.not_in.iter().map(ToString::to_string).collect(),
            }),
        }),
        exposure: token.exposure.as_ref().map(exposure),
        value: None,
    }
}

/// An exposure on the wire.
pub fn exposure(exposure: &latchkey_core::Exposure) -> api::Exposure {
    api::Exposure {
        reported_on: exposure.reported_on,
        source: exposure.source.clone(),
        url: exposure.url.clone(),
        reporter: match exposure.reporter {
            latchkey_core::Reporter::Github => "github",
            latchkey_core::Reporter::Report => "report",
        }
        .to_owned(),
    }
}

fn policy_to_wire(catalogue: &Catalogue, policy: &Policy) -> api::Policy {
    api::Policy {
        id: Some(policy.id.to_string()),
        effect: match policy.effect {
            Effect::Allow => api::Effect::Allow,
            Effect::Deny => api::Effect::Deny,
        },
        permission_groups: policy
            .permission_groups
            .iter()
            .map(|g| api::GroupRef {
                id: g.id.to_string(),
                name: catalogue.get(&g.id).map(|group| group.name.clone()),
                meta: g.meta.as_ref().map(|m| api::GroupMeta {
                    key: m.key.clone(),
                    value: m.value.clone(),
                }),
            })
            .collect(),
        resources: policy
            .resources
            .0
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    ResourceValue::All => api::ResourceValue::Scalar("*".into()),
                    ResourceValue::Nested(inner) => api::ResourceValue::Nested(
                        inner
                            .iter()
                            .map(|k| (k.to_string(), "*".to_owned()))
                            .collect(),
                    ),
                };
                (key.to_string(), value)
            })
            .collect(),
    }
}

/// Renders a catalogue entry.
pub fn permission_group(group: &latchkey_core::PermissionGroup) -> api::PermissionGroup {
    api::PermissionGroup {
        id: group.id.to_string(),
        name: group.name.clone(),
        scopes: group.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        category: group.category.clone(),
        description: group.description.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_mapped_ranges_become_ipv4_ranges() {
        let form = |text: &str| ipv4_form(text.parse().unwrap()).to_string();
        assert_eq!(form("::ffff:10.0.0.1/128"), "10.0.0.1/32");
        assert_eq!(form("::ffff:10.0.0.0/104"), "10.0.0.0/8");
        assert_eq!(form("::ffff:0.0.0.0/96"), "0.0.0.0/0");
        assert_eq!(form("2001:db8::/32"), "2001:db8::/32");
        assert_eq!(form("::/0"), "::/0");
        assert_eq!(form("10.0.0.0/8"), "10.0.0.0/8");
    }
}
