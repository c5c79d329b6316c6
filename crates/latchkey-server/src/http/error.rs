//! The one error type at the edge: every failure becomes a Cloudflare envelope with an HTTP
//! status, a Cloudflare code and, for input errors, the field at fault.
//!
//! The codes are named in [`crate::http::codes`]; the "Contract decisions" table of
//! docs/compatibility.md says when each is answered (a test there keeps the two in step). A store error becomes an
//! HTTP answer in one place, `From<StoreError>` below.

use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_api::{Envelope, ErrorDetail, ErrorSource, Message};
use latchkey_store::StoreError;

use crate::http::codes;

use crate::auth::rate_limit::{Allowance, Refusal};
use crate::auth::AuthError;

/// A failed request: HTTP status and Cloudflare errors (and, for 429, when to retry).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    errors: Vec<ErrorDetail>,
    retry_after: Option<u64>,
    allowance: Option<Allowance>,
    messages: Vec<Message>,
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
            messages: Vec::new(),
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
        let mut error = Self::new(
            StatusCode::FORBIDDEN,
            vec![
                detail(codes::MISSING_AUTH_EMAIL, "Missing X-Auth-Email header"),
                detail(codes::MISSING_AUTH_KEY, "Missing X-Auth-Key header"),
            ],
        );
        // Cloudflare's codes stay (SDKs read them); latchkey issues no Global API Keys, so
        // the message says what to send instead.
        error.messages.push(Message {
            code: codes::SEND_BEARER_TOKEN,
            message: "No API token: send it as the header Authorization: Bearer <token>".into(),
            kind: None,
        });
        error
    }

    /// 403: Global API Key credentials, which latchkey does not issue.
    pub fn unknown_global_key() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(
                codes::UNKNOWN_GLOBAL_KEY,
                "Unknown X-Auth-Key or X-Auth-Email",
            )],
        )
    }

    /// 400: an Authorization header that is not `Bearer <token68>`.
    pub fn malformed_authorization() -> Self {
        let mut error = detail(codes::INVALID_HEADERS, "Invalid request headers");
        error.error_chain = vec![detail(
            codes::MALFORMED_AUTHORIZATION,
            "Invalid format for Authorization header",
        )];
        error.source = Some(ErrorSource {
            pointer: "/header/authorization".into(),
        });
        Self::new(StatusCode::BAD_REQUEST, vec![error])
    }

    /// 403: unknown, deleted, rolled-away, disabled, expired or not-yet-valid token.
    pub fn invalid_access_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(codes::UNAUTHORIZED, "Invalid access token")],
        )
    }

    /// 401: any refusal on a verify endpoint.
    pub fn invalid_api_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            vec![detail(codes::INVALID_API_TOKEN, "Invalid API Token")],
        )
    }

    /// 403: the client address is refused by the token's `request_ip` condition.
    pub fn refused_location(ip: std::net::IpAddr) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(
                codes::UNAUTHORIZED,
                format!("Cannot use the access token from location: {ip}"),
            )],
        )
    }

    /// 403: a valid token without the needed permission.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(
                codes::UNAUTHORIZED,
                "Unauthorized to access requested resource",
            )],
        )
    }

    /// 403: an authorize question answered no, with the reason.
    pub fn denied(reason: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            vec![detail(
                codes::UNAUTHORIZED,
                format!("Unauthorized to access requested resource: {reason}"),
            )],
        )
    }

    /// 404: no route for the path.
    pub fn no_route() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            vec![detail(codes::NO_ROUTE, "No route for the URI")],
        )
    }

    /// 404: a malformed or unknown identifier in `path`.
    pub fn could_not_route(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            vec![detail(
                codes::NO_ROUTE,
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

    /// 400 for a request whose signature cannot be accepted (GitHub's secret scanning).
    pub fn invalid_signature(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            vec![detail(codes::INVALID_SIGNATURE, message)],
        )
    }

    /// 503: something outside latchkey that this request needs cannot be reached; retry.
    pub fn upstream_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            vec![detail(codes::UPSTREAM_UNAVAILABLE, message)],
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
            StoreError::NotFound => {
                let path = crate::http::observe::with_request_path(str::to_owned);
                ApiError::could_not_route(path.as_deref().unwrap_or("the requested object"))
            }
            StoreError::QuotaExceeded(quota) => ApiError::invalid(
                codes::QUOTA_EXCEEDED,
                format!("Token quota reached: at most {quota} tokens per owner; delete one first"),
                "",
            ),
            StoreError::Conflict(why) => Self::new(
                StatusCode::CONFLICT,
                vec![detail(codes::ALREADY_EXISTS, format!("Already exists: {why}"))],
            ),
            other @ (StoreError::Unsupported(_)
            | StoreError::Corrupt(_)
            | StoreError::Backend(_)
            | StoreError::Migrate(_)) => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body: Envelope<()> = Envelope::failure(self.errors);
        body.messages = self.messages;
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
