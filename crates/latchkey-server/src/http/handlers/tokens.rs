//! List, create, get, update, delete and roll.

use crate::http::json::Json;
use axum::extract::State;
use latchkey_api::{self as api, Envelope, ResultInfo};
use latchkey_core::delegation::{check_grant_within, Grant};
use latchkey_core::{AuditAction, Owner, Secret, Token};
use latchkey_store::StoreError;
use serde_json::json;

use crate::audit;
use crate::auth::Principal;
use crate::http::authz::{authorize, check_grantable, Op};
use crate::http::codes;
use crate::http::error::ApiError;
use crate::http::extract::{Family, JsonBody, ListParams, RollBody, TokenId};
use crate::http::openapi::FailureResponse;
use crate::http::wire;
use crate::state::AppState;

type ApiResult<T> = Result<Json<Envelope<T>>, ApiError>;

fn render(state: &AppState, token: &Token) -> api::Token {
    wire::token(
        &state.catalogue,
        token,
        state.clock.now(),
        state.last_used.pending(token.id),
    )
}

/// Validates the fields of a create or update body and checks that `owner` may grant them
/// (and, with strict delegation, that the calling token holds them itself).
async fn grantable_fields(
    state: &AppState,
    caller: &Token,
    owner: Owner,
    body: wire::TokenBody<'_>,
) -> Result<wire::TokenFields, ApiError> {
    let fields = wire::token_fields(&state.catalogue, body)?;
    check_grantable(state, owner, &fields.policies).await?;
    let grant = Grant {
        policies: &fields.policies,
        not_before: fields.not_before,
        expires_on: fields.expires_on,
        condition: &fields.condition,
    };
    within_caller(state, caller, grant)?;
    Ok(fields)
}

/// With strict delegation, refuses a token (new, or existing and about to be changed,
/// rolled or deleted) that holds more than the calling token: 403 9109 naming the field.
fn within_caller(state: &AppState, caller: &Token, grant: Grant<'_>) -> Result<(), ApiError> {
    if !state.strict_delegation {
        return Ok(());
    }
    check_grant_within(Grant::from(caller), grant, &state.catalogue)
        .map_err(|beyond| ApiError::unauthorized_grant(beyond.pointer))
}

/// The token `id` of `owner`; a missing one is the client's 404 for this path.
async fn existing_token(
    state: &AppState,
    owner: Owner,
    id: latchkey_core::Id,
) -> Result<Token, ApiError> {
    Ok(state
        .store
        .get_token(owner, id)
        .await?
        .ok_or(StoreError::NotFound)?)
}

/// `GET .../tokens`
#[utoipa::path(
    get,
    path = "/client/v4/user/tokens",
    operation_id = "user-api-tokens-list-tokens",
    summary = "List Tokens",
    tag = "User API Tokens",
    params(
        ("page" = Option<u64>, Query, description = "Page, from 1 (default 1).", minimum = 1),
        ("per_page" = Option<u64>, Query, description = "Tokens per page, 5 to 50 (default 20).", minimum = 5, maximum = 50),
        ("direction" = Option<crate::http::openapi::Direction>, Query, description = "`asc` (default: oldest first) or `desc`."),
        ("include_expired" = Option<bool>, Query, description = "Include expired tokens (default false)."),
    ),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "One page of the owner's tokens, oldest first unless `direction=desc`", body = api::Envelope<Vec<api::Token>>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    params: ListParams,
) -> ApiResult<Vec<api::Token>> {
    let owner = authorize(&state, &principal, family, Op::List).await?;
    let page = state
        .store
        .list_tokens(owner, &params.query(state.clock.now()))
        .await?;
    let items: Vec<api::Token> = page.items.iter().map(|t| render(&state, t)).collect();
    let mut envelope = Envelope::ok(items);
    envelope.result_info = Some(ResultInfo {
        page: params.page,
        per_page: params.per_page,
        count: page.items.len() as u64,
        total_count: page.total,
        total_pages: page.total.div_ceil(params.per_page).max(1),
    });
    Ok(Json(envelope))
}

/// `POST .../tokens`: the secret is in `value`, in this answer only.
#[utoipa::path(
    post,
    path = "/client/v4/user/tokens",
    operation_id = "user-api-tokens-create-token",
    summary = "Create Token",
    tag = "User API Tokens",
    request_body = api::CreateTokenRequest,
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The new token; its secret is in `value`, in this answer only", body = api::Envelope<api::Token>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    JsonBody(body): JsonBody<api::CreateTokenRequest>,
) -> ApiResult<api::Token> {
    let owner = authorize(&state, &principal, family, Op::Create).await?;
    let fields = grantable_fields(&state, &principal.token, owner, (&body).into()).await?;
    let token = Token {
        not_before: fields.not_before,
        expires_on: fields.expires_on,
        policies: fields.policies,
        condition: fields.condition,
        ..Token::new(owner, fields.name, state.clock.now())
    };
    let secret = Secret::generate(owner.secret_kind());
    let quota = match owner {
        Owner::User(_) => state.limits.user_token_quota,
        Owner::Account(_) => state.limits.account_token_quota,
    };
    let event = audit::token_event(
        &state,
        &principal,
        AuditAction::TokenCreate,
        (owner, token.id),
        json!({"name": token.name}),
    );
    state
        .store
        .insert_token(&token, &secret.hash(), quota, &event)
        .await?;
    tracing::info!(token_id = %token.id, actor = %principal.token.id, "token created");
    let mut created = render(&state, &token);
    created.value = Some(api::SecretValue::new(secret.expose()));
    Ok(Json(Envelope::ok(created)))
}

