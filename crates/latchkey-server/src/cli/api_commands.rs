//! The commands that talk to a running latchkey (or to Cloudflare) over HTTP, through
//! `latchkey-client`: `latchkey tokens ...` and `latchkey permission-groups list`.
//!
//! They read the API's base URL from `--url` / `LATCHKEY_URL` (default: a local latchkey)
//! and the bearer token from `LATCHKEY_TOKEN`, else `CLOUDFLARE_API_TOKEN`, else
//! `--token-file` (never from a flag: a command line is visible to every user of the
//! machine). Output is a table for people, or JSON with `--json`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use futures_util::TryStreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use latchkey_api::{
    Condition, CreateTokenRequest, Effect, GroupRef, IpRanges, PermissionGroup, Policy,
    ResourceValue, Token, TokenStatus, UpdateTokenRequest,
};
use latchkey_client::{Client, Family, GroupFilter, ListQuery};
use time::OffsetDateTime;

/// Where the API is and how to authenticate, shared by the remote commands.
#[derive(Debug, Args)]
pub struct Connection {
    /// The API's base URL, ending in /client/v4 (Cloudflare's is
    /// `https://api.cloudflare.com/client/v4`).
    #[arg(
        long,
        env = "LATCHKEY_URL",
        default_value = "http://127.0.0.1:8787/client/v4"
    )]
    pub url: String,
    /// A file holding the token, used when neither LATCHKEY_TOKEN nor
    /// CLOUDFLARE_API_TOKEN is set.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Print JSON (the API's `result`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let token = match ["LATCHKEY_TOKEN", "CLOUDFLARE_API_TOKEN"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
        {
            Some(token) => token,
            None => match &self.token_file {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("reading the token from {}", path.display()))?
                    .trim()
                    .to_owned(),
                None => bail!(
                    "no token: set LATCHKEY_TOKEN (or CLOUDFLARE_API_TOKEN), or pass --token-file"
                ),
            },
        };
        Ok(Client::new(token).with_base_url(&self.url))
    }
}

/// `--account`: account tokens of this account instead of the caller's user tokens.
#[derive(Debug, Args)]
pub struct FamilyArg {
    /// Work on this account's tokens (32 hex) instead of your user tokens.
    #[arg(long)]
    pub account: Option<String>,
}

impl FamilyArg {
    fn family(&self) -> Family {
        match &self.account {
            Some(account) => Family::Account(account.clone()),
            None => Family::User,
        }
    }
}

