//! The one error type at the edge: every failure becomes a Cloudflare envelope with an HTTP
//! status, a Cloudflare code and, for input errors, the field at fault.
//!
//! latchkey's own codes (Cloudflare's are unknown for these cases, spec §5):
//!
//! | code | HTTP | meaning |
//! |---|---|---|
//! | 1003 | 400 | a body field is missing or has the wrong type |
//! | 1004 | 400 | a query parameter is invalid |
//! | 1005 | 400 | `name` is empty or longer than 120 characters |
//! | 1006 | 400 | unknown permission group id |
//! | 1007 | 400 | malformed resource key or value |
//! | 1008 | 400 | a permission group's scope fits none of the policy's resources |
//! | 1009 | 400 | malformed CIDR in `condition.request_ip` |
//! | 1010 | 400 | malformed timestamp, or `expires_on` not after `not_before` |
//! | 1011 | 400 | token quota reached |
//! | 1012 | 413 | request body too large |
//! | 1013 | 500 | internal error |
//! | 1014 | 409 | the token changed concurrently (read it again and retry) |
//! | 1015 | 503 | the database is unavailable (nothing was changed; retry) |
//! | 1016 | 429 | too many failed authentications from this address (`Retry-After`) |
//! | 6007 | 400 | malformed JSON body |
//! | 7001 | 405 | method not allowed on this route |
//!
//! Cloudflare's own code for its API rate limit is kept: 971 (429, "Please wait and
//! consider throttling your request speed"), with `Retry-After` and `x-ratelimit-*`.

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_api::{Envelope, ErrorDetail, ErrorSource};
use latchkey_store::StoreError;

use crate::auth::rate_limit::{Allowance, Refusal};
use crate::auth::AuthError;

/// A failed request: HTTP status and Cloudflare errors (and, for 429, when to retry).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    errors: Vec<ErrorDetail>,
    retry_after: Option<u64>,
    allowance: Option<Allowance>,
}

/// Codes latchkey uses for its own input errors (see the module docs).
pub mod codes {
    /// A body field is missing or has the wrong type.
    pub const INVALID_FIELD: u32 = 1003;
    /// A query parameter is invalid.
    pub const INVALID_QUERY: u32 = 1004;
    /// `name` is empty or too long.
    pub const INVALID_NAME: u32 = 1005;
    /// Unknown permission group.
    pub const UNKNOWN_PERMISSION_GROUP: u32 = 1006;
    /// Malformed resource key or value.
    pub const INVALID_RESOURCE: u32 = 1007;
    /// Permission group scope fits no resource of the policy.
    pub const SCOPE_MISMATCH: u32 = 1008;
    /// Malformed CIDR.
    pub const INVALID_CIDR: u32 = 1009;
    /// Malformed or inconsistent timestamps.
    pub const INVALID_TIMESTAMP: u32 = 1010;
    /// Token quota reached.
    pub const QUOTA_EXCEEDED: u32 = 1011;
    /// Body too large.
    pub const BODY_TOO_LARGE: u32 = 1012;
    /// Internal error.
    pub const INTERNAL: u32 = 1013;
    /// The token changed between read and write.
    pub const CHANGED_CONCURRENTLY: u32 = 1014;
    /// The database cannot be reached.
    pub const UNAVAILABLE: u32 = 1015;
    /// Malformed JSON.
    pub const MALFORMED_JSON: u32 = 6007;
    /// Method not allowed.
    pub const METHOD_NOT_ALLOWED: u32 = 7001;
    /// The owner's request allowance is used up (Cloudflare's code).
    pub const RATE_LIMITED: u32 = 971;
    /// Too many failed authentications from this address.
    pub const AUTHENTICATION_THROTTLED: u32 = 1016;
    /// A list or text over its documented limit (see `convert::limits`).
    pub const OVER_LIMIT: u32 = 1017;
    /// The request body did not arrive within `--body-timeout`.
    pub const BODY_TIMEOUT: u32 = 1018;
}

fn detail(code: u32, message: impl Into<String>) -> ErrorDetail {
    ErrorDetail {
        code,
        message: message.into(),
        source: None,
        error_chain: Vec::new(),
    }
}

impl ApiError {
    fn new(status: StatusCode, errors: Vec<ErrorDetail>) -> Self {
        ApiError {
            status,
            errors,
            retry_after: None,
            allowance: None,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// `Retry-After`, in seconds, when there is one.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// 429 971: the owner's allowance is used up (see [`crate::auth::rate_limit`]).
    pub fn rate_limited(allowance: Allowance) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            vec![detail(
                codes::RATE_LIMITED,
                "Please wait and consider throttling your request speed",
            )],
        );
        error.retry_after = Some(allowance.reset_secs);
        error.allowance = Some(allowance);
        error
    }