/// `GET .../tokens/{token_id}`
#[utoipa::path(
    get,
    path = "/client/v4/user/tokens/{token_id}",
    operation_id = "user-api-tokens-token-details",
    summary = "Token Details",
    tag = "User API Tokens",
    params(("token_id" = String, Path, description = "The token's id (32 lowercase hex).", pattern = "^[0-9a-f]{32}$")),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The token", body = api::Envelope<api::Token>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    TokenId(id): TokenId,
) -> ApiResult<api::Token> {
    let owner = authorize(&state, &principal, family, Op::Read).await?;
    let token = existing_token(&state, owner, id).await?;
    Ok(Json(Envelope::ok(render(&state, &token))))
}

/// `PUT .../tokens/{token_id}`: replaces name, policies, times and condition (and status
/// when sent).
#[utoipa::path(
    put,
    path = "/client/v4/user/tokens/{token_id}",
    operation_id = "user-api-tokens-update-token",
    summary = "Update Token",
    tag = "User API Tokens",
    params(("token_id" = String, Path, description = "The token's id (32 lowercase hex).", pattern = "^[0-9a-f]{32}$")),
    request_body = api::UpdateTokenRequest,
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The token as updated", body = api::Envelope<api::Token>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    TokenId(id): TokenId,
    JsonBody(body): JsonBody<api::UpdateTokenRequest>,
) -> ApiResult<api::Token> {
    let owner = authorize(&state, &principal, family, Op::Update).await?;
    let fields = grantable_fields(&state, &principal.token, owner, (&body).into()).await?;
    let existing = existing_token(&state, owner, id).await?;
    within_caller(&state, &principal.token, Grant::from(&existing))?;
    let token = Token {
        name: fields.name,
        status: body
            .status
            .map(wire::status_from_wire)
            .unwrap_or(existing.status),
        modified_on: state.clock.now(),
        not_before: fields.not_before,
        expires_on: fields.expires_on,
        policies: fields.policies,
        condition: fields.condition,
        ..existing.clone()
    };
    if existing.exposure.is_some() && token.status == latchkey_core::Status::Active {
        return Err(ApiError::invalid(
            codes::TOKEN_EXPOSED,
            "This token's secret was reported leaked (see its exposure), so it cannot be \
             enabled again: roll it for a new secret, which also makes it active",
            "/status",
        ));
    }
    let (action, details) = audit::update_details(&existing, &token);
    let event = audit::token_event(&state, &principal, action, (owner, id), details);
    state.store.update_token(&token, &event).await?;
    state.cache.forget(token.id);
    tracing::info!(token_id = %token.id, actor = %principal.token.id, "token updated");
    Ok(Json(Envelope::ok(render(&state, &token))))
}

/// `DELETE .../tokens/{token_id}`
#[utoipa::path(
    delete,
    path = "/client/v4/user/tokens/{token_id}",
    operation_id = "user-api-tokens-delete-token",
    summary = "Delete Token",
    tag = "User API Tokens",
    params(("token_id" = String, Path, description = "The token's id (32 lowercase hex).", pattern = "^[0-9a-f]{32}$")),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The deleted token's id", body = api::Envelope<api::DeletedToken>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    TokenId(id): TokenId,
) -> ApiResult<api::DeletedToken> {
    let owner = authorize(&state, &principal, family, Op::Delete).await?;
    if state.strict_delegation {
        let existing = existing_token(&state, owner, id).await?;
        within_caller(&state, &principal.token, Grant::from(&existing))?;
    }
    let event = audit::token_event(
        &state,
        &principal,
        AuditAction::TokenDelete,
        (owner, id),
        json!({}),
    );
    state.store.delete_token(owner, id, &event).await?;
    state.cache.forget(id);
    tracing::info!(token_id = %id, actor = %principal.token.id, "token deleted");
    Ok(Json(Envelope::ok(api::DeletedToken { id: id.to_string() })))
}

/// `PUT .../tokens/{token_id}/value`: a new secret; the old one stops working at once.
#[utoipa::path(
    put,
    path = "/client/v4/user/tokens/{token_id}/value",
    operation_id = "user-api-tokens-roll-token",
    summary = "Roll Token",
    tag = "User API Tokens",
    params(("token_id" = String, Path, description = "The token's id (32 lowercase hex).", pattern = "^[0-9a-f]{32}$")),
    request_body(content = Object, description = "`{}` or any JSON object (latchkey also accepts no body at all)."),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The new secret; the old one stopped working", body = api::Envelope<String>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn roll(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    TokenId(id): TokenId,
    _body: RollBody,
) -> ApiResult<api::SecretValue> {
    let owner = authorize(&state, &principal, family, Op::Update).await?;
    let existing = existing_token(&state, owner, id).await?;
    within_caller(&state, &principal.token, Grant::from(&existing))?;
    let secret = Secret::generate(owner.secret_kind());
    let event = audit::token_event(
        &state,
        &principal,
        AuditAction::TokenRoll,
        (owner, id),
        json!({"name": existing.name}),
    );
    state
        .store
        .roll_token(owner, id, existing.revision, &secret.hash(), &event)
        .await?;
    state.cache.forget(id);
    tracing::info!(token_id = %id, actor = %principal.token.id, "token rolled");
    Ok(Json(Envelope::ok(api::SecretValue::new(secret.expose()))))
}
