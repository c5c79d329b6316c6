//! The `latchkey` command line: `serve`, `migrate`, `bootstrap`, `users`, `accounts`,
//! `export`, `import`, `audit`, `openapi` work on the database; `tokens` and
//! `permission-groups` talk to a running service (see [`crate::cli::api_commands`]).

pub(crate) mod api_commands;
pub mod config;
pub(crate) mod export_import;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use latchkey_core::{Clock, Id, SystemClock};
use latchkey_store::{Account, Store, StoreError, User};

use crate::logs::LogFormat;
use crate::serve::{self, ServeConfig};
use crate::state::Limits;

/// latchkey: API tokens the way Cloudflare's API v4 does them, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// A TOML file of settings (any option below, by its long name); flags and
    /// environment variables win over it.
    #[arg(long, global = true, env = "LATCHKEY_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log lines as text for people, or as JSON objects (one per line) for collectors.
    #[arg(long, global = true, env = "LATCHKEY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(ServeArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(DatabaseArg),
    /// Create a user, an account and an admin token; print them as one JSON object.
    Bootstrap(BootstrapArgs),
    /// Locked out? Mint a new admin token for an existing user, straight into the database
    /// (the server may be running or not), its secret in a new file readable by you only.
    Recover(RecoverArgs),
    /// Add and list users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Add and list accounts and their members.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Write every user, account, membership and token (with its secret's hash, never a
    /// secret) as JSON lines.
    Export(ExportArgs),
    /// Read an export into an empty database; every token keeps working with its secret.
    Import(ImportArgs),
    /// Check the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print the OpenAPI document (the one served at /client/v4/openapi.json).
    Openapi,
    /// Tokens of a running latchkey (or of Cloudflare), over its API.
    #[command(subcommand)]
    Tokens(crate::cli::api_commands::TokensCommand),
    /// The permission groups of a running latchkey (or of Cloudflare), over its API.
    #[command(subcommand)]
    PermissionGroups(crate::cli::api_commands::PermissionGroupsCommand),
    /// Print a shell completion script, e.g. `latchkey completions bash > /etc/bash_completion.d/latchkey`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// `latchkey audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every entry's hash and link; exit 1 at the first broken one. Prints the
    /// number of entries and the last hash: keep that hash elsewhere to detect, later, a log
    /// cut short at its end.
    Verify(DatabaseArg),
}

/// Options of `export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub db: DatabaseArg,
    /// File to write (mode 0600) [default: standard output].
    #[arg(long)]
    pub output: Option<PathBuf>,
}

/// Options of `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub db: DatabaseArg,
    /// File to read [default: standard input].
    #[arg(long)]
    pub input: Option<PathBuf>,
}

/// `--database`, shared by every command. Its `Debug` output hides the URL's password.
#[derive(Args)]
pub struct DatabaseArg {
    /// Database URL (sqlite://path or postgres://user:password@host/database).
    #[arg(
        long,
        env = "LATCHKEY_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://latchkey.db"
    )]
    pub database: String,
}

