//! Prometheus metrics, served at `GET /metrics`. Counters and histograms are recorded where
//! things happen (through the `metrics` facade); gauges that describe state (pools, cache
//! size, pending last-use times) are read when the page is rendered.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `latchkey_http_request_duration_seconds` (histogram) | `route`, `method`, `status` | every request; `_count` counts them |
//! | `latchkey_authentications_total` | `outcome` | bearer-token checks: `ok`, `missing`, `malformed`, `unknown`, `disabled`, `expired`, `not_yet_valid`, `address_refused`, `global_key` |
//! | `latchkey_authorize_decisions_total` | `allowed`, `reason` | `/latchkey/v1/authorize` answers |
//! | `latchkey_token_cache_lookups_total` | `result` | `hit`, `miss`, `known_unknown` |
//! | `latchkey_rate_limited_total` | `limit` | refusals: `owner` (971), `auth_failures` (1016) |
//! | `latchkey_token_cache_entries` (gauge) | | tokens cached |
//! | `latchkey_db_pool_connections` (gauge) | `pool`, `state` | `idle` and `busy` connections |
//! | `latchkey_db_pool_max_connections` (gauge) | `pool` | the pool's ceiling |
//! | `latchkey_last_used_pending` (gauge) | | last-use times not yet written |
//! | `latchkey_last_used_flush_lag_seconds` (gauge) | | age of the oldest unwritten last-use time |
//!
//! Labels never carry ids or paths as sent: `route` is the route's template
//! (`/client/v4/user/tokens/{token_id}`), or `unmatched`.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use latchkey_core::Unusable;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::{Failure, Unknown};
use crate::state::AppState;

/// Name of the request histogram.
pub const REQUEST_SECONDS: &str = "latchkey_http_request_duration_seconds";

/// Upper bounds of the request histogram's buckets, in seconds: verify answers in tens of
/// microseconds, a write in milliseconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    5.0,
];

/// The process's Prometheus recorder, installed as the global `metrics` recorder on first
/// use. If the embedding program installed another recorder first, this one renders only
/// the gauges set at render time.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.to_owned()), &BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics will be partial");
        }
        handle
    })
}

/// Counts one authentication by its outcome.
pub fn authentication(failure: Option<Failure>) {
    let outcome = match failure {
        None => "ok",
        Some(Failure::Unknown(Unknown::Missing)) => "missing",
        Some(Failure::Unknown(Unknown::GlobalKey)) => "global_key",
        Some(Failure::Unknown(Unknown::MalformedHeader)) => "malformed",
        Some(Failure::Unknown(Unknown::NotAToken)) => "unknown",
        Some(Failure::Refused(Unusable::Disabled)) => "disabled",
        Some(Failure::Refused(Unusable::Expired)) => "expired",
        Some(Failure::Refused(Unusable::NotYetValid)) => "not_yet_valid",
        Some(Failure::Refused(Unusable::AddressRefused(_))) => "address_refused",
    };
    metrics::counter!("latchkey_authentications_total", "outcome" => outcome).increment(1);
}

/// Counts one answer of the authorize endpoints.
pub fn authorize_decision(allowed: bool, reason: &latchkey_core::Reason) {
    use latchkey_core::Reason;
    let reason = match reason {
        Reason::Allowed => "allowed",
        Reason::DeniedByPolicy => "denied_by_policy",
        Reason::NoAllowMatched => "no_allow_matched",
        Reason::OwnerLacksResource => "owner_lacks_resource",
        Reason::Unusable(Unusable::Disabled) => "disabled",
        Reason::Unusable(Unusable::Expired) => "expired",
        Reason::Unusable(Unusable::NotYetValid) => "not_yet_valid",
        Reason::Unusable(Unusable::AddressRefused(_)) => "address_refused",
    };
    let allowed = if allowed { "true" } else { "false" };
    metrics::counter!("latchkey_authorize_decisions_total", "allowed" => allowed, "reason" => reason)
        .increment(1);
}

/// Counts one token-cache lookup: `hit`, `miss` or `known_unknown`.
pub fn cache_lookup(result: &'static str) {
    metrics::counter!("latchkey_token_cache_lookups_total", "result" => result).increment(1);
}

/// Counts one rate-limit refusal: `owner` or `auth_failures`.
pub fn rate_limited(limit: &'static str) {
    metrics::counter!("latchkey_rate_limited_total", "limit" => limit).increment(1);
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
pub async fn serve(State(state): State<AppState>) -> Response {
    let handle = handle();
    for pool in state.store.pools() {
        let busy = pool.open.saturating_sub(pool.idle);
        metrics::gauge!("latchkey_db_pool_connections", "pool" => pool.name, "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!("latchkey_db_pool_connections", "pool" => pool.name, "state" => "busy")
            .set(f64::from(busy));
        metrics::gauge!("latchkey_db_pool_max_connections", "pool" => pool.name)
            .set(f64::from(pool.max));
    }
    metrics::gauge!("latchkey_token_cache_entries").set(state.cache.len() as f64);
    let (pending, lag) = state.last_used.backlog();
    metrics::gauge!("latchkey_last_used_pending").set(pending as f64);
    metrics::gauge!("latchkey_last_used_flush_lag_seconds").set(lag.as_secs_f64());
    handle.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        handle.render(),
    )
        .into_response()
}
