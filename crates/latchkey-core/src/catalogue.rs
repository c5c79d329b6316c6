//! Permission groups: the built-in catalogue with Cloudflare's public ids (docs/cloudflare-tokens.md §6).
//!
//! A group grants a set of permissions on resources of the kinds in its `scopes`. The four
//! token-management groups grant the operations of the token API itself; every other group
//! grants the permission named by its own id, so that a caller can ask "does this token hold
//! group X on resource Y?".

use std::collections::HashMap;

use crate::id::Id;
use crate::resource::ResourceKind;

/// A permission-group scope is the kind of resource the group applies to.
pub type Scope = ResourceKind;

/// Permissions of the token API, as Cloudflare names them in `x-cfPermissionsRequired`.
pub mod permissions {
    /// List user tokens.
    pub const USER_TOKEN_LIST: &str = "com.cloudflare.api.token.list";
    /// Read one user token or the permission-group catalogue.
    pub const USER_TOKEN_READ: &str = "com.cloudflare.api.token.read";
    /// Create user tokens.
    pub const USER_TOKEN_CREATE: &str = "com.cloudflare.api.token.create";
    /// Update or roll user tokens.
    pub const USER_TOKEN_UPDATE: &str = "com.cloudflare.api.token.update";
    /// Delete user tokens.
    pub const USER_TOKEN_DELETE: &str = "com.cloudflare.api.token.delete";
    /// List account tokens.
    pub const ACCOUNT_TOKEN_LIST: &str = "com.cloudflare.api.account.token.list";
    /// Read one account token or the permission-group catalogue.
    pub const ACCOUNT_TOKEN_READ: &str = "com.cloudflare.api.account.token.read";
    /// Create account tokens.
    pub const ACCOUNT_TOKEN_CREATE: &str = "com.cloudflare.api.account.token.create";
    /// Update or roll account tokens.
    pub const ACCOUNT_TOKEN_UPDATE: &str = "com.cloudflare.api.account.token.update";
    /// Delete account tokens.
    pub const ACCOUNT_TOKEN_DELETE: &str = "com.cloudflare.api.account.token.delete";
}

use permissions::*;

/// Id of "API Tokens Read" (user scope).
pub const API_TOKENS_READ: &str = "0cc3a61731504c89b99ec1be78b77aa0";
/// Id of "API Tokens Write" (user scope).
pub const API_TOKENS_WRITE: &str = "686d18d5ac6c441c867cbf6771e58a0a";
/// Id of "Account API Tokens Read" (account scope).
pub const ACCOUNT_API_TOKENS_READ: &str = "eb56a6953c034b9d97dd838155666f06";
/// Id of "Account API Tokens Write" (account scope).
pub const ACCOUNT_API_TOKENS_WRITE: &str = "5bc3f8b21c554832afc660159ab75fa4";

/// One permission group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionGroup {
    /// Public id (32 lowercase hex).
    pub id: Id,
    /// Display name, e.g. "DNS Read".
    pub name: String,
    /// The resource kinds the group applies to.
    pub scopes: Vec<Scope>,
    /// One of Cloudflare's category names, e.g. `dns_and_zones`.
    pub category: String,
    /// A sentence saying what the group grants.
    pub description: String,
    /// The permissions it grants besides its own id.
    pub permissions: Vec<&'static str>,
    id_text: String,
}

impl PermissionGroup {
    /// A group that grants only its own id (plus `permissions`).
    pub fn new(
        id: Id,
        name: impl Into<String>,
        scopes: Vec<Scope>,
        category: impl Into<String>,
        description: impl Into<String>,
        permissions: Vec<&'static str>,
    ) -> Self {
        PermissionGroup {
            id_text: id.to_string(),
            id,
            name: name.into(),
            scopes,
            category: category.into(),
            description: description.into(),
            permissions,
        }
    }

    /// Whether holding this group grants `permission`.
    pub fn grants(&self, permission: &str) -> bool {
        self.id_text == permission || self.permissions.contains(&permission)
    }

    /// Whether the group applies to resources of `kind`.
    pub fn applies_to(&self, kind: ResourceKind) -> bool {
        self.scopes.contains(&kind)
    }
}

