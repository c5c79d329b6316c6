//! Authentication: the only place where an `Authorization` header becomes a [`Principal`],
//! and what else decides who may call: the client's address ([`client_ip`]) and the rate
//! limits ([`rate_limit`]). Whether a principal may do an operation is decided per handler,
//! in [`crate::http::authz`]. Nothing here knows the HTTP layer's state or errors, so the
//! server's modules depend on each other in one direction only.
//!
//! Header -> `Bearer <token68>` -> secret format and checksum -> SHA-256 -> token cache or
//! store -> status, time window and client address. Secrets are never logged: only token
//! ids are. The HTTP extractors that call [`authenticate`] are in [`crate::http::extract`].

pub mod client_ip;
pub mod rate_limit;

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use latchkey_core::{Clock, Owner, Secret, Unusable};
use latchkey_store::{Store, StoreError};

use crate::caches::last_used::LastUsed;
use crate::caches::tokens::{CachedToken, TokenCache};
use crate::metrics::AuthOutcome;
use rate_limit::{Allowance, RateLimits, Refusal};

/// An authenticated caller: a usable token and the address it called from.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token that authenticated the request.
    pub token: Arc<CachedToken>,
    /// The client's address.
    pub client_ip: IpAddr,
}

/// Why authentication failed; each extractor maps it to its own error contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No token latchkey knows.
    Unknown(Unknown),
    /// A known token that cannot be used now, from this address.
    Refused(Unusable),
}

/// `token68` of RFC 7235: `[A-Za-z0-9-._~+/]+ =*`.
fn is_token68(value: &str) -> bool {
    let body = value.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

/// The credential of a `Bearer <token68>` header value.
fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && is_token68(credential)).then_some(credential)
}

/// Why a request carries no token latchkey knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// No credentials at all.
    Missing,
    /// Global API Key headers instead of a bearer token.
    GlobalKey,
    /// An `Authorization` header that is not `Bearer <token68>`.
    MalformedHeader,
    /// A well-formed credential that is not (or no longer) a latchkey token.
    NotAToken,
}

/// What authentication reads: built per request from the server's state.
pub struct Authenticator<'a> {
    /// The token cache in front of the store.
    pub cache: &'a TokenCache,
    /// The store, asked on a cache miss.
    pub store: &'a dyn Store,
    /// The failed-authentication and per-owner limits.
    pub rates: &'a RateLimits,
    /// Where a successful use is recorded.
    pub last_used: &'a LastUsed,
    /// The time, read once a token is found (as a usable token is judged).
    pub clock: &'a dyn Clock,
}

/// Why authentication could not be decided: the store failed, or a limit refused the request.
#[derive(Debug)]
pub enum AuthError {
    /// The store could not be read.
    Store(StoreError),
    /// A rate limit refused the request.
    Limited(Refusal),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        AuthError::Store(e)
    }
}

impl From<Refusal> for AuthError {
    fn from(refusal: Refusal) -> Self {
        AuthError::Limited(refusal)
    }
}

/// Finds the token a request presents, without judging whether it is usable now.
pub async fn lookup(
    headers: &HeaderMap,
    auth: &Authenticator<'_>,
) -> Result<Result<Arc<CachedToken>, Unknown>, AuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        let global_key = headers.contains_key("x-auth-key") || headers.contains_key("x-auth-email");
        return Ok(Err(if global_key {
            Unknown::GlobalKey
        } else {
            Unknown::Missing
        }));
    };
    let Some(credential) = bearer(value.as_bytes()) else {
        return Ok(Err(Unknown::MalformedHeader));
    };
    let Ok((secret, kind)) = Secret::parse(credential) else {
        return Ok(Err(Unknown::NotAToken));
    };
    match auth
        .cache
        .lookup(auth.store, &secret.hash(), std::time::Instant::now())
        .await?
    {
        Some(token) if token.owner.secret_kind() == kind => Ok(Ok(token)),
        _ => Ok(Err(Unknown::NotAToken)),
    }
}