impl std::fmt::Debug for DatabaseArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArg")
            .field("database", &latchkey_store::redacted_url(&self.database))
            .finish()
    }
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: host and port, e.g. 127.0.0.1:8787, or 0.0.0.0:8787 for every IPv4 interface.
    #[arg(long, env = "LATCHKEY_LISTEN", default_value = "127.0.0.1:8787", value_parser = listen_address)]
    pub listen: SocketAddr,
    /// Not a setting: `--port` is refused with a pointer to `--listen`.
    #[arg(long, hide = true, value_parser = no_port_flag)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub db: DatabaseArg,
    /// User tokens one user may own.
    #[arg(long, env = "LATCHKEY_USER_TOKEN_QUOTA", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..))]
    pub user_token_quota: u64,
    /// Account tokens one account may own.
    #[arg(long, env = "LATCHKEY_ACCOUNT_TOKEN_QUOTA", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    pub account_token_quota: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "LATCHKEY_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Tokens kept in the in-memory cache (0 turns caching off).
    #[arg(long, env = "LATCHKEY_TOKEN_CACHE_SIZE", default_value_t = 100_000)]
    pub token_cache_size: u64,
    /// Longest a cached token is used before it is read again, in seconds. Writes through
    /// latchkey invalidate at once; this bounds only changes made behind its back.
    #[arg(long, env = "LATCHKEY_TOKEN_CACHE_TTL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub token_cache_ttl: u64,
    /// API requests per owner (user, or account of an account token) per 5 minutes;
    /// 0 turns the limit off.
    #[arg(long, env = "LATCHKEY_RATE_LIMIT", default_value_t = 1200)]
    pub rate_limit: u32,
    /// Failed authentications per client address per 10 s before the address is refused
    /// for a while; 0 turns the limit off.
    #[arg(long, env = "LATCHKEY_AUTH_FAILURE_LIMIT", default_value_t = 20)]
    pub auth_failure_limit: u32,
    /// Where the first admin token is written on an empty database
    /// [default: latchkey-admin-token beside the SQLite file].
    #[arg(long, env = "LATCHKEY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// A proxy (CIDR) whose X-Forwarded-For / CF-Connecting-IP is believed; repeatable
    /// [default: none, the TCP peer is the client].
    #[arg(
        long = "trusted-proxy",
        env = "LATCHKEY_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A TOML file of operator-defined permission groups, added to the built-in catalogue.
    #[arg(long, env = "LATCHKEY_PERMISSION_GROUPS")]
    pub permission_groups: Option<PathBuf>,
    /// Seconds a client has to send a request's headers, idle keep-alive time included.
    #[arg(long, env = "LATCHKEY_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "LATCHKEY_SHUTDOWN_GRACE", default_value_t = 10)]
    pub shutdown_grace: u64,
    /// Seconds a client has to send a request's body once its headers are in.
    #[arg(long, env = "LATCHKEY_BODY_TIMEOUT", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_timeout: u64,
    /// Connections open at once; more wait in the kernel's backlog
    /// [default: three quarters of the file-descriptor limit, raised to its hard limit].
    #[arg(long, env = "LATCHKEY_MAX_CONNECTIONS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// A token may only create or update tokens within its own grants
    /// [default: bounded by the owner's rights, as Cloudflare does].
    #[arg(long, env = "LATCHKEY_STRICT_DELEGATION")]
    pub strict_delegation: bool,
    /// Where GitHub's secret scanning keys are read: a URL, or a file in the same format
    /// (for a deployment that cannot reach GitHub, or for tests).
    #[arg(
        long,
        env = "LATCHKEY_GITHUB_SCANNING_KEYS",
        default_value = crate::leaks::github::GITHUB_KEYS_URL
    )]
    pub github_scanning_keys: crate::leaks::github::KeySource,
    /// SMTP server for email to token owners (`smtps://host`, `smtp://host?tls=required`
    /// for STARTTLS, or `smtp://host` on this machine); a user name may be in it, a
    /// password never: see --smtp-password-file.
    #[arg(long, env = "LATCHKEY_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Sender of latchkey's email, e.g. `latchkey <latchkey@example.com>`.
    #[arg(long, env = "LATCHKEY_SMTP_FROM")]
    pub smtp_from: Option<String>,
    /// A file holding the SMTP password [default: the environment variable
    /// LATCHKEY_SMTP_PASSWORD].
    #[arg(long, env = "LATCHKEY_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,
}

/// Options of `bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub db: DatabaseArg,
    /// Email of the new user (default: a fresh admin-RANDOM@latchkey.local).
    #[arg(long)]
    pub email: Option<String>,
    /// Name of the new account.
    #[arg(long, default_value = "Default account")]
    pub account_name: String,
}

/// Options of `recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub db: DatabaseArg,
    /// Email of the existing user who gets the token (`latchkey users list` shows them).
    #[arg(long)]
    pub email: String,
    /// New file for the secret (mode 0600); an existing file is never overwritten.
    #[arg(long, default_value = crate::admin::RECOVERY_TOKEN_FILE)]
    pub output: PathBuf,
}

/// `latchkey users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; prints it as JSON.
    Add {
        /// Unique email address.
        #[arg(long)]
        email: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List users.
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
}

