//! `GET /healthz` (the process serves requests) and `GET /readyz` (and its database
//! answers), for load balancers and orchestrators. Neither needs a token, and neither
//! counts against a rate limit.

use crate::reply::Json;
use axum::extract::State;
use latchkey_api::Envelope;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 `{"status": "ok"}` whenever the process answers at all.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "latchkey-healthz",
    summary = "Liveness",
    tag = "Health",
    security(()),
    responses(
        (status = 200, description = "The process answers", body = Envelope<Object>, example = json!({"success": true, "errors": [], "messages": [], "result": {"status": "ok"}})),
        (status = "4XX", description = "Failure: a Cloudflare error code, a message and, for bad input, the field (`source.pointer`)", body = crate::openapi::Failure),
    ),
)]
pub async fn healthz() -> Json<Envelope<Value>> {
    Json(Envelope::ok(json!({"status": "ok"})))
}

/// `GET /readyz`: 200 `{"status": "ready"}` when the database answers a query, otherwise
/// 503 with code 1015 (as any request needing the database would get).
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "latchkey-readyz",
    summary = "Readiness",
    tag = "Health",
    security(()),
    responses(
        (status = 200, description = "The database answers", body = Envelope<Object>, example = json!({"success": true, "errors": [], "messages": [], "result": {"status": "ready"}})),
        (status = 503, description = "The database does not answer (code 1015)", body = crate::openapi::Failure),
        (status = "4XX", description = "Failure: a Cloudflare error code, a message and, for bad input, the field (`source.pointer`)", body = crate::openapi::Failure),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Envelope<Value>>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Envelope::ok(json!({"status": "ready"}))))
}