/// [`lookup`], within the failed-authentication limit of the client's address (see
/// [`rate_limit`]): refused outright while the address is blocked, and a presented
/// credential that is not a token counts against it.
pub async fn limited_lookup(
    headers: &HeaderMap,
    client_ip: IpAddr,
    auth: &Authenticator<'_>,
) -> Result<Result<Arc<CachedToken>, Unknown>, AuthError> {
    auth.rates.refuse_if_blocked(client_ip)?;
    let found = lookup(headers, auth).await?;
    if matches!(found, Err(unknown) if unknown != Unknown::Missing) {
        auth.rates.record_failure(client_ip)?;
    }
    Ok(found)
}

/// A usable token presented from `client_ip` that `serves_here` accepts (a verify endpoint
/// accepts only its own family's tokens), counted against its owner's allowance (returned for
/// the answer's `x-ratelimit-*` headers), its use recorded; or why there is none. A token
/// `serves_here` refuses is answered as unknown, and its use is not recorded. Counted in the
/// metrics by outcome.
pub async fn authenticate(
    headers: &HeaderMap,
    client_ip: IpAddr,
    auth: &Authenticator<'_>,
    serves_here: impl FnOnce(&CachedToken) -> bool,
) -> Result<Result<(Principal, Option<Allowance>), Failure>, AuthError> {
    let outcome = check(headers, client_ip, auth, serves_here).await?;
    crate::metrics::authentication(match &outcome {
        Ok(_) => AuthOutcome::Ok,
        Err(failure) => failure.outcome(),
    });
    Ok(outcome)
}

async fn check(
    headers: &HeaderMap,
    client_ip: IpAddr,
    auth: &Authenticator<'_>,
    serves_here: impl FnOnce(&CachedToken) -> bool,
) -> Result<Result<(Principal, Option<Allowance>), Failure>, AuthError> {
    let token = match limited_lookup(headers, client_ip, auth).await? {
        Ok(token) => token,
        Err(unknown) => return Ok(Err(Failure::Unknown(unknown))),
    };
    let now = auth.clock.now();
    if let Err(reason) = token.check_usable(now, client_ip) {
        tracing::debug!(token_id = %token.id, ?reason, "refused token");
        auth.rates.record_failure(client_ip)?;
        return Ok(Err(Failure::Refused(reason)));
    }
    if !serves_here(&token) {
        return Ok(Err(Failure::Unknown(Unknown::NotAToken)));
    }
    let allowance = auth.rates.check_owner(token.owner)?;
    auth.last_used.record(&token, now);
    Ok(Ok((Principal { token, client_ip }, allowance)))
}

impl Failure {
    /// This failure's label in `latchkey_authentications_total`.
    fn outcome(&self) -> AuthOutcome {
        match self {
            Failure::Unknown(Unknown::Missing) => AuthOutcome::Missing,
            Failure::Unknown(Unknown::GlobalKey) => AuthOutcome::GlobalKey,
            Failure::Unknown(Unknown::MalformedHeader) => AuthOutcome::MalformedHeader,
            Failure::Unknown(Unknown::NotAToken) => AuthOutcome::NotAToken,
            Failure::Refused(Unusable::Disabled) => AuthOutcome::Disabled,
            Failure::Refused(Unusable::Expired) => AuthOutcome::Expired,
            Failure::Refused(Unusable::NotYetValid) => AuthOutcome::NotYetValid,
            Failure::Refused(Unusable::AddressRefused(_)) => AuthOutcome::AddressRefused,
        }
    }
}

impl Principal {
    /// The user this principal acts for, if it is a user token.
    pub fn user(&self) -> Option<latchkey_core::Id> {
        match self.token.owner {
            Owner::User(id) => Some(id),
            Owner::Account(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_needs_a_token68_credential() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"bearer abc=="), Some("abc=="));
        for bad in [
            &b"Bearer "[..],
            b"Bearer",
            b"Bearer  abc",
            b"Bearer a b",
            b"Bearer \"abc\"",
            b"Basic abc",
            b"Bearer ===",
            b"Bearer \xff",
        ] {
            assert_eq!(bearer(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
