//! `GET .../tokens/verify`: the presented token's own id, status and time window.

use crate::http::json::Json;
use crate::http::openapi::FailureResponse;
use latchkey_api::{self as api, Envelope, Message};

use crate::http::error::ApiError;
use crate::http::extract::VerifyPrincipal;

/// Answers 200 only for a usable token of this family (and, for accounts, of this account).
#[utoipa::path(
    get,
    path = "/client/v4/user/tokens/verify",
    operation_id = "user-api-tokens-verify-token",
    summary = "Verify Token",
    tag = "User API Tokens",
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The presented token is usable here", body = api::Envelope<api::VerifiedToken>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn verify(
    VerifyPrincipal(principal): VerifyPrincipal,
) -> Result<Json<Envelope<api::VerifiedToken>>, ApiError> {
    let token = &principal.token;
    let mut envelope = Envelope::ok(api::VerifiedToken {
        id: token.id.to_string(),
        status: api::TokenStatus::Active,
        not_before: token.not_before,
        expires_on: token.expires_on,
    });
    envelope.messages.push(Message {
        code: crate::http::codes::TOKEN_VALID,
        message: "This API Token is valid and active".into(),
        kind: None,
    });
    Ok(Json(envelope))
}