    /// 429 1016: this address has failed to authenticate too often.
    pub fn authentication_throttled(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            vec![detail(
                codes::AUTHENTICATION_THROTTLED,
                format!(
                    "Too many failed authentications from this address; retry in {retry_after} s"
                ),
            )],
        );
        error.retry_after = Some(retry_after);
        error
    }

    /// 403: no credentials at all.
    pub fn missing_credentials() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![
                detail(9106, "Missing X-Auth-Email header"),
                detail(9107, "Missing X-Auth-Key header"),
            ],
        )
    }

    /// 403: Global API Key credentials, which latchkey does not issue.
    pub fn unknown_global_key() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(9103, "Unknown X-Auth-Key or X-Auth-Email")],
        )
    }

    /// 400: an Authorization header that is not `Bearer <token68>`.
    pub fn malformed_authorization() -> Self {
        let mut error = detail(6003, "Invalid request headers");
        error.error_chain = vec![detail(6111, "Invalid format for Authorization header")];
        error.source = Some(ErrorSource {
            pointer: "/header/authorization".into(),
        });
        Self::new(StatusCode::BAD_REQUEST, vec![error])
    }

    /// 403: unknown, deleted, rolled-away, disabled, expired or not-yet-valid token.
    pub fn invalid_access_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(9109, "Invalid access token")],
        )
    }

    /// 401: any refusal on a verify endpoint.
    pub fn invalid_api_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            vec![detail(1000, "Invalid API Token")],
        )
    }

    /// 403: the client address is refused by the token's `request_ip` condition.
    pub fn refused_location(ip: std::net::IpAddr) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(
                9109,
                format!("Cannot use the access token from location: {ip}"),
            )],
        )
    }

    /// 403: a valid token without the needed permission.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(9109, "Unauthorized to access requested resource")],
        )
    }

    /// 403: an authorize question answered no, with the reason.
    pub fn denied(reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(
                9109,
                format!("Unauthorized to access requested resource: {reason}"),
            )],
        )
    }

    /// 404: no route for the path.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            vec![detail(7003, "No route for the URI")],
        )
    }

    /// 404: a malformed or unknown identifier in `path`.
    pub fn could_not_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            vec![detail(
                7003,
                format!("Could not route to {path}, perhaps your object identifier is invalid?"),
            )],
        )
    }

    /// 405: the route exists but not with this method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            vec![detail(codes::METHOD_NOT_ALLOWED, "Method not allowed")],
        )
    }

    /// 400: an invalid input, naming the field with a JSON pointer.
    pub fn invalid(code: u32, message: impl Into<String>, pointer: impl Into<String>) -> Self {
        let mut error = detail(code, message);
        error.source = Some(ErrorSource {
            pointer: pointer.into(),
        });
        Self::new(StatusCode::BAD_REQUEST, vec![error])
    }

    /// 403 with the field that asks for more than the owner holds.
    pub fn unauthorized_grant(pointer: impl Into<String>) -> Self {
        let mut error = Self::unauthorized();
        error.errors[0].source = Some(ErrorSource {
            pointer: pointer.into(),
        });
        error
    }

    /// 413: the body exceeds the configured limit.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            vec![detail(
                codes::BODY_TOO_LARGE,
                format!("Request body is larger than {limit} bytes"),
            )],
        )
    }

    /// 408: the body did not arrive within `limit`.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            vec![detail(
                codes::BODY_TIMEOUT,
                format!(
                    "The request body did not arrive within {} s",
                    limit.as_secs()
                ),
            )],
        )
    }

    /// 500: logs `source`, tells the client nothing about it.
    pub fn internal(source: impl std::fmt::Display) -> Self {
        tracing::error!(error = %source, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![detail(codes::INTERNAL, "Internal error")],
        )
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Owner(allowance) => ApiError::rate_limited(allowance),
            Refusal::AuthFailures { retry_after } => {
                ApiError::authentication_throttled(retry_after)
            }
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => e.into(),
            AuthError::Limited(refusal) => refusal.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Changed => Self::new(
                StatusCode::CONFLICT,
                vec![detail(
                    codes::CHANGED_CONCURRENTLY,
                    "The token was changed by another request at the same time; read it again and retry",
                )],
            ),
            StoreError::Unavailable(_) | StoreError::Aborted(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    vec![detail(
                        codes::UNAVAILABLE,
                        "The token database is unavailable; nothing was changed, retry later",
                    )],
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body: Envelope<()> = Envelope::failure(self.errors);
        // Codes, messages and pointers: nothing in an error envelope can fail to serialise.
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            self.status,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json,
        )
            .into_response();
        if let Some(allowance) = self.allowance {
            allowance.write(response.headers_mut());
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Escapes one JSON-pointer segment (RFC 6901).
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_map_to_what_the_client_can_do_about_them() {
        let changed = ApiError::from(StoreError::Changed);
        assert_eq!(changed.status, StatusCode::CONFLICT);
        assert_eq!(changed.errors[0].code, codes::CHANGED_CONCURRENTLY);
        for down in [
            StoreError::Unavailable("connection refused".into()),
            StoreError::Aborted("the writer has stopped".into()),
        ] {
            let e = ApiError::from(down);
            assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(e.errors[0].code, codes::UNAVAILABLE);
            assert!(!e.errors[0].message.contains("refused"), "no detail leaks");
        }
        let corrupt = ApiError::from(StoreError::Corrupt("status: x".into()));
        assert_eq!(corrupt.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(corrupt.errors[0].message, "Internal error");
    }
}
