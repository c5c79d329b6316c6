//! Permission-group catalogue items (spec §3.4).

use serde::{Deserialize, Serialize};

/// One item of `GET .../tokens/permission_groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
