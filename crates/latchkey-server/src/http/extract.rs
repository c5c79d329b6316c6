//! Request extractors: the caller ([`Principal`], [`VerifyPrincipal`], [`Presented`]), the
//! path's ids, the query and the body. Every malformed input becomes a Cloudflare envelope
//! naming the field, so that no plain-text rejection of axum's ever reaches a client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use latchkey_core::{Id, Owner, Unusable};
use latchkey_store::{AuditQuery, Direction, ListQuery};
use serde::de::DeserializeOwned;

use crate::auth::{self, Authenticator, Failure, Principal, Unknown};
use crate::caches::tokens::CachedToken;
use crate::http::codes;
use crate::http::error::{pointer_segment, ApiError};
use crate::state::AppState;

/// The client's address: the socket peer (set by `into_make_service_with_connect_info`),
/// or what a trusted proxy says (see [`crate::auth::client_ip`]).
fn client_ip(parts: &Parts, state: &AppState) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    auth::client_ip::resolve(peer, &parts.headers, &state.trusted_proxies)
}

fn authenticator(state: &AppState) -> Authenticator<'_> {
    Authenticator {
        cache: &state.cache,
        store: state.store.as_ref(),
        rates: &state.rates,
        last_used: &state.last_used,
        clock: state.clock.as_ref(),
    }
}

/// Authenticates the request with a token `serves_here` accepts; a usable token's allowance
/// goes on the answer.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
    serves_here: impl FnOnce(&CachedToken) -> bool,
) -> Result<Result<Principal, Failure>, ApiError> {
    let outcome = auth::authenticate(
        &parts.headers,
        client_ip(parts, state),
        &authenticator(state),
        serves_here,
    )
    .await?;
    Ok(outcome.map(|(principal, allowance)| {
        if let Some(allowance) = allowance {
            crate::http::observe::report_allowance(allowance);
        }
        principal
    }))
}

/// The error for a request with no known token; a well-formed credential that is not a
/// token gets `invalid` (403 9109 on management endpoints, 401 1000 on verify and authorize).
pub(crate) fn unknown_token_error(unknown: Unknown, invalid: fn() -> ApiError) -> ApiError {
    match unknown {
        Unknown::Missing => ApiError::missing_credentials(),
        Unknown::GlobalKey => ApiError::unknown_global_key(),
        Unknown::MalformedHeader => ApiError::malformed_authorization(),
        Unknown::NotAToken => invalid(),
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, |_| true)
            .await?
            .map_err(|failure| match failure {
                Failure::Unknown(unknown) => {
                    unknown_token_error(unknown, ApiError::invalid_access_token)
                }
                Failure::Refused(Unusable::AddressRefused(ip)) => ApiError::refused_location(ip),
                Failure::Refused(_) => ApiError::invalid_access_token(),
            })
    }
}

/// The principal of a verify endpoint, a token of the endpoint's own family (a user token
/// on `/user/tokens/verify`, that account's token on the account's): every refusal of a
/// presented token, another family's included, is 401 `1000 Invalid API Token`.
#[derive(Debug, Clone)]
pub struct VerifyPrincipal(pub Principal);

impl FromRequestParts<AppState> for VerifyPrincipal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let family = Family::from_request_parts(parts, state).await?;
        let of_this_family = |token: &CachedToken| match (family, token.owner) {
            (Family::User, Owner::User(_)) => true,
            (Family::Account(account), Owner::Account(owner)) => account == owner,
            _ => false,
        };
        authenticate(parts, state, of_this_family)
            .await?
            .map(VerifyPrincipal)
            .map_err(|failure| match failure {
                Failure::Unknown(unknown) => {
                    unknown_token_error(unknown, ApiError::invalid_api_token)
                }
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
            token: auth::limited_lookup(&parts.headers, client_ip, &authenticator(state)).await?,
            client_ip,
        })
    }
}

/// Which token family a route serves, from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/user/tokens...`
    User,
    /// `/accounts/{account_id}/tokens...`
    Account(Id),
}

/// Reads a path parameter as an [`Id`]; a malformed one is 404 "could not route".
fn path_id(parts: &Parts, params: &RawPathParams, name: &str) -> Result<Option<Id>, ApiError> {
    params
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| {
            value
                .parse()
                .map_err(|_| ApiError::could_not_route(parts.uri.path()))
        })
        .transpose()
}

async fn raw_params(parts: &mut Parts, state: &AppState) -> Result<RawPathParams, ApiError> {
    RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::could_not_route(parts.uri.path()))
}

