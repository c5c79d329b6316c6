//! What every handler shares.

use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use latchkey_core::{Catalogue, Clock};
use latchkey_store::{Change, Store};

use crate::auth::rate_limit::RateLimits;
use crate::caches::last_used::LastUsed;
use crate::caches::memberships::MembershipCache;
use crate::caches::tokens::TokenCache;

/// Limits that shape the API's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Tokens one user may own.
    pub user_token_quota: u64,
    /// Tokens one account may own.
    pub account_token_quota: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Tokens kept in the in-memory cache (0 turns it off).
    pub token_cache_size: u64,
    /// Longest a cached token is used before it is read again.
    pub token_cache_ttl: Duration,
    /// API requests per owner per 5 minutes (0 turns the limit off).
    pub rate_limit: u32,
    /// Failed authentications per client address per 10 s (0 turns the limit off).
    pub auth_failure_limit: u32,
    /// Longest a request's body may take to arrive.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            user_token_quota: 50,
            account_token_quota: 500,
            max_body_bytes: 1024 * 1024,
            token_cache_size: 100_000,
            token_cache_ttl: Duration::from_secs(30),
            rate_limit: 1200,
            auth_failure_limit: 20,
            body_timeout: Duration::from_secs(30),
        }
    }
}

/// Shared state of the router: storage, catalogue, clock, limits and the last-use recorder.
///
/// One `Arc` around all of it: axum clones the state for every request, and one reference
/// count is cheaper to touch from both cores than ten.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// What [`AppState`] holds; reached through `Deref`.
#[derive(Clone)]
pub struct Shared {
    /// Storage backend.
    pub store: Arc<dyn Store>,
    /// Permission groups.
    pub catalogue: Arc<Catalogue>,
    /// Source of "now".
    pub clock: Arc<dyn Clock>,
    /// Quotas and sizes.
    pub limits: Limits,
    /// Pending last-use times, flushed in batches.
    pub last_used: Arc<LastUsed>,
    /// Token lookups by secret hash.
    pub cache: Arc<TokenCache>,
    /// Membership answers.
    pub memberships: Arc<MembershipCache>,
    /// Proxies whose `X-Forwarded-For` is believed (see [`crate::auth::client_ip`]).
    pub trusted_proxies: Arc<[IpNet]>,
    /// Whether a token may only create tokens within its own grants.
    pub strict_delegation: bool,
    /// Requests per owner and failed authentications per address.
    pub rates: Arc<RateLimits>,
    /// The keys GitHub signs secret scanning alerts with.
    pub github_keys: Arc<crate::leaks::github::GithubKeys>,
    /// Email to people, when an SMTP server is set.
    pub mailer: Option<Arc<crate::mail::Mailer>>,
}

impl AppState {
    /// State with the built-in catalogue.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, limits: Limits) -> Self {
        AppState(Arc::new(Shared {
            store,
            catalogue: Arc::new(Catalogue::builtin()),
            clock,
            limits,
            last_used: Arc::new(LastUsed::default()),
            cache: Arc::new(TokenCache::new(
                limits.token_cache_size,
                limits.token_cache_ttl,
            )),
            memberships: Arc::new(MembershipCache::new(limits.token_cache_size)),
            trusted_proxies: Arc::from(Vec::new()),
            strict_delegation: false,
            rates: Arc::new(RateLimits::new(
                limits.rate_limit,
                limits.auth_failure_limit,
            )),
            github_keys: Arc::new(crate::leaks::github::GithubKeys::new(
                crate::leaks::github::KeySource::default(),
            )),
            mailer: None,
        }))
    }

    /// Sends email through `mailer`.
    pub fn with_mailer(mut self, mailer: Option<crate::mail::Mailer>) -> Self {
        Arc::make_mut(&mut self.0).mailer = mailer.map(Arc::new);
        self
    }

    /// Reads GitHub's secret scanning keys from `source`.
    pub fn with_github_keys(mut self, source: crate::leaks::github::KeySource) -> Self {
        Arc::make_mut(&mut self.0).github_keys =
            Arc::new(crate::leaks::github::GithubKeys::new(source));
        self
    }

    /// Uses this catalogue (built-in plus operator-defined groups).
    pub fn with_catalogue(mut self, catalogue: Catalogue) -> Self {
        Arc::make_mut(&mut self.0).catalogue = Arc::new(catalogue);
        self
    }

    /// Believes `X-Forwarded-For` from these proxies.
    pub fn with_trusted_proxies(mut self, proxies: Vec<IpNet>) -> Self {
        Arc::make_mut(&mut self.0).trusted_proxies = Arc::from(proxies);
        self
    }

    /// Applies the store's change feed (see [`latchkey_store::Store::watch`]) to the caches
    /// until it ends.
    pub async fn follow(&self, mut changes: tokio::sync::mpsc::Receiver<Change>) {
        while let Some(change) = changes.recv().await {
            match change {
                Change::Token(id) => self.cache.forget(id),
                Change::Membership { account, user } => self.memberships.forget(account, user),
                Change::Memberships => self.memberships.clear(),
                Change::Resync => {
                    self.cache.clear();
                    self.memberships.clear();
                }
            }
        }
    }

    /// Turns strict delegation on or off.
    pub fn with_strict_delegation(mut self, strict: bool) -> Self {
        Arc::make_mut(&mut self.0).strict_delegation = strict;
        self
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
