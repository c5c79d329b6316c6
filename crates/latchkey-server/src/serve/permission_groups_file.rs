//! Operator-defined permission groups (`--permission-groups <file>`), added beside the
//! built-in catalogue so that latchkey can guard an operator's own APIs:
//!
//! ```toml
//! [[group]]
//! id = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"   # 32 lowercase hex, not a built-in id
//! name = "Orders Read"                     # unique, not a built-in name
//! scopes = ["com.cloudflare.api.account"]  # resource kinds it applies to
//! category = "other"                       # optional, default "other"
//! description = "Read orders"              # optional
//! ```
//!
//! Such a group grants the permission named by its own id, so it is asked for by id or by
//! name (`POST /latchkey/v1/authorize`, forward-auth) and granted in policies like any other.

use std::path::Path;

use latchkey_core::{Catalogue, Id, PermissionGroup, ResourceKind};
use serde::Deserialize;

/// The file cannot be used; the message names the file, the group and the field.
#[derive(Debug, thiserror::Error)]
#[error("permission groups file {path}: {problem}")]
pub struct FileError {
    path: String,
    problem: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    group: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// The built-in catalogue plus the groups of the file at `path`.
pub fn load(path: &Path) -> Result<Catalogue, FileError> {
    let fail = |problem: String| FileError {
        path: path.display().to_string(),
        problem,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    parse(&text).map_err(fail)
}

/// The built-in catalogue plus the groups of a TOML document.
pub fn parse(text: &str) -> Result<Catalogue, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut groups = Vec::with_capacity(file.group.len());
    for (index, entry) in file.group.into_iter().enumerate() {
        let at = |field: &str, problem: String| {
            format!(
                "group #{} ({:?}), {field}: {problem}",
                index + 1,
                entry.name
            )
        };
        let id: Id = entry.id.parse().map_err(|_| {
            at(
                "id",
                format!("{:?} is not 32 lowercase hex characters", entry.id),
            )
        })?;
        let scopes = entry
            .scopes
            .iter()
            .map(|s| {
                s.parse::<ResourceKind>().map_err(|_| {
                    at(
                        "scopes",
                        format!(
                            "{s:?} is not one of {}",
                            ResourceKind::ALL.map(|k| k.as_str()).join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let description = entry
            .description
            .clone()
            .unwrap_or_else(|| format!("Grants {}", entry.name));
        groups.push(PermissionGroup::new(
            id,
            entry.name.clone(),
            scopes,
            entry.category.clone().unwrap_or_else(|| "other".into()),
            description,
            Vec::new(),
        ));
    }
    Catalogue::builtin()
        .extend(groups)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_valid_groups() {
        let catalogue = parse(
            r#"
            [[group]]
            id = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"
            name = "Orders Read"
            scopes = ["com.cloudflare.api.account", "com.cloudflare.api.account.zone"]
            "#,
        )
        .unwrap();
        let group = catalogue.find("Orders Read").unwrap();
        assert_eq!(group.category, "other");
        assert_eq!(group.scopes.len(), 2);
        assert!(group.grants("5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"));
        assert!(parse("").is_ok(), "an empty file adds nothing");
    }

    #[test]
    fn refuses_bad_groups_naming_the_field() {
        let cases = [
            (
                r#"[[group]]
                id = "nothex"
                name = "A"
                scopes = ["com.cloudflare.api.account"]"#,
                "group #1 (\"A\"), id",
            ),
            (
                r#"[[group]]
                id = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"
                name = "A"
                scopes = ["com.example.thing"]"#,
                "scopes",
            ),
            (
                r#"[[group]]
                id = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"
                name = "DNS Read"
                scopes = ["com.cloudflare.api.account"]"#,
                "already used",
            ),
            (
                r#"[[group]]
                id = "82e64a83756745bbbb1c9c2701bf816b"
                name = "Mine"
                scopes = ["com.cloudflare.api.account"]"#,
                "already used by \"DNS Read\"",
            ),
            (
                r#"[[group]]
                id = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"
                name = "A"
                scopes = []"#,
                "scopes is empty",
            ),
            (
                r#"[[group]]
                id = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b"
                name = "A"
                scope = ["com.cloudflare.api.account"]"#,
                "scope",
            ),
            ("[[group]\n", "TOML"),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err();
            assert!(
                error.contains(expected) || (expected == "TOML" && !error.is_empty()),
                "{error:?} should mention {expected:?}"
            );
        }
    }
}
