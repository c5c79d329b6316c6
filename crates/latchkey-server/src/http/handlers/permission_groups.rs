//! `GET .../tokens/permission_groups`: the catalogue, filtered by exact `name` and `scope`.

use crate::http::json::Json;
use axum::extract::State;
use latchkey_api::{self as api, Envelope};
use latchkey_core::ResourceKind;

use crate::auth::Principal;
use crate::http::authz::{authorize, Op};
use crate::http::error::ApiError;
use crate::http::extract::{Family, GroupFilter};
use crate::http::openapi::FailureResponse;
use crate::http::wire;
use crate::state::AppState;

/// The groups a token of this family can hold: all of them for user tokens; for account
/// tokens, those that apply to something other than a user.
#[utoipa::path(
    get,
    path = "/client/v4/user/tokens/permission_groups",
    operation_id = "permission-groups-list-permission-groups",
    summary = "List Permission Groups",
    tag = "User API Tokens",
    params(
        ("name" = Option<String>, Query, description = "Only the group of this exact name."),
        ("scope" = Option<String>, Query, description = "Only groups of this scope, e.g. `com.cloudflare.api.account.zone`."),
    ),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The permission groups a token of this family can hold", body = api::Envelope<Vec<api::PermissionGroup>>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    filter: GroupFilter,
) -> Result<Json<Envelope<Vec<api::PermissionGroup>>>, ApiError> {
    authorize(&state, &principal, family, Op::Read).await?;
    let matching = |name: Option<&str>| -> Vec<api::PermissionGroup> {
        state
            .catalogue
            .groups()
            .iter()
            .filter(|g| match family {
                Family::User => true,
                Family::Account(_) => g.scopes.iter().any(|&s| s != ResourceKind::User),
            })
            .filter(|g| name.is_none_or(|name| g.name == name))
            .filter(|g| {
                filter
                    .scope
                    .as_deref()
                    .is_none_or(|scope| g.scopes.iter().any(|s| s.as_str() == scope))
            })
            .map(wire::permission_group)
            .collect()
    };
    let mut groups = matching(filter.name.as_deref());
    if groups.is_empty() {
        if let Some(decoded) = filter.name.as_deref().and_then(decoded_again) {
            groups = matching(Some(&decoded));
        }
    }
    Ok(Json(Envelope::ok(groups)))
}

/// A `name` that was URL-encoded twice (the spec asks callers to encode it, and their SDK
/// encodes again), decoded once more: `Billing%20Read` becomes `Billing Read`. `None` when
/// the value holds no percent escape.
fn decoded_again(name: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .ok()?;
    (decoded != name).then(|| decoded.into_owned())
}
