//! The router: every route of the service, listed in one place.

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, put};
use axum::Router;

use crate::dashboard;
use crate::handlers::{
    self, audit_logs, authorize, health, identity, permission_groups, tokens, verify,
};
use crate::observe::ObserveLayer;
use crate::openapi;
use crate::state::AppState;

/// The HTTP application. Both token families share the handlers; the path tells them apart.
///
/// There is deliberately no per-request access log or tower-http `TraceLayer` (the latter cost
/// about a third of verify's throughput in `scripts/bench`); [`crate::observe`] keeps to an
/// id and one histogram sample per request. Writes are logged by their handlers.
pub fn router(state: AppState) -> Router {
    // Installed before the first request, so that nothing recorded is lost.
    crate::metrics::handle();
    let family = |prefix: &str| {
        Router::new()
            .route(
                &format!("{prefix}/tokens"),
                get(tokens::list).post(tokens::create),
            )
            .route(&format!("{prefix}/tokens/verify"), get(verify::verify))
            .route(
                &format!("{prefix}/tokens/permission_groups"),
                get(permission_groups::list),
            )
            .route(
                &format!("{prefix}/tokens/{{token_id}}"),
                get(tokens::get).put(tokens::update).delete(tokens::delete),
            )
            .route(
                &format!("{prefix}/tokens/{{token_id}}/value"),
                put(tokens::roll),
            )
            .route(&format!("{prefix}/audit_logs"), get(audit_logs::list))
    };
    let max_body = state.limits.max_body_bytes;
    let router = Router::new()
        .merge(family("/client/v4/user"))
        .merge(family("/client/v4/accounts/{account_id}"))
        .merge(dashboard::routes())
        .route("/client/v4/openapi.json", get(openapi::serve))
        .route("/metrics", get(crate::metrics::serve))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/client/v4/user", get(identity::user))
        .route("/client/v4/accounts", get(identity::accounts))
        .route(
            "/latchkey/v1/authorize",
            get(authorize::forward_auth).post(authorize::decision),
        )
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body));
    router.layer(ObserveLayer).with_state(state)
}