/// An operator-defined group that cannot join the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("permission group #{} (counting from 1): {problem}", index + 1)]
pub struct CatalogueError {
    /// Index of the offending group among those added.
    pub index: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// The set of known permission groups, looked up by id or name.
#[derive(Debug, Clone)]
pub struct Catalogue {
    groups: Vec<PermissionGroup>,
    by_id: HashMap<Id, usize>,
    /// Authorize questions name groups by name: a lookup per request.
    by_name: HashMap<String, usize>,
}

impl Catalogue {
    /// Cloudflare's public permission groups known to latchkey (docs/cloudflare-tokens.md §6).
    pub fn builtin() -> Self {
        let groups = BUILTIN
            .iter()
            .map(|&(id, name, scope, category)| {
                let id: Id = id.parse().expect("built-in ids are valid");
                PermissionGroup::new(
                    id,
                    name,
                    vec![scope],
                    category,
                    describe(name),
                    token_permissions(&id.to_string()),
                )
            })
            .collect();
        Catalogue::from_groups(groups)
    }

    /// A catalogue of exactly these groups (later ones with a duplicate id are ignored).
    pub fn from_groups(groups: Vec<PermissionGroup>) -> Self {
        let mut by_id = HashMap::with_capacity(groups.len());
        let mut by_name = HashMap::with_capacity(groups.len());
        for (index, group) in groups.iter().enumerate() {
            by_id.entry(group.id).or_insert(index);
            by_name.entry(group.name.clone()).or_insert(index);
        }
        Catalogue {
            groups,
            by_id,
            by_name,
        }
    }

    /// Adds operator-defined groups. Ids and names must be new (to the catalogue and among
    /// themselves), names non-empty, and every group needs at least one scope.
    pub fn extend(self, extra: Vec<PermissionGroup>) -> Result<Self, CatalogueError> {
        let mut groups = self.groups;
        for (index, group) in extra.into_iter().enumerate() {
            if group.name.trim().is_empty() {
                return Err(CatalogueError {
                    index,
                    problem: "name is empty".into(),
                });
            }
            if group.scopes.is_empty() {
                return Err(CatalogueError {
                    index,
                    problem: "scopes is empty".into(),
                });
            }
            if let Some(taken) = groups.iter().find(|g| g.id == group.id) {
                return Err(CatalogueError {
                    index,
                    problem: format!("id {} is already used by {:?}", group.id, taken.name),
                });
            }
            if groups.iter().any(|g| g.name == group.name) {
                return Err(CatalogueError {
                    index,
                    problem: format!("name {:?} is already used", group.name),
                });
            }
            groups.push(group);
        }
        Ok(Catalogue::from_groups(groups))
    }

    /// The group with this id (32 lowercase hex) or, failing that, this exact name.
    pub fn find(&self, id_or_name: &str) -> Option<&PermissionGroup> {
        id_or_name
            .parse::<Id>()
            .ok()
            .and_then(|id| self.get(&id))
            .or_else(|| {
                self.by_name
                    .get(id_or_name)
                    .map(|&index| &self.groups[index])
            })
    }

    /// The group with this id.
    pub fn get(&self, id: &Id) -> Option<&PermissionGroup> {
        self.by_id.get(id).map(|&i| &self.groups[i])
    }

    /// Every group, in catalogue order.
    pub fn groups(&self) -> &[PermissionGroup] {
        &self.groups
    }
}

fn token_permissions(id: &str) -> Vec<&'static str> {
    match id {
        API_TOKENS_READ => vec![USER_TOKEN_LIST, USER_TOKEN_READ],
        API_TOKENS_WRITE => vec![
            USER_TOKEN_LIST,
            USER_TOKEN_READ,
            USER_TOKEN_CREATE,
            USER_TOKEN_UPDATE,
            USER_TOKEN_DELETE,
        ],
        ACCOUNT_API_TOKENS_READ => vec![ACCOUNT_TOKEN_LIST, ACCOUNT_TOKEN_READ],
        ACCOUNT_API_TOKENS_WRITE => vec![
            ACCOUNT_TOKEN_LIST,
            ACCOUNT_TOKEN_READ,
            ACCOUNT_TOKEN_CREATE,
            ACCOUNT_TOKEN_UPDATE,
            ACCOUNT_TOKEN_DELETE,
        ],
        _ => Vec::new(),
    }
}

