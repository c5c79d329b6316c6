//! `latchkey serve`: open the database, create the first admin if it is empty, listen, and
//! shut down cleanly on SIGTERM or SIGINT (in-flight requests finish within the grace
//! period, last-use times are flushed).

pub mod connections;
pub mod permission_groups_file;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use latchkey_core::{Clock, SystemClock};
use latchkey_store::{Store, StoreError};

use crate::admin;
use crate::state::{AppState, Limits};

/// Everything `serve` needs. Its `Debug` output hides the database URL's password.
#[derive(Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database URL.
    pub database: String,
    /// Quotas and body limit.
    pub limits: Limits,
    /// Where the first admin token's secret is written.
    pub admin_token_file: Option<PathBuf>,
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Operator-defined permission groups.
    pub permission_groups: Option<PathBuf>,
    /// Strict delegation.
    pub strict_delegation: bool,
    /// Where GitHub's secret scanning keys are read.
    pub github_scanning_keys: crate::leaks::github::KeySource,
    /// The SMTP server, if any.
    pub smtp: crate::mail::SmtpSettings,
    /// Header and shutdown timeouts, and the connection cap.
    pub timeouts: crate::serve::connections::ConnectionLimits,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("database", &latchkey_store::redacted_url(&self.database))
            .field("limits", &self.limits)
            .field("admin_token_file", &self.admin_token_file)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("permission_groups", &self.permission_groups)
            .field("strict_delegation", &self.strict_delegation)
            .field("github_scanning_keys", &self.github_scanning_keys)
            .field("smtp", &self.smtp)
            .field("timeouts", &self.timeouts)
            .finish()
    }
}

/// The flag that names the first admin token's file.
const ADMIN_TOKEN_FLAG: &str = "--admin-token-file";

/// Email of the user created on an empty database.
pub const FIRST_ADMIN_EMAIL: &str = "admin@latchkey.local";

/// Runs the service until a shutdown signal.
pub async fn run(config: ServeConfig) -> anyhow::Result<()> {
    let catalogue = match &config.permission_groups {
        Some(path) => crate::serve::permission_groups_file::load(path)?,
        None => latchkey_core::Catalogue::builtin(),
    };
    let token_file = config
        .admin_token_file
        .clone()
        .unwrap_or_else(|| admin::default_token_file(&config.database));
    // A new SQLite file is an empty database: with a token file already there, refuse before
    // the file is created (an existing database is judged once it is open).
    if latchkey_store::sqlite_file(&config.database).is_some_and(|db| !db.exists()) {
        admin::refuse_existing(&token_file, ADMIN_TOKEN_FLAG)?;
    }
    let mailer = crate::mail::Mailer::new(&config.smtp)?;
    let store = latchkey_store::open(&config.database)
        .await
        .with_context(|| {
            format!(
                "opening database {}",
                latchkey_store::redacted_url(&config.database)
            )
        })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    first_admin(store.as_ref(), clock.as_ref(), &token_file).await?;

    let state = AppState::new(Arc::clone(&store), clock, config.limits)
        .with_catalogue(catalogue)
        .with_trusted_proxies(config.trusted_proxies)
        .with_strict_delegation(config.strict_delegation)
        .with_github_keys(config.github_scanning_keys)
        .with_mailer(mailer);
    let flusher = state.last_used.spawn_flusher(Arc::clone(&store));
    let housekeeping = state.clone();
    let forgetter = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        for second in 0u64.. {
            every.tick().await;
            crate::audit::record_throttled(&housekeeping, std::time::Instant::now(), false).await;
            if second % 60 == 59 {
                housekeeping.rates.forget_idle();
            }
            if second % 5 == 4 {
                // Folds histogram samples into their buckets, so they cannot pile up
                // between scrapes.
                crate::metrics::handle().run_upkeep();
            }
        }
    });
    if let Some(changes) = store.watch() {
        let state = state.clone();
        tokio::spawn(async move { state.follow(changes).await });
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "latchkey listening");
    crate::serve::connections::serve(
        listener,
        crate::router(state.clone()),
        config.timeouts,
        shutdown_signal(),
    )
    .await;
    flusher.abort();
    forgetter.abort();
    crate::audit::record_throttled(&state, std::time::Instant::now(), true).await;
    state.last_used.flush(store.as_ref()).await;
    tracing::info!("latchkey stopped");
    Ok(())
}

/// On an empty database: a first user, account and admin token, its secret left in
/// `token_file` by [`admin::commit_with_secret_file`] (never lost, never over an existing
/// file). When several nodes start on one empty database, one of them commits; the others'
/// inserts collide on the admin's email, and they carry on.
async fn first_admin(
    store: &dyn Store,
    clock: &dyn Clock,
    token_file: &std::path::Path,
) -> anyhow::Result<()> {
    if store.count_users().await? > 0 {
        return Ok(());
    }
    let (new, created) = admin::new_admin(FIRST_ADMIN_EMAIL, "Default account", clock.now());
    let committed = admin::commit_with_secret_file(
        token_file,
        ADMIN_TOKEN_FLAG,
        &created.secret,
        store.create_admin(&new, &admin::audit_event(&new)),
    )
    .await;
    if let Err(e) = committed {
        if let Some(StoreError::Conflict(_)) = e.downcast_ref::<StoreError>() {
            tracing::info!("another node created the first admin token");
            return Ok(());
        }
        return Err(e);
    }
    tracing::info!(
        file = %token_file.display(),
        user_id = %created.user_id,
        account_id = %created.account_id,
        token_id = %created.token_id,
        "empty database: created the first admin token; its secret is in the file"
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let config = ServeConfig {
            listen: "127.0.0.1:1".parse().unwrap(),
            database: "postgres://latchkey:hunter2@db/latchkey".into(),
            limits: Limits::default(),
            admin_token_file: None,
            trusted_proxies: Vec::new(),
            permission_groups: None,
            strict_delegation: false,
            github_scanning_keys: Default::default(),
            smtp: Default::default(),
            timeouts: crate::serve::connections::ConnectionLimits {
                header: std::time::Duration::from_secs(1),
                shutdown_grace: std::time::Duration::from_secs(1),
                max_connections: 1,
            },
        };
        assert!(!format!("{config:?}").contains("hunter2"));

        let (_, created) = admin::new_admin("a@example.com", "A", time::OffsetDateTime::UNIX_EPOCH);
        let secret = created.secret.expose().to_owned();
        assert!(!format!("{created:?}").contains(&secret[5..]));
        let value = latchkey_api::SecretValue::new(secret.clone());
        assert_eq!(format!("{value:?}"), "SecretValue(cfut_[REDACTED])");
        let token: latchkey_api::Token = serde_json::from_value(serde_json::json!({
            "id": "ed17574386854bf78a67040be0a770b0", "name": "t", "status": "active",
            "issued_on": "2026-01-01T00:00:00Z", "modified_on": "2026-01-01T00:00:00Z",
            "policies": [], "value": secret,
        }))
        .unwrap();
        assert_eq!(token.value.as_ref().unwrap().expose(), secret);
        assert!(!format!("{token:?}").contains(&secret[5..]));
    }
}
