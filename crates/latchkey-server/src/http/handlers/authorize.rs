//! `POST /latchkey/v1/authorize` (a decision, optionally explained) and
//! `GET /latchkey/v1/authorize` (forward-auth for gateways: 200, 401 or 403).
//!
//! Both judge the bearer token with the core evaluator (status, time window, client
//! address, policies), then bound an allow by what the token's owner holds. Neither
//! reveals anything about other tokens.

use crate::http::json::Json;
use axum::extract::State;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use latchkey_api::{AuthorizeRequest, AuthorizeResult, Envelope};
use latchkey_core::{evaluate, Decision, Owner, Reason, Request, ResourceKey, Unusable};

use crate::auth::Unknown;
use crate::caches::tokens::CachedToken;
use crate::http::authz::owner_holds;
use crate::http::codes;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::extract::{unknown_token_error, Presented};
use crate::http::openapi::FailureResponse;
use crate::state::AppState;

/// What is asked, validated: a permission group and a resource chain.
struct Question {
    permission: String,
    chain: Vec<ResourceKey>,
}

fn question(
    state: &AppState,
    group: &str,
    resource: &str,
    parents: &[&str],
    at: &dyn Fn(&str) -> String,
) -> Result<Question, ApiError> {
    let group = state.catalogue.find(group.trim()).ok_or_else(|| {
        ApiError::invalid(
            codes::UNKNOWN_PERMISSION_GROUP,
            format!("Unknown permission group {group:?} (give its id or exact name)"),
            at("permission_group"),
        )
    })?;
    let key = |text: &str, field: String| {
        text.trim()
            .parse::<ResourceKey>()
            .ok()
            .filter(|k| k.specific_id().is_some())
            .ok_or_else(|| {
                ApiError::invalid(
                    codes::INVALID_RESOURCE,
                    format!("{text:?} is not a resource key naming one resource"),
                    field,
                )
            })
    };
    let mut chain = vec![key(resource, at("resource"))?];
    for (i, parent) in parents.iter().enumerate() {
        chain.push(key(parent, at(&format!("parents/{i}")))?);
    }
    Ok(Question {
        permission: group.id.to_string(),
        chain,
    })
}

async fn decide(
    state: &AppState,
    token: &CachedToken,
    question: &Question,
    presented: &Presented,
) -> Result<Decision, ApiError> {
    let now = state.clock.now();
    let request = Request {
        permission: &question.permission,
        chain: &question.chain,
    };
    let mut decision = evaluate(&state.catalogue, token, &request, presented.client_ip, now);
    if !matches!(decision.reason, Reason::Unusable(_)) {
        state.last_used.record(token, now);
    }
    if decision.allowed && !owner_holds(state, token.owner, &question.chain).await? {
        decision = Decision::refused(Reason::OwnerLacksResource);
    }
    crate::metrics::authorize_decision(&decision.reason);
    Ok(decision)
}

/// `POST /latchkey/v1/authorize`: 200 with `{allowed, reason}` (and, with `explain`, the
/// deciding policy and matched key) for any token latchkey knows; 401 for one it does not.
#[utoipa::path(
    post,
    path = "/latchkey/v1/authorize",
    operation_id = "latchkey-authorize",
    summary = "Authorize",
    tag = "Authorization",
    request_body = AuthorizeRequest,
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The decision, for any token latchkey knows", body = Envelope<AuthorizeResult>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn decision(
    State(state): State<AppState>,
    presented: Presented,
    JsonBody(body): JsonBody<AuthorizeRequest>,
) -> Result<Json<Envelope<AuthorizeResult>>, ApiError> {
    let token = presented
        .token
        .clone()
        .map_err(|unknown| unknown_token_error(unknown, ApiError::invalid_api_token))?;
    let parents: Vec<&str> = body.parents.iter().map(String::as_str).collect();
    let question = question(
        &state,
        &body.permission_group,
        &body.resource,
        &parents,
        &|f| format!("/{f}"),
    )?;
    let decision = decide(&state, &token, &question, &presented).await?;
    Ok(Json(Envelope::ok(AuthorizeResult {
        allowed: decision.allowed,
        reason: decision.reason.to_string(),
        policy_id: decision
            .policy_id
            .filter(|_| body.explain)
            .map(|id| id.to_string()),
        matched_resource: decision.matched_resource.filter(|_| body.explain),
    })))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                codes::INVALID_FIELD,
                format!("The {name} header is required"),
                format!("/header/{}", name.to_ascii_lowercase()),
            )
        })
}

/// `GET /latchkey/v1/authorize` for gateways (nginx `auth_request`, Traefik forwardAuth,
/// Envoy ext_authz): the question comes in `X-Latchkey-Permission`, `X-Latchkey-Resource`
/// and `X-Latchkey-Parents` (comma-separated). 200 allows (with `X-Latchkey-Token-Id` and
/// `X-Latchkey-Owner` for the upstream); 401 means no usable token (missing, unknown,
/// disabled, expired, not yet valid); 403 means the token may not do this (policy, owner,
/// or client address). A gateway misconfiguration (missing header, unknown group) is 400.
#[utoipa::path(
    get,
    path = "/latchkey/v1/authorize",
    operation_id = "latchkey-forward-auth",
    summary = "Authorize (gateway form)",
    tag = "Authorization",
    params(
        ("X-Latchkey-Permission" = String, Header, description = "Permission group id or exact name."),
        ("X-Latchkey-Resource" = String, Header, description = "The resource acted on."),
        ("X-Latchkey-Parents" = Option<String>, Header, description = "Enclosing resources, nearest first, comma-separated."),
    ),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "Allowed; `X-Latchkey-Token-Id` and `X-Latchkey-Owner` name the token and its owner", body = Envelope<AuthorizeResult>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn forward_auth(
    State(state): State<AppState>,
    presented: Presented,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let unauthenticated = |error: ApiError| {
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        response
    };
    let token = match presented.token.clone() {
        Ok(token) => token,
        Err(Unknown::MalformedHeader) => return Err(ApiError::malformed_authorization()),
        Err(_) => return Ok(unauthenticated(ApiError::invalid_api_token())),
    };
    let permission = header(&headers, "X-Latchkey-Permission")?;
    let resource = header(&headers, "X-Latchkey-Resource")?;
    let parents: Vec<&str> = headers
        .get("X-Latchkey-Parents")
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let question = question(&state, permission, resource, &parents, &|f| {
        format!("/header/x-latchkey-{}", f.split('/').next().unwrap_or(f))
    })?;
    let decision = decide(&state, &token, &question, &presented).await?;
    match decision.reason {
        Reason::Allowed => {
            let owner = match token.owner {
                Owner::User(id) => format!("user:{id}"),
                Owner::Account(id) => format!("account:{id}"),
            };
            let mut response = Json(Envelope::ok(AuthorizeResult {
                allowed: true,
                reason: decision.reason.to_string(),
                policy_id: None,
                matched_resource: None,
            }))
            .into_response();
            let headers = response.headers_mut();
            for (name, value) in [
                ("x-latchkey-token-id", token.id.to_string()),
                ("x-latchkey-owner", owner),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
            Ok(response)
        }
        Reason::Unusable(Unusable::AddressRefused(ip)) => Err(ApiError::refused_location(ip)),
        Reason::Unusable(_) => Ok(unauthenticated(ApiError::invalid_api_token())),
        Reason::DeniedByPolicy | Reason::NoAllowMatched | Reason::OwnerLacksResource => {
            Err(ApiError::denied(&decision.reason.to_string()))
        }
    }
}
