//! Tokens on the wire: responses, create and update bodies, verify and delete results.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timestamp;

// docs/cloudflare-tokens.md §3.1 (a plain comment: doc comments become the served schema's text).
/// A token's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Usable.
    Active,
    /// Refused everywhere until set active again.
    Disabled,
    /// Past `expires_on` (or expired by a client).
    Expired,
}

/// A token as the API returns it. `value` is present only in the create response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "ed17574386854bf78a67040be0a770b0",
    "name": "readonly token",
    "status": "active",
    "issued_on": "2026-01-01T00:00:00Z",
    "modified_on": "2026-01-01T00:00:00Z",
    "last_used_on": "2026-01-02T08:30:00Z",
    "expires_on": "2030-01-01T00:00:00Z",
    "policies": [{
        "id": "f267e341f3dd4697bd3b9f71dd96247f",
        "effect": "allow",
        "permission_groups": [{"id": "c8fed203ed3043cba015a93ad1616f1f", "name": "Zone Read"}],
        "resources": {"com.cloudflare.api.account.zone.*": "*"}
    }],
    "condition": {"request_ip": {"in": ["192.0.2.0/24"], "not_in": ["192.0.2.1/32"]}}
})))]
pub struct Token {
    /// 32 lowercase hex.
    pub id: String,
    /// Up to 120 characters.
    pub name: String,
    /// Current status.
    pub status: TokenStatus,
    /// Creation time.
    #[serde(with = "timestamp")]
    pub issued_on: OffsetDateTime,
    /// Last replacement time.
    #[serde(with = "timestamp")]
    pub modified_on: OffsetDateTime,
    /// Last time it authenticated a request, if ever.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_used_on: Option<OffsetDateTime>,
    /// Not usable before.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_on: Option<OffsetDateTime>,
    /// Policies.
    pub policies: Vec<Policy>,
    /// Client-address condition, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// latchkey's: where and when the token's secret was reported leaked. An exposed token
    /// is disabled until it is rolled; the roll clears this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure: Option<Exposure>,
    /// The secret: only in the answer to create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<SecretValue>,
}

/// Where and when a token's secret was reported leaked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Exposure {
    /// When latchkey received the report.
    #[serde(with = "timestamp")]
    pub reported_on: OffsetDateTime,
    /// Where it was found, as the reporter says (GitHub's `source`, e.g. `content`).
    pub source: String,
    /// A link to where it was found, as the reporter gives it (may be empty).
    pub url: String,
    /// `github` (GitHub's secret scanning) or `report` (`POST /latchkey/v1/leaks`).
    pub reporter: String,
}

/// A token secret on the wire (in the answers to create and roll). It serializes as the
/// plain string; its `Debug` output shows only the prefix, so that logging or printing an
/// answer never shows the secret. Read it with [`SecretValue::expose`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
#[cfg_attr(
    feature = "openapi",
    schema(example = "cfut_Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA")
)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretValue(secret.into())
    }

    /// The secret in clear.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefix = self.0.get(..5).filter(|p| p.ends_with('_')).unwrap_or("");
        write!(f, "SecretValue({prefix}[REDACTED])")
    }
}

impl From<SecretValue> for String {
    fn from(secret: SecretValue) -> String {
        secret.0
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Grant.
    Allow,
    /// Refuse; wins over allow.
    Deny,
}

/// A policy, in requests (where `id` is ignored) and responses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Policy {
    /// Assigned by the server; ignored when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(read_only, required = true))]
    pub id: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Permission groups, by id.
    pub permission_groups: Vec<GroupRef>,
    /// Resource key -> `"*"`, or -> `{resource key -> "*"}` (the nested form).
    pub resources: IndexMap<String, ResourceValue>,
}

/// A permission group named in a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupRef {
    /// The group's id.
    pub id: String,
    /// Its name, filled in by the server; ignored when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(read_only))]
    pub name: Option<String>,
    /// Opaque metadata, returned as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<GroupMeta>,
}

