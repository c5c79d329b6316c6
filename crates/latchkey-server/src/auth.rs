//! Authentication: the only place where an `Authorization` header becomes a [`Principal`].
//!
//! Header -> `Bearer <token68>` -> secret format and checksum -> SHA-256 -> store lookup ->
//! status, time window and client address. Secrets are never logged: only token ids are.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use latchkey_core::{Owner, Secret, Unusable};

use crate::cache::CachedToken;
use crate::error::ApiError;
use crate::state::AppState;

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

/// The client's address: the socket peer (set by `into_make_service_with_connect_info`),
/// or what a trusted proxy says (see [`crate::client_ip`]).
pub fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    crate::client_ip::resolve(peer, &parts.headers, &state.trusted_proxies)
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

impl Unknown {
    /// The error for this case; a well-formed credential that is not a token gets `invalid`
    /// (403 9109 on management endpoints, 401 1000 on verify and authorize).
    pub fn into_error(self, invalid: fn() -> ApiError) -> ApiError {
        match self {
            Unknown::Missing => ApiError::missing_credentials(),
            Unknown::GlobalKey => ApiError::unknown_global_key(),
            Unknown::MalformedHeader => ApiError::malformed_authorization(),
            Unknown::NotAToken => invalid(),
        }
    }
}

/// Finds the token a request presents, without judging whether it is usable now.
pub async fn lookup(
    parts: &Parts,
    state: &AppState,
) -> Result<Result<Arc<CachedToken>, Unknown>, ApiError> {
    let headers = &parts.headers;
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
    match state
        .cache
        .lookup(
            state.store.as_ref(),
            &secret.hash(),
            std::time::Instant::now(),
        )
        .await?
    {
        Some(token) if token.owner.secret_kind() == kind => Ok(Ok(token)),
        _ => Ok(Err(Unknown::NotAToken)),
    }
}

/// [`lookup`], within the failed-authentication limit of the client's address (see
/// [`crate::rate_limit`]): refused outright while the address is blocked, and a presented
/// credential that is not a token counts against it.
async fn limited_lookup(
    parts: &Parts,
    state: &AppState,
    client_ip: IpAddr,
) -> Result<Result<Arc<CachedToken>, Unknown>, ApiError> {
    state.rates.refuse_if_blocked(client_ip)?;
    let found = lookup(parts, state).await?;
    if matches!(found, Err(unknown) if unknown != Unknown::Missing) {
        state.rates.record_failure(client_ip)?;
    }
    Ok(found)
}

/// [`check`], counted in the metrics by outcome.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<Result<Principal, Failure>, ApiError> {
    let outcome = check(parts, state).await?;
    crate::metrics::authentication(outcome.as_ref().err().copied());
    Ok(outcome)
}

async fn check(parts: &Parts, state: &AppState) -> Result<Result<Principal, Failure>, ApiError> {
    let client_ip = client_ip(parts, state);
    let token = match limited_lookup(parts, state, client_ip).await? {
        Ok(token) => token,
        Err(unknown) => return Ok(Err(Failure::Unknown(unknown))),
    };
    let now = state.clock.now();
    if let Err(reason) = token.check_usable(now, client_ip) {
        tracing::debug!(token_id = %token.id, ?reason, "refused token");
        state.rates.record_failure(client_ip)?;
        return Ok(Err(Failure::Refused(reason)));
    }
    if let Some(allowance) = state.rates.check_owner(token.owner)? {
        crate::observe::report_allowance(allowance);
    }
    state.last_used.record(&token, now);
    Ok(Ok(Principal { token, client_ip }))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)
            .await?
            .map_err(|failure| match failure {
                Failure::Unknown(unknown) => unknown.into_error(ApiError::invalid_access_token),
                Failure::Refused(Unusable::AddressRefused(ip)) => ApiError::refused_location(ip),
                Failure::Refused(_) => ApiError::invalid_access_token(),
            })
    }
}

/// The principal of a verify endpoint: every refusal of a presented token is 401
/// `1000 Invalid API Token`.
#[derive(Debug, Clone)]
pub struct VerifyPrincipal(pub Principal);

impl FromRequestParts<AppState> for VerifyPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)
            .await?
            .map(VerifyPrincipal)
            .map_err(|failure| match failure {
                Failure::Unknown(unknown) => unknown.into_error(ApiError::invalid_api_token),
                Failure::Refused(_) => ApiError::invalid_api_token(),
            })
    }
}

/// The token a request presents, usable or not, and the client's address: for the
/// authorize endpoints, which explain refusals instead of failing.
#[derive(Debug, Clone)]
pub struct Presented {
    /// The token, or why there is none.
    pub token: Result<Arc<CachedToken>, Unknown>,
    /// The client's address.
    pub client_ip: IpAddr,
}

impl FromRequestParts<AppState> for Presented {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client_ip = client_ip(parts, state);
        Ok(Presented {
            token: limited_lookup(parts, state, client_ip).await?,
            client_ip,
        })
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
