//! Permission-group catalogue items (docs/cloudflare-tokens.md §3.4).

use serde::{Deserialize, Serialize};

/// One item of `GET .../tokens/permission_groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({"id": "c8fed203ed3043cba015a93ad1616f1f", "name": "Zone Read", "scopes": ["com.cloudflare.api.account.zone"], "category": "dns_and_zones", "description": "See zones and their settings."})))]
pub struct PermissionGroup {
    /// Public id.
    pub id: String,
    /// Display name, e.g. "DNS Read".
    pub name: String,
    /// Resource kinds it applies to, e.g. `com.cloudflare.api.account.zone`.
    pub scopes: Vec<String>,
    /// Category, e.g. `dns_and_zones`.
    #[serde(default)]
    pub category: String,
    /// What it grants.
    #[serde(default)]
    pub description: String,
}
