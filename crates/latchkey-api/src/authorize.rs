//! latchkey's own extension: asking whether a token may do something.

use serde::{Deserialize, Serialize};

/// Body of `POST /latchkey/v1/authorize`; the token to check is the bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizeRequest {
    /// Permission group id or exact name, e.g. "DNS Read" or an operator-defined group.
    pub permission_group: String,
    /// The resource acted on, e.g. `com.cloudflare.api.account.zone.<id>`.
    pub resource: String,
    /// Enclosing resources, nearest first (a zone's account), so nested policies can match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<String>,
    /// Also return the deciding policy and the resource key that matched.
    #[serde(default)]
    pub explain: bool,
}

/// Result of `POST /latchkey/v1/authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizeResult {
    /// The decision.
    pub allowed: bool,
    /// Why, as a sentence (e.g. "no allow matched", "the token has expired").
    pub reason: String,
    /// With `explain`: the deciding policy of the token, absent for an implicit deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
    /// With `explain`: the policy's resource key that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_resource: Option<String>,
}