impl FromRequestParts<AppState> for Family {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = raw_params(parts, state).await?;
        Ok(match path_id(parts, &params, "account_id")? {
            Some(account) => Family::Account(account),
            None => Family::User,
        })
    }
}

/// The `{token_id}` of the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenId(pub Id);

impl FromRequestParts<AppState> for TokenId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let params = raw_params(parts, state).await?;
        path_id(parts, &params, "token_id")?
            .map(TokenId)
            .ok_or_else(|| ApiError::could_not_route(parts.uri.path()))
    }
}

/// A JSON body of type `T`. Syntax errors are 6007; a missing or mistyped field is 1003
/// (1010 for timestamps) with `source.pointer` naming it.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

async fn body_bytes(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let limit = state.limits.body_timeout;
    let read = tokio::time::timeout(limit, Bytes::from_request(req, state))
        .await
        .map_err(|_| ApiError::body_timeout(limit))?;
    read.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::body_too_large(state.limits.max_body_bytes)
        } else {
            ApiError::invalid(codes::MALFORMED_JSON, "Could not read the request body", "")
        }
    })
}

/// Parses `bytes` as `T`, mapping serde's error to a field-naming [`ApiError`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            codes::INVALID_FIELD,
            "A JSON request body is required",
            "",
        ));
    }
    // The common case in one pass; only a failing body is parsed again to say what is wrong:
    // syntax first (6007), then shape (1003/1010 naming the field).
    if let Ok(parsed) = serde_json::from_slice(bytes) {
        return Ok(parsed);
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed_json(&e))?;
    serde_path_to_error::deserialize(&value).map_err(|error| {
        let mut pointer = json_pointer(error.path());
        let message = error.inner().to_string();
        // serde reports a missing field at its parent; point at the field itself.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            pointer = format!("{pointer}/{}", pointer_segment(field));
        }
        let code = if pointer.ends_with("/not_before") || pointer.ends_with("/expires_on") {
            codes::INVALID_TIMESTAMP
        } else {
            codes::INVALID_FIELD
        };
        ApiError::invalid(
            code,
            format!("Invalid request body at {pointer}: {message}"),
            pointer,
        )
    })
}

fn malformed_json(error: &serde_json::Error) -> ApiError {
    ApiError::invalid(
        codes::MALFORMED_JSON,
        format!("Malformed JSON in request body: {error}"),
        "",
    )
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        pointer.push('/');
        match segment {
            Segment::Seq { index } => pointer.push_str(&index.to_string()),
            Segment::Map { key } => pointer.push_str(&pointer_segment(key)),
            Segment::Enum { variant } => pointer.push_str(&pointer_segment(variant)),
            Segment::Unknown => pointer.push('?'),
        }
    }
    pointer
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A request body as sent (within the body limit and timeout), for handlers that check a
/// signature over its exact bytes.
#[derive(Debug)]
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        body_bytes(req, state).await.map(RawBody)
    }
}

/// The client's address (see [`crate::auth::client_ip`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(ClientIp(client_ip(parts, state)))
    }
}

/// The body of a roll: `{}`, any JSON object, `null` (what the Go SDK sends for empty
/// params), or nothing at all (with or without a Content-Type).
#[derive(Debug)]
pub struct RollBody;

impl FromRequest<AppState> for RollBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(RollBody);
        }
        parse_json::<Option<serde_json::Map<String, serde_json::Value>>>(&bytes).map(|_| RollBody)
    }
}

