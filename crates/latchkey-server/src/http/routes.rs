//! Every route of the service, listed once: [`routes()`] gives axum its routes and the OpenAPI
//! document its operations (utoipa-axum's `routes!` reads each handler's `#[utoipa::path]`).

use axum::extract::DefaultBodyLimit;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};
use utoipa_axum::routes;

use crate::http::handlers::{
    self, audit_logs, authorize, health, identity, leaks, permission_groups, tokens, verify,
};
use crate::http::observe::ObserveLayer;
use crate::http::{dashboard, openapi};
use crate::state::AppState;

/// The HTTP application.
///
/// There is deliberately no per-request access log or tower-http `TraceLayer` (the latter cost
/// about a third of verify's throughput in `scripts/bench`); [`crate::http::observe`] keeps to
/// an id and one histogram sample per request. Writes are logged by their handlers.
pub fn router(state: AppState) -> Router {
    // Installed before the first request, so that nothing recorded is lost.
    crate::metrics::handle();
    let max_body = state.limits.max_body_bytes;
    let (routes, document) = routes().split_for_parts();
    openapi::publish(&openapi::finish(document));
    routes
        .merge(dashboard::routes())
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(ObserveLayer)
        .with_state(state)
}

/// The OpenAPI document, as `GET /client/v4/openapi.json` serves it.
pub fn document() -> serde_json::Value {
    openapi::finish(routes().split_for_parts().1)
}

/// The routes and their documentation. Both token families share the handlers (the path
/// tells them apart): their attributes describe the user family, and [`Family::Account`]
/// moves each operation under `/client/v4/accounts/{account_id}/`.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::Doc::openapi())
        .merge(family(Family::User))
        .routes(routes!(identity::user))
        .routes(routes!(identity::accounts))
        .routes(routes!(authorize::decision, authorize::forward_auth))
        .routes(routes!(leaks::github))
        .routes(routes!(leaks::report))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi::serve))
        .routes(routes!(health::metrics))
        .merge(family(Family::Account))
}

/// The two token families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// `/client/v4/user/...`
    User,
    /// `/client/v4/accounts/{account_id}/...`
    Account,
}

/// The routes of one token family.
fn family(family: Family) -> OpenApiRouter<AppState> {
    let at = |routes: UtoipaMethodRouter<AppState>| match family {
        Family::User => routes,
        Family::Account => openapi::account_family(routes),
    };
    OpenApiRouter::new()
        .routes(at(routes!(tokens::list, tokens::create)))
        .routes(at(routes!(verify::verify)))
        .routes(at(routes!(permission_groups::list)))
        .routes(at(routes!(tokens::get, tokens::update, tokens::delete)))
        .routes(at(routes!(tokens::roll)))
        .routes(at(routes!(audit_logs::list)))
}
