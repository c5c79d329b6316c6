//! The ceiling of latchkey's benchmarks, shared by `latchkey-bench bare` (measured with wrk
//! by `scripts/bench`) and the in-process criterion benchmark (`benches/request_path.rs`).

use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};

/// The bare endpoint: `GET /client/v4/user/tokens/verify` reads the `Authorization` header
/// and answers a verify-shaped envelope, with no token work at all; `POST /bare/post` does
/// the same after reading a JSON body, as authorize reads its question (a reference, not
/// the target's ceiling: the ratios are to the GET).
pub fn bare_router() -> Router {
    Router::new()
        .route("/client/v4/user/tokens/verify", get(verify))
        .route("/bare/post", post(read_and_answer))
}

async fn verify(headers: HeaderMap) -> Json<serde_json::Value> {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    Json(serde_json::json!({
        "success": true, "errors": [],
        "messages": [{"code": 10000, "message": "This API Token is valid and active", "type": null}],
        "result": {"id": "ed17574386854bf78a67040be0a770b0", "status": "active", "len": authorization.len()},
    }))
}

async fn read_and_answer(
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    let Json(mut answer) = verify(headers).await;
    answer["result"]["fields"] = body.as_object().map_or(0, |o| o.len()).into();
    Json(answer)
}