/// `latchkey tokens ...`
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// List tokens (every page), oldest first.
    List {
        #[command(flatten)]
        family: FamilyArg,
        /// Include expired tokens.
        #[arg(long)]
        include_expired: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show one token.
    Get {
        /// The token's id.
        id: String,
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
    /// Create a token; prints its secret once.
    Create {
        /// Name (up to 120 characters).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        grant: Grant,
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
    /// Change a token: only what is given changes (it is read, changed and written back).
    Update {
        /// The token's id.
        id: String,
        /// New name.
        #[arg(long)]
        name: Option<String>,
        /// New status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[command(flatten)]
        grant: Grant,
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
    /// Give a token a new secret (the old one stops working at once); prints it once.
    Roll {
        /// The token's id.
        id: String,
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a token.
    Delete {
        /// The token's id.
        id: String,
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
    /// Check the token the command authenticates with (exit 1 if it is not usable).
    Verify {
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `latchkey permission-groups ...`
#[derive(Debug, Subcommand)]
pub enum PermissionGroupsCommand {
    /// List the permission groups a token of this family can hold.
    List {
        /// Only the group of this exact name.
        #[arg(long)]
        name: Option<String>,
        /// Only groups of this scope, e.g. com.cloudflare.api.account.zone.
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        family: FamilyArg,
        #[command(flatten)]
        connection: Connection,
    },
}

/// `--status`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    /// Usable.
    Active,
    /// Refused until set active again.
    Disabled,
}

/// What a token grants, for `create` and `update`.
#[derive(Debug, Args)]
pub struct Grant {
    /// The whole `policies` array (and optionally `condition`, `not_before`, `expires_on`)
    /// as JSON, from a file or `-` for standard input; the other grant options add to it.
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// Allow these permission groups (name or id; repeatable) on every --resource.
    #[arg(long = "allow")]
    pub allow: Vec<String>,
    /// Resource keys the --allow groups apply to, e.g.
    /// com.cloudflare.api.account.zone.* (repeatable).
    #[arg(long = "resource")]
    pub resources: Vec<String>,
    /// Client addresses allowed (CIDR; repeatable).
    #[arg(long = "allow-cidr")]
    pub allow_cidr: Vec<String>,
    /// Client addresses refused (CIDR; repeatable).
    #[arg(long = "deny-cidr")]
    pub deny_cidr: Vec<String>,
    /// Not usable before this RFC 3339 time.
    #[arg(long, value_parser = rfc3339)]
    pub not_before: Option<OffsetDateTime>,
    /// Not usable from this RFC 3339 time on.
    #[arg(long, value_parser = rfc3339)]
    pub expires_on: Option<OffsetDateTime>,
}

fn rfc3339(text: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time (e.g. 2030-01-01T00:00:00Z)"))
}

/// The parts of a token body a [`Grant`] describes.
#[derive(Debug, Default, serde::Deserialize)]
struct GrantBody {
    #[serde(default)]
    policies: Vec<Policy>,
    #[serde(default)]
    condition: Option<Condition>,
    #[serde(default, with = "latchkey_api::timestamp::option")]
    not_before: Option<OffsetDateTime>,
    #[serde(default, with = "latchkey_api::timestamp::option")]
    expires_on: Option<OffsetDateTime>,
}

impl Grant {
    fn is_empty(&self) -> bool {
        self.body.is_none()
            && self.allow.is_empty()
            && self.allow_cidr.is_empty()
            && self.deny_cidr.is_empty()
            && self.not_before.is_none()
            && self.expires_on.is_none()
    }

    /// The body file (if any) with the other options applied; `--allow` names are
    /// resolved against the family's permission groups.
    async fn read(&self, client: &Client, family: &Family) -> anyhow::Result<GrantBody> {
        let mut body = match &self.body {
            None => GrantBody::default(),
            Some(path) => {
                let text = if path.as_os_str() == "-" {
                    std::io::read_to_string(std::io::stdin())?
                } else {
                    std::fs::read_to_string(path)
                        .with_context(|| format!("reading {}", path.display()))?
                };
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a token body", path.display()))?
            }
        };
        if !self.allow.is_empty() {
            if self.resources.is_empty() {
                bail!("--allow needs at least one --resource");
            }
            let groups = client
                .permission_groups(family, &GroupFilter::default())
                .await?;
            let permission_groups = self
                .allow
                .iter()
                .map(|wanted| {
                    groups
                        .iter()
                        .find(|g| g.id == *wanted || g.name == *wanted)
                        .map(|g| GroupRef {
                            id: g.id.clone(),
                            name: None,
                            meta: None,
                        })
                        .ok_or_else(|| anyhow!("no permission group named {wanted:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            body.policies.push(Policy {
                id: None,
                effect: Effect::Allow,
                permission_groups,
                resources: self
                    .resources
                    .iter()
                    .map(|r| (r.clone(), ResourceValue::Scalar("*".into())))
                    .collect(),
            });
        } else if !self.resources.is_empty() {
            bail!("--resource needs at least one --allow");
        }
        if !self.allow_cidr.is_empty() || !self.deny_cidr.is_empty() {
            body.condition = Some(Condition {
                request_ip: Some(IpRanges {
                    allow: self.allow_cidr.clone(),
                    not_in: self.deny_cidr.clone(),
                }),
            });
        }
        body.not_before = self.not_before.or(body.not_before);
        body.expires_on = self.expires_on.or(body.expires_on);
        Ok(body)
    }
}

impl TokensCommand {
    /// The connection options every subcommand has.
    fn connection(&self) -> &Connection {
        match self {
            TokensCommand::List { connection, .. }
            | TokensCommand::Get { connection, .. }
            | TokensCommand::Create { connection, .. }
            | TokensCommand::Update { connection, .. }
            | TokensCommand::Roll { connection, .. }
            | TokensCommand::Delete { connection, .. }
            | TokensCommand::Verify { connection, .. } => connection,
        }
    }

    /// What to say when the token the subcommand names does not exist, if it names one:
    /// `no token <id>`, and for an account token, in which account.
    fn missing_token(&self) -> Option<String> {
        match self {
            TokensCommand::Get { id, family, .. }
            | TokensCommand::Update { id, family, .. }
            | TokensCommand::Roll { id, family, .. }
            | TokensCommand::Delete { id, family, .. } => Some(match &family.account {
                Some(account) => format!("no token {id} in account {account}"),
                None => format!("no token {id}"),
            }),
            TokensCommand::List { .. }
            | TokensCommand::Create { .. }
            | TokensCommand::Verify { .. } => None,
        }
    }
}

/// Turns the client's errors a person can act on into a sentence that says what to do: a
/// server that cannot be reached (which URL was tried, and how to give another), and a token
/// that does not exist (the API's 7003 "Could not route to ..." stays on the wire, but the
/// person asked about a token). Other errors pass through.
fn explain(error: anyhow::Error, url: &str, missing_token: Option<&str>) -> anyhow::Error {
    let Some(client_error) = error.downcast_ref::<latchkey_client::Error>() else {
        return error;
    };
    match client_error {
        latchkey_client::Error::Transport(e) if e.is_connect() || e.is_timeout() => {
            let mut cause: &dyn std::error::Error = e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            anyhow!(
                "cannot reach latchkey at {url} ({cause}); start it with `latchkey serve`, or \
                 point to another server with --url or LATCHKEY_URL"
            )
        }
        _ if client_error.code() == Some(7003) || client_error.status() == Some(404) => {
            match missing_token {
                Some(sentence) => anyhow!("{sentence}"),
                None => error,
            }
        }
        _ => error,
    }
}

/// Runs `latchkey tokens ...`.
pub async fn tokens(command: TokensCommand) -> anyhow::Result<()> {
    let url = command.connection().url.clone();
    let missing = command.missing_token();
    run_tokens(command)
        .await
        .map_err(|e| explain(e, &url, missing.as_deref()))
}

async fn run_tokens(command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::List {
            family,
            include_expired,
            connection,
        } => {
            let client = connection.client()?;
            let query = ListQuery {
                per_page: Some(50),
                include_expired: include_expired.then_some(true),
                ..ListQuery::default()
            };
            let tokens = all_pages(client.token_pages(&family.family(), query)).await?;
            if connection.json {
                return print_json(&tokens);
            }
            let mut table = table(&["ID", "NAME", "STATUS", "EXPIRES", "LAST USED", "POLICIES"]);
            for token in &tokens {
                table.add_row(vec![
                    token.id.clone(),
                    printable(&token.name),
                    status(token.status).to_owned(),
                    when(token.expires_on, "never"),
                    when(token.last_used_on, "never"),
                    token.policies.len().to_string(),
                ]);
            }
            println!("{table}");
            Ok(())
        }
        TokensCommand::Get {
            id,
            family,
            connection,
        } => {
            let token = connection.client()?.get(&family.family(), &id).await?;
            show_token(&token, connection.json)
        }
        TokensCommand::Create {
            name,
            grant,
            family,
            connection,
        } => {
            let client = connection.client()?;
            let family = family.family();
            let body = grant.read(&client, &family).await?;
            if body.policies.is_empty() {
                bail!("a token needs a policy: give --allow and --resource, or --body");
            }
            let created = client
                .create(
                    &family,
                    &CreateTokenRequest {
                        name,
                        policies: body.policies,
                        not_before: body.not_before,
                        expires_on: body.expires_on,
                        condition: body.condition,
                    },
                )
                .await?;
            if connection.json {
                return print_json(&created);
            }
            show_token(&created, false)?;
            if let Some(secret) = &created.value {
                print_secret(secret.expose());
            }
            Ok(())
        }
        TokensCommand::Update {
            id,
            name,
            status: new_status,
            grant,
            family,
            connection,
        } => {
            let client = connection.client()?;
            let family = family.family();
            let current = client.get(&family, &id).await?;
            let mut body = UpdateTokenRequest {
                name: name.unwrap_or(current.name),
                policies: current.policies,
                status: new_status.map(|s| match s {
                    StatusArg::Active => TokenStatus::Active,
                    StatusArg::Disabled => TokenStatus::Disabled,
                }),
                not_before: current.not_before,
                expires_on: current.expires_on,
                condition: current.condition,
            };
            if !grant.is_empty() {
                let replacement = grant.read(&client, &family).await?;
                if !replacement.policies.is_empty() {
                    body.policies = replacement.policies;
                }
                body.condition = replacement.condition.or(body.condition);
                body.not_before = replacement.not_before.or(body.not_before);
                body.expires_on = replacement.expires_on.or(body.expires_on);
            }
            let updated = client.update(&family, &id, &body).await?;
            show_token(&updated, connection.json)
        }
        TokensCommand::Roll {
            id,
            family,
            connection,
        } => {
            let secret = connection.client()?.roll(&family.family(), &id).await?;
            if connection.json {
                return print_json(&secret);
            }
            print_secret(secret.expose());
            Ok(())
        }
        TokensCommand::Delete {
            id,
            family,
            connection,
        } => {
            let deleted = connection.client()?.delete(&family.family(), &id).await?;
            if connection.json {
                return print_json(&deleted);
            }
            println!("deleted {}", deleted.id);
            Ok(())
        }
        TokensCommand::Verify { family, connection } => {
            let verified = connection.client()?.verify(&family.family()).await?;
            if connection.json {
                return print_json(&verified);
            }
            println!(
                "token {} is {} (expires: {})",
                verified.id,
                status(verified.status),
                when(verified.expires_on, "never")
            );
            Ok(())
        }
    }
}

/// Runs `latchkey permission-groups ...`.
pub async fn permission_groups(command: PermissionGroupsCommand) -> anyhow::Result<()> {
    let PermissionGroupsCommand::List {
        name,
        scope,
        family,
        connection,
    } = command;
    let groups: Vec<PermissionGroup> = connection
        .client()?
        .permission_groups(&family.family(), &GroupFilter { name, scope })
        .await
        .map_err(|e| explain(e.into(), &connection.url, None))?;
    if connection.json {
        return print_json(&groups);
    }
    let mut table = table(&["ID", "NAME", "SCOPES", "CATEGORY"]);
    for group in &groups {
        table.add_row(vec![
            group.id.clone(),
            group.name.clone(),
            group.scopes.join(", "),
            group.category.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}

/// Every page of a list, with a progress bar on a terminal once there is more than one
/// page.
async fn all_pages(mut pages: latchkey_client::Pages<Token>) -> anyhow::Result<Vec<Token>> {
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new(0)
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} pages")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    progress.set_message("listing tokens");
    let mut tokens = Vec::new();
    while let Some(page) = pages.try_next().await? {
        if let Some(info) = page.info {
            progress.set_length(info.total_pages);
            progress.set_position(info.page);
        }
        tokens.extend(page.items);
    }
    progress.finish_and_clear();
    Ok(tokens)
}

/// `text` with every control character and bidirectional override escaped (`\u{1b}`), so
/// that a name stored before such names were refused cannot drive the terminal it is
/// printed on.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if latchkey_core::token::unprintable(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(header);
    table
}

fn show_token(token: &Token, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(token);
    }
    let mut table = table(&["FIELD", "VALUE"]);
    table.add_row(vec!["id".to_owned(), token.id.clone()]);
    table.add_row(vec!["name".to_owned(), printable(&token.name)]);
    table.add_row(vec!["status".to_owned(), status(token.status).to_owned()]);
    table.add_row(vec!["issued".to_owned(), when(Some(token.issued_on), "")]);
    table.add_row(vec![
        "modified".to_owned(),
        when(Some(token.modified_on), ""),
    ]);
    table.add_row(vec![
        "last used".to_owned(),
        when(token.last_used_on, "never"),
    ]);
    table.add_row(vec!["not before".to_owned(), when(token.not_before, "-")]);
    table.add_row(vec!["expires".to_owned(), when(token.expires_on, "never")]);
    for (i, policy) in token.policies.iter().enumerate() {
        let groups: Vec<&str> = policy
            .permission_groups
            .iter()
            .map(|g| g.name.as_deref().unwrap_or(&g.id))
            .collect();
        let resources: Vec<String> = policy
            .resources
            .iter()
            .map(|(key, value)| match value {
                ResourceValue::Scalar(v) => format!("{key} = {v}"),
                ResourceValue::Nested(inner) => {
                    let inner: Vec<String> =
                        inner.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{key} > {}", inner.join(", "))
                }
            })
            .collect();
        let effect = match policy.effect {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        };
        table.add_row(vec![
            format!("policy {}", i + 1),
            format!("{effect} {} on {}", groups.join(", "), resources.join("; ")),
        ]);
    }
    if let Some(ranges) = token.condition.as_ref().and_then(|c| c.request_ip.as_ref()) {
        table.add_row(vec!["addresses in".to_owned(), ranges.allow.join(", ")]);
        table.add_row(vec![
            "addresses not in".to_owned(),
            ranges.not_in.join(", "),
        ]);
    }
    println!("{table}");
    Ok(())
}

fn print_secret(secret: &str) {
    println!("secret: {secret}");
    eprintln!("Keep the secret now: latchkey stores only its hash and cannot show it again.");
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn status(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "active",
        TokenStatus::Disabled => "disabled",
        TokenStatus::Expired => "expired",
    }
}

fn when(at: Option<OffsetDateTime>, none: &str) -> String {
    at.map_or_else(|| none.to_owned(), latchkey_api::timestamp::format)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unprintable_characters_are_escaped() {
        assert_eq!(
            super::printable("a\u{1b}]0;x\u{7}b\u{202e}c"),
            "a\\u{1b}]0;x\\u{7}b\\u{202e}c"
        );
        assert_eq!(super::printable("Zürich ✓"), "Zürich ✓");
    }
}
