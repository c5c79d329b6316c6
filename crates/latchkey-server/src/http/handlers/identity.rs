//! `GET /client/v4/user` and `GET /client/v4/accounts`: who a token acts for, so that a
//! client (the dashboard, an SDK) can name the user and the accounts in its policies.
//!
//! A token sees its user, or an account, when its policies allow it *something* there: any
//! permission group that applies to users (or accounts) on that resource, and its owner
//! holds the resource. No separate "User Details Read" is needed to learn one's own id.

use crate::http::json::Json;
use axum::extract::State;
use latchkey_api::{self as api, Envelope, ResultInfo};
use latchkey_core::{evaluate_policies, Owner, Policy, Request, ResourceKey, ResourceKind};
use latchkey_store::Direction;

use crate::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::ListParams;
use crate::http::openapi::FailureResponse;
use crate::state::AppState;

/// Whether `policies` allow any permission group that applies to `key`'s kind on `key`.
fn allows_anything(state: &AppState, policies: &[Policy], key: ResourceKey) -> bool {
    let chain = [key];
    state
        .catalogue
        .groups()
        .iter()
        .filter(|group| group.applies_to(chain[0].kind))
        .any(|group| {
            let permission = group.id.to_string();
            let request = Request {
                permission: &permission,
                chain: &chain,
            };
            evaluate_policies(policies, &state.catalogue, &request).allowed
        })
}

/// `GET /client/v4/user`: the calling user token's user. Account tokens get 403 9109.
#[utoipa::path(
    get,
    path = "/client/v4/user",
    operation_id = "user-user-details",
    summary = "User Details",
    tag = "Identity",
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The user the calling token belongs to", body = api::Envelope<api::User>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn user(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Envelope<api::User>>, ApiError> {
    let id = principal.user().ok_or_else(ApiError::unauthorized)?;
    let key = ResourceKey::specific(ResourceKind::User, id.to_string());
    if !allows_anything(&state, &principal.token.policies, key) {
        return Err(ApiError::unauthorized());
    }
    let user = state
        .store
        .user(id)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    Ok(Json(Envelope::ok(api::User {
        id: user.id.to_string(),
        email: user.email,
        created_on: user.created_on,
    })))
}

/// `GET /client/v4/accounts`: the accounts the calling token may do something on, oldest
/// first (`direction=desc` for newest first), paged like the token lists.
#[utoipa::path(
    get,
    path = "/client/v4/accounts",
    operation_id = "accounts-list-accounts",
    summary = "List Accounts",
    tag = "Identity",
    params(
        ("page" = Option<u64>, Query, description = "Page, from 1 (default 1).", minimum = 1),
        ("per_page" = Option<u64>, Query, description = "Accounts per page, 5 to 50 (default 20).", minimum = 5, maximum = 50),
        ("direction" = Option<crate::http::openapi::Direction>, Query, description = "`asc` (default: oldest first) or `desc`."),
    ),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The accounts the calling token may do something on", body = api::Envelope<Vec<api::Account>>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn accounts(
    State(state): State<AppState>,
    principal: Principal,
    params: ListParams,
) -> Result<Json<Envelope<Vec<api::Account>>>, ApiError> {
    let held = match principal.token.owner {
        Owner::User(user) => state.store.accounts_of(user).await?,
        Owner::Account(own) => state.store.account(own).await?.into_iter().collect(),
    };
    let mut visible: Vec<api::Account> = held
        .into_iter()
        .filter(|account| {
            let key = ResourceKey::specific(ResourceKind::Account, account.id.to_string());
            allows_anything(&state, &principal.token.policies, key)
        })
        .map(|account| api::Account {
            id: account.id.to_string(),
            name: account.name,
            kind: "standard".to_owned(),
            created_on: account.created_on,
        })
        .collect();
    if params.direction == Direction::Desc {
        visible.reverse();
    }
    let total = visible.len() as u64;
    let start = usize::try_from((params.page - 1).saturating_mul(params.per_page))
        .unwrap_or(usize::MAX)
        .min(visible.len());
    let items: Vec<api::Account> = visible
        .into_iter()
        .skip(start)
        .take(params.per_page as usize)
        .collect();
    let count = items.len() as u64;
    let mut envelope = Envelope::ok(items);
    envelope.result_info = Some(ResultInfo {
        page: params.page,
        per_page: params.per_page,
        count,
        total_count: total,
        total_pages: total.div_ceil(params.per_page).max(1),
    });
    Ok(Json(envelope))
}
