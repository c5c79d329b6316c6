//! Helpers of `scripts/bench`:
//!
//! - `latchkey-bench seed`: fills a fresh database through the store's bulk path (not HTTP):
//!   an admin user and account, 500 tokens on that account (the list benchmark), a set of
//!   user tokens whose secrets are written out (the verify benchmarks), and the rest as
//!   account tokens spread over other accounts, 500 each, up to the total asked.
//! - `latchkey-bench bare`: the ceiling, [`latchkey_bench::bare_router`] served by the same
//!   connection loop as `latchkey serve`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey_core::catalogue::{
    ACCOUNT_API_TOKENS_READ, ACCOUNT_API_TOKENS_WRITE, API_TOKENS_WRITE,
};
use latchkey_core::{Id, Owner, Policy, ResourceKey, ResourceKind, Secret, SecretHash, Token};
use latchkey_store::{Account, NewAdmin, User};
use time::{Duration, OffsetDateTime};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Seed a fresh database through the bulk path.
    Seed {
        /// Database URL (must be new).
        #[arg(long)]
        database: String,
        /// Total tokens to store.
        #[arg(long, default_value_t = 1_000_000)]
        tokens: u64,
        /// User tokens whose secrets are written to `<out>/user-secrets.txt`.
        #[arg(long, default_value_t = 100_000)]
        user_tokens: u64,
        /// Directory for the secrets and ids.
        #[arg(long)]
        out: PathBuf,
    },
    /// Serve the bare ceiling endpoint.
    Bare {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
    },
}

const LIST_ACCOUNT_TOKENS: u64 = 500;
const TOKENS_PER_OTHER_ACCOUNT: u64 = 500;
const BATCH: usize = 50_000;

fn allow(group: &str, key: ResourceKey) -> Policy {
    Policy::allow_one(group.parse().expect("built-in id"), key)
}

fn token(owner: Owner, policy: &Policy, issued_on: OffsetDateTime) -> Token {
    let mut token = Token::new(owner, "bench", issued_on);
    token.policies = vec![policy.clone()];
    token
}

fn account_key(id: Id) -> ResourceKey {
    ResourceKey::specific(ResourceKind::Account, id.to_string())
}

async fn seed(database: &str, total: u64, user_tokens: u64, out: PathBuf) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&out)?;
    let store = latchkey_store::open(database).await?;
    anyhow::ensure!(store.count_users().await? == 0, "{database} is not empty");
    let start = OffsetDateTime::now_utc().replace_nanosecond(0)? - Duration::days(1);

    // The admin: API Tokens Write on the user, Account API Tokens Write on the account.
    let user = User {
        id: Id::random(),
        email: "bench@latchkey.local".into(),
        created_on: start,
    };
    let account = Account {
        id: Id::random(),
        name: "bench".into(),
        created_on: start,
    };
    let mut admin_token = token(
        Owner::User(user.id),
        &allow(
            API_TOKENS_WRITE,
            ResourceKey::specific(ResourceKind::User, user.id.to_string()),
        ),
        start,
    );
    // A second account for the create benchmark, so its quota count starts at zero.
    let creates = Account {
        id: Id::random(),
        name: "creates".into(),
        created_on: start,
    };
    for id in [account.id, creates.id] {
        admin_token
            .policies
            .push(allow(ACCOUNT_API_TOKENS_WRITE, account_key(id)));
    }
    let admin_secret = Secret::generate(latchkey_core::SecretKind::User);
    let seeding = latchkey_core::AuditEvent::new(latchkey_core::AuditAction::TokensImport, start);
    store
        .create_admin(
            &NewAdmin {
                user: user.clone(),
                account: account.clone(),
                token: admin_token,
                hash: admin_secret.hash(),
            },
            &seeding,
        )
        .await?;
    store.create_account(&creates).await?;
    store.add_member(creates.id, user.id, start).await?;

    let mut secrets = std::io::BufWriter::new(std::fs::File::create(out.join("user-secrets.txt"))?);
    let mut batch: Vec<(Token, SecretHash)> = Vec::with_capacity(BATCH);
    let mut stored = 0u64;
    let flush = |batch: &mut Vec<(Token, SecretHash)>| {
        let batch = std::mem::take(batch);
        let store = std::sync::Arc::clone(&store);
        // One audit entry per batch, each with its own id.
        let seeding =
            latchkey_core::AuditEvent::new(latchkey_core::AuditAction::TokensImport, start);
        async move { store.import_tokens(&batch, &seeding).await }
    };
    let second = |i: u64| start + Duration::milliseconds(i as i64);

    // 500 tokens on the admin's account, each allowed to read it (the list and authorize
    // benchmarks use the first one's secret).
    let read_account = allow(ACCOUNT_API_TOKENS_READ, account_key(account.id));
    for i in 0..LIST_ACCOUNT_TOKENS {
        let secret = Secret::generate(latchkey_core::SecretKind::Account);
        if i == 0 {
            std::fs::write(out.join("account-secret"), secret.expose())?;
        }
        batch.push((
            token(Owner::Account(account.id), &read_account, second(stored)),
            secret.hash(),
        ));
        stored += 1;
    }
    // User tokens with known secrets, for verify.
    let read_user = allow(
        latchkey_core::catalogue::API_TOKENS_READ,
        ResourceKey::specific(ResourceKind::User, user.id.to_string()),
    );
    for _ in 0..user_tokens {
        let secret = Secret::generate(latchkey_core::SecretKind::User);
        writeln!(secrets, "{}", secret.expose())?;
        batch.push((
            token(Owner::User(user.id), &read_user, second(stored)),
            secret.hash(),
        ));
        stored += 1;
        if batch.len() == BATCH {
            flush(&mut batch).await?;
        }
    }
    // The rest: account tokens on other accounts, 500 each.
    let mut other = Id::random();
    let mut read_other = allow(ACCOUNT_API_TOKENS_READ, account_key(other));
    let mut on_other = 0;
    while stored < total {
        if on_other == TOKENS_PER_OTHER_ACCOUNT {
            other = Id::random();
            read_other = allow(ACCOUNT_API_TOKENS_READ, account_key(other));
            on_other = 0;
        }
        let hash = Secret::generate(latchkey_core::SecretKind::Account).hash();
        batch.push((
            token(Owner::Account(other), &read_other, second(stored)),
            hash,
        ));
        stored += 1;
        on_other += 1;
        if batch.len() == BATCH {
            flush(&mut batch).await?;
        }
    }
    flush(&mut batch).await?;
    secrets.flush()?;
    std::fs::write(out.join("admin-token"), admin_secret.expose())?;
    std::fs::write(
        out.join("ids.json"),
        serde_json::json!({"user_id": user.id, "account_id": account.id, "create_account_id": creates.id})
            .to_string(),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "seeded {stored} tokens in {seconds:.1} s ({:.0} tokens/s)",
        stored as f64 / seconds
    );
    Ok(())
}

async fn bare(listen: SocketAddr) -> anyhow::Result<()> {
    let app = latchkey_bench::bare_router();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .context("binding")?;
    // The same connection loop as `latchkey serve`, so the ceiling is the same HTTP stack.
    let timeouts = latchkey_server::serve::connections::ConnectionLimits {
        header: std::time::Duration::from_secs(10),
        shutdown_grace: std::time::Duration::from_secs(1),
        max_connections: 10_000,
    };
    latchkey_server::serve::connections::serve(listener, app, timeouts, std::future::pending())
        .await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Seed {
            database,
            tokens,
            user_tokens,
            out,
        } => seed(&database, tokens, user_tokens, out).await,
        Command::Bare { listen } => bare(listen).await,
    }
}
