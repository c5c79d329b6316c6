//! `GET /healthz` (the process serves requests) and `GET /readyz` (and its database
//! answers), for load balancers and orchestrators. Neither needs a token, and neither
//! counts against a rate limit.

use axum::extract::State;
use axum::Json;
use latchkey_api::Envelope;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// `GET /healthz`: 200 `{"status": "ok"}` whenever the process answers at all.
pub async fn healthz() -> Json<Envelope<Value>> {
    Json(Envelope::ok(json!({"status": "ok"})))
}

/// `GET /readyz`: 200 `{"status": "ready"}` when the database answers a query, otherwise
/// 503 with code 1015 (as any request needing the database would get).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Envelope<Value>>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Envelope::ok(json!({"status": "ready"}))))
}