/// Query parameters as ordered pairs; invalid encoding is a 400 envelope.
async fn query_pairs(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Vec<(String, String)>, ApiError> {
    Query::<Vec<(String, String)>>::from_request_parts(parts, state)
        .await
        .map(|Query(pairs)| pairs)
        .map_err(|_| ApiError::invalid(codes::INVALID_QUERY, "Malformed query string", "/query"))
}

fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A whole number written as an integer or as a float with no fraction (`5`, `5.0`).
fn whole_number(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse::<u64>() {
        return Some(n);
    }
    let f: f64 = text.parse().ok()?;
    (f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f < 9.0e15).then_some(f as u64)
}

/// 400 1004 for query parameter `name`, saying what it must be.
fn invalid_query(name: &str, rule: &str) -> ApiError {
    ApiError::invalid(
        codes::INVALID_QUERY,
        format!("Invalid query parameter {name}: {rule}"),
        format!("/query/{name}"),
    )
}

/// `page`: a whole number from 1 (default 1).
fn page_param(pairs: &[(String, String)]) -> Result<u64, ApiError> {
    match last(pairs, "page") {
        None => Ok(1),
        Some(text) => whole_number(text)
            .filter(|&n| n >= 1)
            .ok_or_else(|| invalid_query("page", "must be a whole number of at least 1")),
    }
}

/// `per_page`: a whole number within `range` (`default` when absent).
fn per_page_param(
    pairs: &[(String, String)],
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ApiError> {
    match last(pairs, "per_page") {
        None => Ok(default),
        Some(text) => whole_number(text)
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                let rule = format!(
                    "must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                );
                invalid_query("per_page", &rule)
            }),
    }
}

/// `direction`: `asc` or `desc` (`default` when absent).
fn direction_param(pairs: &[(String, String)], default: Direction) -> Result<Direction, ApiError> {
    match last(pairs, "direction") {
        None => Ok(default),
        Some("asc") => Ok(Direction::Asc),
        Some("desc") => Ok(Direction::Desc),
        Some(_) => Err(invalid_query("direction", "must be asc or desc")),
    }
}

/// `page`, `per_page`, `direction` and `include_expired` of a list request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListParams {
    /// From 1 (default 1).
    pub page: u64,
    /// 5 to 50 (default 20).
    pub per_page: u64,
    /// `asc` (default) or `desc`.
    pub direction: Direction,
    /// Default false.
    pub include_expired: bool,
}

impl ListParams {
    /// The store query for these parameters at `now`.
    pub fn query(self, now: time::OffsetDateTime) -> ListQuery {
        ListQuery {
            page: self.page,
            per_page: self.per_page,
            direction: self.direction,
            include_expired: self.include_expired,
            now,
        }
    }
}

impl FromRequestParts<AppState> for ListParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pairs = query_pairs(parts, state).await?;
        let include_expired = match last(&pairs, "include_expired") {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(invalid_query("include_expired", "must be true or false")),
        };
        Ok(ListParams {
            page: page_param(&pairs)?,
            per_page: per_page_param(&pairs, 20, 5..=50)?,
            direction: direction_param(&pairs, Direction::Asc)?,
            include_expired,
        })
    }
}

/// `page`, `per_page` (1 to 1000, default 100), `direction` (default `desc`), `since` and
/// `before` (RFC 3339) of an audit-log request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditParams(pub AuditQuery);

impl FromRequestParts<AppState> for AuditParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pairs = query_pairs(parts, state).await?;
        let instant = |name: &str| {
            last(&pairs, name)
                .map(|text| {
                    time::OffsetDateTime::parse(
                        text,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map_err(|_| invalid_query(name, "must be an RFC 3339 time"))
                })
                .transpose()
        };
        Ok(AuditParams(AuditQuery {
            page: page_param(&pairs)?,
            per_page: per_page_param(&pairs, 100, 1..=1000)?,
            direction: direction_param(&pairs, Direction::Desc)?,
            since: instant("since")?,
            before: instant("before")?,
        }))
    }
}

/// `name` and `scope` filters of the permission-group catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFilter {
    /// Exact, case-sensitive group name.
    pub name: Option<String>,
    /// Exact scope, e.g. `com.cloudflare.api.account.zone`.
    pub scope: Option<String>,
}

impl FromRequestParts<AppState> for GroupFilter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let pairs = query_pairs(parts, state).await?;
        Ok(GroupFilter {
            name: last(&pairs, "name").map(str::to_owned),
            scope: last(&pairs, "scope").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_accept_float_spelling() {
        assert_eq!(whole_number("5"), Some(5));
        assert_eq!(whole_number("5.0"), Some(5));
        assert_eq!(whole_number("5.5"), None);
        assert_eq!(whole_number("-1"), None);
        assert_eq!(whole_number("NaN"), None);
        assert_eq!(whole_number("1e400"), None);
        assert_eq!(whole_number(""), None);
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Body {
            name: String,
            items: Vec<u8>,
        }
        let status = |body: &str| {
            let error = parse_json::<Body>(body.as_bytes()).unwrap_err();
            let response = axum::response::IntoResponse::into_response(error);
            response.status()
        };
        assert_eq!(status(r#"{"items":[]}"#), StatusCode::BAD_REQUEST);
        assert_eq!(status("{"), StatusCode::BAD_REQUEST);
        assert!(parse_json::<Body>(br#"{"name":"x","items":[1]} trailing"#).is_err());
        assert!(parse_json::<Body>(br#"{"name":"x","items":[1]}"#).is_ok());
    }
}