/// `latchkey accounts ...`
#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Add an account; prints it as JSON.
    Add {
        /// Display name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Make a user a member of an account.
    AddMember {
        /// Account id.
        #[arg(long)]
        account: Id,
        /// User id.
        #[arg(long)]
        user: Id,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// Remove a user from an account (its user tokens lose access to it at once).
    RemoveMember {
        /// Account id.
        #[arg(long)]
        account: Id,
        /// User id.
        #[arg(long)]
        user: Id,
        #[command(flatten)]
        db: DatabaseArg,
    },
    /// List an account's members.
    Members {
        /// Account id.
        #[arg(long)]
        account: Id,
        #[command(flatten)]
        db: DatabaseArg,
    },
}

async fn open(db: &DatabaseArg) -> anyhow::Result<std::sync::Arc<dyn Store>> {
    latchkey_store::open(&db.database).await.with_context(|| {
        format!(
            "opening database {}",
            latchkey_store::redacted_url(&db.database)
        )
    })
}

fn timestamp(t: time::OffsetDateTime) -> String {
    latchkey_api::timestamp::format(t)
}

fn user_json(user: &User) -> serde_json::Value {
    serde_json::json!({"id": user.id, "email": user.email, "created_on": timestamp(user.created_on)})
}

fn account_json(account: &Account) -> serde_json::Value {
    serde_json::json!({"id": account.id, "name": account.name, "created_on": timestamp(account.created_on)})
}

fn check_email(email: &str) -> anyhow::Result<()> {
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if !valid {
        bail!("--email {email:?} is not an email address");
    }
    Ok(())
}

fn explain(e: StoreError, what: &str) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow::anyhow!("{what}: no such account or user"),
        StoreError::Conflict(why) => anyhow::anyhow!("{what}: {why}"),
        other => anyhow::Error::new(other).context(what.to_owned()),
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let clock = SystemClock;
    match cli.command {
        Command::Serve(args) => {
            serve::run(ServeConfig {
                listen: args.listen,
                database: args.db.database,
                limits: Limits {
                    user_token_quota: args.user_token_quota,
                    account_token_quota: args.account_token_quota,
                    max_body_bytes: args.max_body_bytes,
                    rate_limit: args.rate_limit,
                    auth_failure_limit: args.auth_failure_limit,
                    token_cache_size: args.token_cache_size,
                    token_cache_ttl: std::time::Duration::from_secs(args.token_cache_ttl),
                    body_timeout: std::time::Duration::from_secs(args.body_timeout),
                },
                admin_token_file: args.admin_token_file,
                trusted_proxies: args.trusted_proxies,
                permission_groups: args.permission_groups,
                strict_delegation: args.strict_delegation,
                github_scanning_keys: args.github_scanning_keys,
                smtp: crate::mail::SmtpSettings {
                    url: args.smtp_url,
                    from: args.smtp_from,
                    password_file: args.smtp_password_file,
                },
                timeouts: crate::serve::connections::ConnectionLimits {
                    header: std::time::Duration::from_secs(args.header_timeout),
                    shutdown_grace: std::time::Duration::from_secs(args.shutdown_grace),
                    max_connections: {
                        let descriptors = crate::serve::connections::raise_descriptor_limit();
                        args.max_connections.map_or_else(
                            || crate::serve::connections::default_max_connections(descriptors),
                            |n| usize::try_from(n).unwrap_or(usize::MAX),
                        )
                    },
                },
            })
            .await
        }
        Command::Export(args) => {
            let store = open(&args.db).await?;
            let counts = match &args.output {
                Some(path) => {
                    use std::os::unix::fs::OpenOptionsExt;
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .mode(0o600)
                        .open(path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    let counts =
                        crate::cli::export_import::export(store.as_ref(), &mut out).await?;
                    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                    counts
                }
                None => {
                    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                    crate::cli::export_import::export(store.as_ref(), &mut out).await?
                }
            };
            eprintln!("exported {}", serde_json::to_string(&counts)?);
            Ok(())
        }
        Command::Import(args) => {
            let store = open(&args.db).await?;
            let counts = match &args.input {
                Some(path) => {
                    let file = std::fs::File::open(path)
                        .with_context(|| format!("opening {}", path.display()))?;
                    let input = std::io::BufReader::new(file);
                    crate::cli::export_import::import(store.as_ref(), input, clock.now()).await?
                }
                None => {
                    let input = std::io::stdin().lock();
                    crate::cli::export_import::import(store.as_ref(), input, clock.now()).await?
                }
            };
            eprintln!("imported {}", serde_json::to_string(&counts)?);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify(db)) => {
            let store = open(&db).await?;
            match crate::audit::verify(store.as_ref(), 10_000).await? {
                crate::audit::Verdict::Intact { entries, head } => {
                    println!(
                        "audit log intact: {entries} entries, last hash {}",
                        hex::encode(head)
                    );
                    Ok(())
                }
                crate::audit::Verdict::Broken(broken) => {
                    anyhow::bail!("audit log broken at {broken}")
                }
            }
        }
        Command::Tokens(command) => crate::cli::api_commands::tokens(command).await,
        Command::PermissionGroups(command) => {
            crate::cli::api_commands::permission_groups(command).await
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "latchkey",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Openapi => {
            println!("{:#}", crate::http::routes::document());
            Ok(())
        }
        Command::Migrate(db) => {
            open(&db).await?;
            eprintln!(
                "database {} is up to date",
                latchkey_store::redacted_url(&db.database)
            );
            Ok(())
        }
        Command::Bootstrap(args) => {
            let email = match args.email {
                Some(email) => email,
                None => format!("admin-{}@latchkey.local", &Id::random().to_string()[..8]),
            };
            check_email(&email)?;
            let store = open(&args.db).await?;
            let created =
                crate::admin::create_admin(store.as_ref(), &email, &args.account_name, clock.now())
                    .await
                    .map_err(|e| explain(e, "bootstrap"))?;
            println!(
                "{}",
                serde_json::json!({
                    "user_id": created.user_id,
                    "account_id": created.account_id,
                    "token_id": created.token_id,
                    "token": created.secret.expose(),
                })
            );
            Ok(())
        }
        Command::Recover(args) => {
            crate::admin::refuse_existing(&args.output, "--output")?;
            let store = open(&args.db).await?;
            let recovered =
                crate::admin::recover(store.as_ref(), &args.email, &args.output, clock.now())
                    .await?;
            let expires_on = recovered
                .expires_on
                .format(&time::format_description::well_known::Rfc3339)?;
            println!(
                "{}",
                serde_json::json!({
                    "user_id": recovered.user_id,
                    "token_id": recovered.token_id,
                    "account_ids": recovered.account_ids,
                    "expires_on": expires_on,
                    "file": args.output,
                })
            );
            eprintln!(
                "the secret is in {}; it works until {expires_on}: use it to re-enable or \
                 create your own token, then delete this one",
                args.output.display()
            );
            Ok(())
        }
        Command::Users(UsersCommand::Add { email, db }) => {
            check_email(&email)?;
            let user = User {
                id: Id::random(),
                email,
                created_on: clock.now(),
            };
            open(&db)
                .await?
                .create_user(&user)
                .await
                .map_err(|e| explain(e, "users add"))?;
            println!("{}", user_json(&user));
            Ok(())
        }
        Command::Users(UsersCommand::List { db }) => {
            for user in open(&db).await?.list_users().await? {
                println!("{}", user_json(&user));
            }
            Ok(())
        }
        Command::Accounts(AccountsCommand::Add { name, db }) => {
            if name.trim().is_empty() {
                bail!("--name cannot be empty");
            }
            let account = Account {
                id: Id::random(),
                name,
                created_on: clock.now(),
            };
            open(&db).await?.create_account(&account).await?;
            println!("{}", account_json(&account));
            Ok(())
        }
        Command::Accounts(AccountsCommand::List { db }) => {
            for account in open(&db).await?.list_accounts().await? {
                println!("{}", account_json(&account));
            }
            Ok(())
        }
        Command::Accounts(AccountsCommand::AddMember { account, user, db }) => {
            open(&db)
                .await?
                .add_member(account, user, clock.now())
                .await
                .map_err(|e| explain(e, "accounts add-member"))?;
            println!(
                "{}",
                serde_json::json!({"account_id": account, "user_id": user})
            );
            Ok(())
        }
        Command::Accounts(AccountsCommand::RemoveMember { account, user, db }) => {
            open(&db)
                .await?
                .remove_member(account, user)
                .await
                .map_err(|e| explain(e, "accounts remove-member"))?;
            println!(
                "{}",
                serde_json::json!({"account_id": account, "user_id": user})
            );
            Ok(())
        }
        Command::Accounts(AccountsCommand::Members { account, db }) => {
            for user in open(&db).await?.list_members(account).await? {
                println!("{}", user_json(&user));
            }
            Ok(())
        }
    }
}

/// `--listen`: a socket address, with a message that shows the form when it is not one.
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        let example = match text.parse::<u16>() {
            Ok(port) => {
                format!("127.0.0.1:{port} (this machine only) or 0.0.0.0:{port} (every interface)")
            }
            Err(_) => "127.0.0.1:8787 or [::1]:8787".to_owned(),
        };
        format!("expected an address and a port, such as {example}")
    })
}

/// `--port`, which latchkey does not have: says what to use instead.
fn no_port_flag(text: &str) -> Result<u16, String> {
    Err(format!(
        "latchkey has no --port; give the address and port together: --listen 127.0.0.1:{text}"
    ))
}