fn describe(name: &str) -> String {
    if let Some(subject) = name.strip_suffix(" Read") {
        format!("Grants read access to {subject}")
    } else if let Some(subject) = name.strip_suffix(" Write") {
        format!("Grants read and write access to {subject}")
    } else {
        format!("Grants access to {name}")
    }
}

/// (id, name, scope, category) for every built-in group.
const BUILTIN: &[(&str, &str, ResourceKind, &str)] = &[
    (
        "0cc3a61731504c89b99ec1be78b77aa0",
        "API Tokens Read",
        ResourceKind::User,
        "account_and_billing",
    ),
    (
        "686d18d5ac6c441c867cbf6771e58a0a",
        "API Tokens Write",
        ResourceKind::User,
        "account_and_billing",
    ),
    (
        "3518d0f75557482e952c6762d3e64903",
        "Memberships Read",
        ResourceKind::User,
        "account_and_billing",
    ),
    (
        "9201bc6f42d440968aaab0c6f17ebb1d",
        "Memberships Write",
        ResourceKind::User,
        "account_and_billing",
    ),
    (
        "8acbe5bb0d54464ab867149d7f7cf8ac",
        "User Details Read",
        ResourceKind::User,
        "account_and_billing",
    ),
    (
        "55a5e17cc99e4a3fa1f3432d262f2e55",
        "User Details Write",
        ResourceKind::User,
        "account_and_billing",
    ),
    (
        "eb56a6953c034b9d97dd838155666f06",
        "Account API Tokens Read",
        ResourceKind::Account,
        "account_and_billing",
    ),
    (
        "5bc3f8b21c554832afc660159ab75fa4",
        "Account API Tokens Write",
        ResourceKind::Account,
        "account_and_billing",
    ),
    (
        "26bc23f853634eb4bff59983b9064fde",
        "Access: Organizations, Identity Providers, and Groups Read",
        ResourceKind::Account,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "bfe0d8686a584fa680f4c53b5eb0de6d",
        "Access: Organizations, Identity Providers, and Groups Write",
        ResourceKind::Account,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "de7a688cc47d43bd9ea700b467a09c96",
        "Account Firewall Access Rules Read",
        ResourceKind::Account,
        "app_security",
    ),
    (
        "a416acf9ef5a4af19fb11ed3b96b1fe6",
        "Account Firewall Access Rules Write",
        ResourceKind::Account,
        "app_security",
    ),
    (
        "c1fde68c7bcc44588cbb6ddbc16d6480",
        "Account Settings Read",
        ResourceKind::Account,
        "account_and_billing",
    ),
    (
        "1af1fa2adc104452b74a9a3364202f20",
        "Account Settings Write",
        ResourceKind::Account,
        "account_and_billing",
    ),
    (
        "7cf72faf220841aabcfdfab81c43c4f6",
        "Billing Read",
        ResourceKind::Account,
        "account_and_billing",
    ),
    (
        "6c80e02421494afc9ae14414ed442632",
        "Billing Write",
        ResourceKind::Account,
        "account_and_billing",
    ),
    (
        "5f48a472240a4b489a21d43bd19a06e1",
        "DNS Firewall Read",
        ResourceKind::Account,
        "app_security",
    ),
    (
        "da6d2d6f2ec8442eaadda60d13f42bca",
        "DNS Firewall Write",
        ResourceKind::Account,
        "app_security",
    ),
    (
        "e763fae6ee95443b8f56f19213c5f2a5",
        "IP Prefixes: BGP On Demand Read",
        ResourceKind::Account,
        "network_services",
    ),
    (
        "2ae23e4939d54074b7d252d27ce75a77",
        "IP Prefixes: BGP On Demand Write",
        ResourceKind::Account,
        "network_services",
    ),
    (
        "9d24387c6e8544e2bc4024a03991339f",
        "Load Balancing: Monitors and Pools Read",
        ResourceKind::Account,
        "network_services",
    ),
    (
        "d2a1802cc9a34e30852f8b33869b2f3c",
        "Load Balancing: Monitors and Pools Write",
        ResourceKind::Account,
        "network_services",
    ),
    (
        "de21485a24744b76a004aa153898f7fe",
        "Stream Read",
        ResourceKind::Account,
        "media",
    ),
    (
        "714f9c13a5684c2885a793f5edb36f59",
        "Stream Write",
        ResourceKind::Account,
        "media",
    ),
    (
        "3f376c8e6f764a938b848bd01c8995c4",
        "Teams Read",
        ResourceKind::Account,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "efb81b5cd37d49f3be1da9363a6d7a19",
        "Teams Report",
        ResourceKind::Account,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "b33f02c6f7284e05a6f20741c0bb0567",
        "Teams Write",
        ResourceKind::Account,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "8b47d2786a534c08a1f94ee8f9f599ef",
        "Workers KV Storage Read",
        ResourceKind::Account,
        "developer_platform",
    ),
    (
        "f7f0eda5697f475c90846e879bab8666",
        "Workers KV Storage Write",
        ResourceKind::Account,
        "developer_platform",
    ),
    (
        "1a71c399035b4950a1bd1466bbe4f420",
        "Workers Scripts Read",
        ResourceKind::Account,
        "developer_platform",
    ),
    (
        "e086da7e2179491d91ee5f35b3ca210a",
        "Workers Scripts Write",
        ResourceKind::Account,
        "developer_platform",
    ),
    (
        "b4992e1108244f5d8bfbd5744320c2e1",
        "Workers R2 Storage Read",
        ResourceKind::Account,
        "developer_platform",
    ),
    (
        "bf7481a1826f439697cb59a20b22293e",
        "Workers R2 Storage Write",
        ResourceKind::Account,
        "developer_platform",
    ),
    (
        "4dc8917b4b40457d88d3035d5dadb054",
        "AI Gateway Read",
        ResourceKind::Account,
        "ai_and_machine_learning",
    ),
    (
        "6a018a9f2fc74eb6b293b0c548f38b39",
        "Workers R2 Storage Bucket Item Read",
        ResourceKind::R2Bucket,
        "developer_platform",
    ),
    (
        "2efd5506f9c8494dacb1fa10a3e7d5b6",
        "Workers R2 Storage Bucket Item Write",
        ResourceKind::R2Bucket,
        "developer_platform",
    ),
    (
        "7ea222f6d5064cfa89ea366d7c1fee89",
        "Access: Apps and Policies Read",
        ResourceKind::Zone,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "1e13c5124ca64b72b1969a67e8829049",
        "Access: Apps and Policies Write",
        ResourceKind::Zone,
        "cloudflare_one_and_zero_trust",
    ),
    (
        "9c88f9c5bce24ce7af9a958ba9c504db",
        "Analytics Read",
        ResourceKind::Zone,
        "analytics_and_logs",
    ),
    (
        "094547ab6e77498c8c4dfa87fadd5c51",
        "Apps Write",
        ResourceKind::Zone,
        "other",
    ),
    (
        "e17beae8b8cb423a99b1730f21238bed",
        "Cache Purge",
        ResourceKind::Zone,
        "cache_and_performance",
    ),
    (
        "82e64a83756745bbbb1c9c2701bf816b",
        "DNS Read",
        ResourceKind::Zone,
        "dns_and_zones",
    ),
    (
        "4755a26eedb94da69e1066d98aa820be",
        "DNS Write",
        ResourceKind::Zone,
        "dns_and_zones",
    ),
    (
        "4ec32dfcb35641c5bb32d5ef1ab963b4",
        "Firewall Services Read",
        ResourceKind::Zone,
        "app_security",
    ),
    (
        "43137f8d07884d3198dc0ee77ca6e79b",
        "Firewall Services Write",
        ResourceKind::Zone,
        "app_security",
    ),
    (
        "e9a975f628014f1d85b723993116f7d5",
        "Load Balancers Read",
        ResourceKind::Zone,
        "network_services",
    ),
    (
        "6d7f2f5f5b1d4a0e9081fdc98d432fd1",
        "Load Balancers Write",
        ResourceKind::Zone,
        "network_services",
    ),
    (
        "c4a30cd58c5d42619c86a3c36c441e2d",
        "Logs Read",
        ResourceKind::Zone,
        "analytics_and_logs",
    ),
    (
        "3e0b5820118e47f3922f7c989e673882",
        "Logs Write",
        ResourceKind::Zone,
        "analytics_and_logs",
    ),
    (
        "b415b70a4fd1412886f164451f20405c",
        "Page Rules Read",
        ResourceKind::Zone,
        "rules_and_configuration",
    ),
    (
        "ed07f6c337da4195b4e72a1fb2c6bcae",
        "Page Rules Write",
        ResourceKind::Zone,
        "rules_and_configuration",
    ),
    (
        "7b7216b327b04b8fbc8f524e1f9b7531",
        "SSL and Certificates Read",
        ResourceKind::Zone,
        "app_security",
    ),
    (
        "c03055bc037c4ea9afb9a9f104b7b721",
        "SSL and Certificates Write",
        ResourceKind::Zone,
        "app_security",
    ),
    (
        "2072033d694d415a936eaeb94e6405b8",
        "Workers Routes Read",
        ResourceKind::Zone,
        "developer_platform",
    ),
    (
        "28f4b596e7d643029c524985477ae49a",
        "Workers Routes Write",
        ResourceKind::Zone,
        "developer_platform",
    ),
    (
        "c8fed203ed3043cba015a93ad1616f1f",
        "Zone Read",
        ResourceKind::Zone,
        "dns_and_zones",
    ),
    (
        "517b21aee92c4d89936c976ba6e4be55",
        "Zone Settings Read",
        ResourceKind::Zone,
        "dns_and_zones",
    ),
    (
        "3030687196b94b638145a3953da2b699",
        "Zone Settings Write",
        ResourceKind::Zone,
        "dns_and_zones",
    ),
    (
        "e6d2666161e84845a636613608cee8d5",
        "Zone Write",
        ResourceKind::Zone,
        "dns_and_zones",
    ),
    (
        "19637fbb73d242c0a92845d8db0b95b1",
        "AI Audit Read",
        ResourceKind::Zone,
        "ai_and_machine_learning",
    ),
    (
        "1ba6ab4cacdb454b913bbb93e1b8cb8c",
        "AI Audit Write",
        ResourceKind::Zone,
        "ai_and_machine_learning",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_ids_and_names_are_unique() {
        let catalogue = Catalogue::builtin();
        let groups = catalogue.groups();
        assert_eq!(groups.len(), BUILTIN.len());
        let mut ids: Vec<_> = groups.iter().map(|g| g.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), groups.len());
        let mut names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), groups.len());
    }

    #[test]
    fn operator_groups_join_with_new_ids_and_names_only() {
        let group = |id: &str, name: &str| {
            PermissionGroup::new(
                id.parse().unwrap(),
                name,
                vec![ResourceKind::Account],
                "other",
                "",
                vec![],
            )
        };
        let fresh = "00000000000000000000000000000001";
        let catalogue = Catalogue::builtin()
            .extend(vec![group(fresh, "Orders Read")])
            .unwrap();
        assert_eq!(catalogue.find("Orders Read").unwrap().id.to_string(), fresh);
        assert_eq!(catalogue.find(fresh).unwrap().name, "Orders Read");
        assert_eq!(
            catalogue.find(API_TOKENS_READ).unwrap().name,
            "API Tokens Read"
        );
        assert!(catalogue.find("orders read").is_none());

        let clash = Catalogue::builtin().extend(vec![group(API_TOKENS_READ, "Mine")]);
        assert!(clash.unwrap_err().problem.contains("API Tokens Read"));
        let clash = Catalogue::builtin().extend(vec![group(fresh, "DNS Read")]);
        assert!(clash.is_err());
        let twice = Catalogue::builtin().extend(vec![group(fresh, "A"), group(fresh, "B")]);
        assert_eq!(twice.unwrap_err().index, 1);
    }

    #[test]
    fn token_groups_grant_the_token_operations() {
        let catalogue = Catalogue::builtin();
        let read = catalogue.get(&API_TOKENS_READ.parse().unwrap()).unwrap();
        assert_eq!(read.name, "API Tokens Read");
        assert!(read.grants(USER_TOKEN_LIST) && read.grants(USER_TOKEN_READ));
        assert!(!read.grants(USER_TOKEN_CREATE));
        assert!(read.applies_to(ResourceKind::User));
        let write = catalogue
            .get(&ACCOUNT_API_TOKENS_WRITE.parse().unwrap())
            .unwrap();
        assert!(write.grants(ACCOUNT_TOKEN_DELETE));
        assert!(!write.grants(USER_TOKEN_DELETE));
        assert!(write.grants(ACCOUNT_API_TOKENS_WRITE));
        assert!(write.applies_to(ResourceKind::Account));
    }
}
