//! `GET .../audit_logs`: the audit entries about a family's tokens (the user's own, or the
//! account's), newest first, to a token that may list those tokens.

use crate::http::json::Json;
use axum::extract::State;
use latchkey_api::{self as api, Envelope, ResultInfo};

use crate::audit;
use crate::auth::Principal;
use crate::http::authz::{authorize, Op};
use crate::http::error::ApiError;
use crate::http::extract::{AuditParams, Family};
use crate::http::openapi::FailureResponse;
use crate::state::AppState;

/// `GET /client/v4/user/audit_logs` and `GET /client/v4/accounts/{account_id}/audit_logs`.
#[utoipa::path(
    get,
    path = "/client/v4/user/audit_logs",
    operation_id = "user-audit-logs-list",
    summary = "List Audit Logs",
    tag = "Audit logs",
    params(
        ("page" = Option<u64>, Query, description = "Page, from 1 (default 1).", minimum = 1),
        ("per_page" = Option<u64>, Query, description = "Entries per page, 1 to 1000 (default 100).", minimum = 1, maximum = 1000),
        ("direction" = Option<crate::http::openapi::Direction>, Query, description = "`desc` (default: newest first) or `asc`."),
        ("since" = Option<String>, Query, format = DateTime, description = "Only entries at or after this RFC 3339 time."),
        ("before" = Option<String>, Query, format = DateTime, description = "Only entries before this RFC 3339 time."),
    ),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "Audit entries about the family's tokens", body = api::Envelope<Vec<api::AuditLogEntry>>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    family: Family,
    AuditParams(query): AuditParams,
) -> Result<Json<Envelope<Vec<api::AuditLogEntry>>>, ApiError> {
    let owner = authorize(&state, &principal, family, Op::List).await?;
    let page = state.store.list_audit(owner, &query).await?;
    let items: Vec<api::AuditLogEntry> = page.items.iter().map(audit::to_wire).collect();
    let mut envelope = Envelope::ok(items);
    envelope.result_info = Some(ResultInfo {
        page: query.page,
        per_page: query.per_page,
        count: envelope
            .result
            .as_ref()
            .map_or(0, |items| items.len() as u64),
        total_count: page.total,
        total_pages: page.total.div_ceil(query.per_page).max(1),
    });
    Ok(Json(envelope))
}