/// `{key, value}` metadata of a policy's permission group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GroupMeta {
    /// Optional key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Optional value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The value of a resource key: `"*"` or a nested map of resource keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum ResourceValue {
    /// `"*"` in every documented case.
    Scalar(String),
    /// `{"com.cloudflare.api.account.zone.*": "*"}` inside an account key.
    Nested(IndexMap<String, String>),
}

/// `condition` of a token. `request.ip` is accepted as an alias of `request_ip` on input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Condition {
    /// Client-address ranges.
    #[serde(default, alias = "request.ip", skip_serializing_if = "Option::is_none")]
    pub request_ip: Option<IpRanges>,
}

/// CIDR lists of a client-address condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IpRanges {
    /// Only these ranges (when non-empty).
    #[serde(rename = "in", default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Never these ranges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in: Vec<String>,
}

/// Body of `POST .../tokens`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "name": "readonly token",
    "policies": [{
        "effect": "allow",
        "permission_groups": [{"id": "c8fed203ed3043cba015a93ad1616f1f"}],
        "resources": {"com.cloudflare.api.account.zone.*": "*"}
    }],
    "expires_on": "2030-01-01T00:00:00Z",
    "condition": {"request_ip": {"in": ["192.0.2.0/24"], "not_in": ["192.0.2.1/32"]}}
})))]
pub struct CreateTokenRequest {
    /// Up to 120 characters.
    pub name: String,
    /// At least one policy.
    pub policies: Vec<Policy>,
    /// Not usable before.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_on: Option<OffsetDateTime>,
    /// Client-address condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// Body of `PUT .../tokens/{id}`: a full replacement. Read-only fields sent back
/// (`id`, `issued_on`, `modified_on`, `last_used_on`, `value`) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateTokenRequest {
    /// Up to 120 characters.
    pub name: String,
    /// At least one policy.
    pub policies: Vec<Policy>,
    /// New status; the current one is kept when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenStatus>,
    /// Not usable before (absent: none).
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after (absent: never expires).
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_on: Option<OffsetDateTime>,
    /// Client-address condition (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// Result of `GET .../tokens/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"id": "ed17574386854bf78a67040be0a770b0", "status": "active", "expires_on": "2030-01-01T00:00:00Z"})))]
pub struct VerifiedToken {
    /// The presented token's id.
    pub id: String,
    /// Always `active` in a successful answer.
    pub status: TokenStatus,
    /// Not usable before.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<OffsetDateTime>,
    /// Not usable at or after.
    #[serde(
        default,
        with = "timestamp::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_on: Option<OffsetDateTime>,
}

/// Result of `DELETE .../tokens/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeletedToken {
    /// The deleted token's id.
    pub id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_create_example_with_either_condition_key() {
        for key in ["request_ip", "request.ip"] {
            let body = format!(
                r#"{{"name":"readonly token",
                "policies":[{{"id":"ignored","effect":"allow",
                  "resources":{{"com.cloudflare.api.account.zone.eb78d65290b24279ba6f44721b3ea3c4":"*",
                               "com.cloudflare.api.account.1":{{"com.cloudflare.api.account.zone.*":"*"}}}},
                  "permission_groups":[{{"id":"c8fed203ed3043cba015a93ad1616f1f","name":"Zone Read"}}]}}],
                "not_before":"2020-04-01T05:20:00Z","expires_on":"2020-04-10T00:00:00+02:00",
                "condition":{{"{key}":{{"in":["199.27.128.0/21"],"not_in":["199.27.128.1/32"]}}}}}}"#
            );
            let req: CreateTokenRequest = serde_json::from_str(&body).unwrap();
            assert_eq!(req.policies[0].resources.len(), 2);
            assert!(matches!(
                req.policies[0].resources[1],
                ResourceValue::Nested(_)
            ));
            let ranges = req.condition.unwrap().request_ip.unwrap();
            assert_eq!(ranges.allow, ["199.27.128.0/21"]);
            assert_eq!(
                crate::timestamp::format(req.expires_on.unwrap()),
                "2020-04-09T22:00:00Z"
            );
        }
    }
}
