//! `GET /healthz` (the process serves requests) and `GET /readyz` (and its database
//! answers), for load balancers and orchestrators. Neither needs a token, and neither
//! counts against a rate limit; and `GET /metrics` for Prometheus.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use latchkey_api::Envelope;
use serde_json::{json, Value};

use crate::http::error::ApiError;
use crate::http::json::Json;
use crate::http::openapi::FailureResponse;
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
        (status = "4XX", response = inline(FailureResponse)),
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
        (status = 503, description = "The database does not answer (code 1015)", body = crate::http::openapi::Failure),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Envelope<Value>>, ApiError> {
    state.store.ping().await?;
    Ok(Json(Envelope::ok(json!({"status": "ready"}))))
}

/// `GET /metrics`: the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "latchkey-metrics",
    summary = "Prometheus metrics",
    tag = "Health",
    security(()),
    responses((status = 200, description = "Counters, gauges and histograms in Prometheus' text format", content_type = "text/plain", body = String)),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let (last_used_pending, last_used_lag) = state.last_used.backlog();
    let text = crate::metrics::render(crate::metrics::Gauges {
        pools: state.store.pools(),
        cached_tokens: state.cache.len(),
        last_used_pending,
        last_used_lag,
    });
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}
