//! Prometheus metrics, served at `GET /metrics`. Counters and histograms are recorded where
//! things happen (through the `metrics` facade); gauges that describe state (pools, cache
//! size, pending last-use times) are read when the page is rendered.
//!
//! The metrics, their labels and what they count are listed in docs/operating.md (under
//! "Logs, metrics, health"), the one place that documents them.
//!
//! Labels never carry ids or paths as sent: `route` is the route's template
//! (`/client/v4/user/tokens/{token_id}`), or `unmatched`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use latchkey_core::Unusable;
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::per_thread::PerThread;

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

thread_local! {
    /// This thread's handles of the request histogram, by route, method and status:
    /// looking a handle up here costs one hash, where `metrics::histogram!` would allocate
    /// three labels and search the registry on every request (about a tenth of verify's
    /// throughput, measured with wrk).
    static REQUEST_HISTOGRAMS: RefCell<HashMap<(&'static str, &'static str, u16), Histogram>> =
        RefCell::default();
}

/// Records one request's duration under its route template, method and status.
pub fn request(route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
    REQUEST_HISTOGRAMS.with_borrow_mut(|histograms| {
        histograms
            .entry((route, method, status))
            .or_insert_with(|| {
                metrics::histogram!(
                    REQUEST_SECONDS,
                    "route" => route, "method" => method, "status" => status.to_string()
                )
            })
            .record(elapsed.as_secs_f64());
    });
}

/// Outcomes of `latchkey_authentications_total`, in [`authentication`]'s order.
const AUTH_OUTCOMES: [&str; 9] = [
    "ok",
    "missing",
    "global_key",
    "malformed",
    "unknown",
    "disabled",
    "expired",
    "not_yet_valid",
    "address_refused",
];

/// Reasons of `latchkey_authorize_decisions_total`, in [`authorize_decision`]'s order; only
/// the first allows.
const AUTHORIZE_REASONS: [&str; 8] = [
    "allowed",
    "denied_by_policy",
    "no_allow_matched",
    "owner_lacks_resource",
    "disabled",
    "expired",
    "not_yet_valid",
    "address_refused",
];

/// Results of `latchkey_token_cache_lookups_total`.
const CACHE_RESULTS: [&str; 3] = ["hit", "miss", "known_unknown"];

/// Where each counter counted on every request starts in [`HotCounters`]' counts.
const AUTH_AT: usize = 0;
const AUTHORIZE_AT: usize = AUTH_AT + AUTH_OUTCOMES.len();
const CACHE_AT: usize = AUTHORIZE_AT + AUTHORIZE_REASONS.len();
const HOT_COUNTERS: usize = CACHE_AT + CACHE_RESULTS.len();

/// The counters counted on every request. They are counted per thread ([`PerThread`]) and
/// handed to the recorder's counters when `/metrics` is rendered ([`publish_hot`]): the
/// recorder's own counters are one shared atomic each (and a second for recency), which
/// both cores would write on every request.
struct HotCounters {
    counts: PerThread<[AtomicU64; HOT_COUNTERS]>,
    /// The recorder's handles, in the same order.
    published: Vec<Counter>,
}

fn hot() -> &'static HotCounters {
    static HOT: OnceLock<HotCounters> = OnceLock::new();
    HOT.get_or_init(|| {
        handle();
        let authentications = AUTH_OUTCOMES.map(
            |outcome| metrics::counter!("latchkey_authentications_total", "outcome" => outcome),
        );
        let authorize = AUTHORIZE_REASONS.map(|reason| {
            let allowed = if reason == "allowed" { "true" } else { "false" };
            metrics::counter!(
                "latchkey_authorize_decisions_total",
                "allowed" => allowed, "reason" => reason
            )
        });
        let cache = CACHE_RESULTS.map(
            |result| metrics::counter!("latchkey_token_cache_lookups_total", "result" => result),
        );
        HotCounters {
            counts: PerThread::default(),
            published: authentications
                .into_iter()
                .chain(authorize)
                .chain(cache)
                .collect(),
        }
    })
}

/// Adds one to hot counter `index`.
fn count(index: usize) {
    hot().counts.local()[index].fetch_add(1, Ordering::Relaxed);
}

/// Hands the hot counters' totals to the recorder.
fn publish_hot() {
    let hot = hot();
    for (index, counter) in hot.published.iter().enumerate() {
        let total = hot
            .counts
            .iter()
            .map(|counts| counts[index].load(Ordering::Relaxed))
            .sum();
        counter.absolute(total);
    }
}

/// How an authentication ended, as `latchkey_authentications_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A usable token.
    Ok = 0,
    /// No credentials.
    Missing = 1,
    /// Global API Key headers.
    GlobalKey = 2,
    /// An `Authorization` header that is not `Bearer <token68>`.
    MalformedHeader = 3,
    /// A credential that is no latchkey token.
    NotAToken = 4,
    /// A disabled token.
    Disabled = 5,
    /// An expired token.
    Expired = 6,
    /// A token not valid yet.
    NotYetValid = 7,
    /// A token refused from this address.
    AddressRefused = 8,
}

/// Counts one authentication by its outcome.
pub fn authentication(outcome: AuthOutcome) {
    count(AUTH_AT + outcome as usize);
}

/// Counts one answer of the authorize endpoints, by its reason (which says whether it
/// allowed).
pub fn authorize_decision(reason: &latchkey_core::Reason) {
    use latchkey_core::Reason;
    let index = match reason {
        Reason::Allowed => 0,
        Reason::DeniedByPolicy => 1,
        Reason::NoAllowMatched => 2,
        Reason::OwnerLacksResource => 3,
        Reason::Unusable(Unusable::Disabled) => 4,
        Reason::Unusable(Unusable::Expired) => 5,
        Reason::Unusable(Unusable::NotYetValid) => 6,
        Reason::Unusable(Unusable::AddressRefused(_)) => 7,
    };
    count(AUTHORIZE_AT + index);
}

/// What a token-cache lookup found.
#[derive(Debug, Clone, Copy)]
pub enum CacheResult {
    /// A cached token.
    Hit = 0,
    /// Nothing cached: the store was asked.
    Miss = 1,
    /// A secret recently found to be no token.
    KnownUnknown = 2,
}

/// Counts one token-cache lookup.
pub fn cache_lookup(result: CacheResult) {
    count(CACHE_AT + result as usize);
}

/// Counts one rate-limit refusal: `owner` or `auth_failures`.
pub fn rate_limited(limit: &'static str) {
    metrics::counter!("latchkey_rate_limited_total", "limit" => limit).increment(1);
}

/// Counts one reported secret by endpoint (`github` or `report`) and label
/// (`true_positive` or `false_positive`).
pub fn leak_reported(endpoint: &'static str, label: &'static str) {
    metrics::counter!("latchkey_leak_reports_total", "endpoint" => endpoint, "label" => label)
        .increment(1);
}

/// Counts one email: `sent`, or `failed` (after its retries).
pub fn email(result: &'static str) {
    metrics::counter!("latchkey_emails_total", "result" => result).increment(1);
}

/// Counts one token disabled because its secret was reported leaked.
pub fn token_exposed() {
    metrics::counter!("latchkey_tokens_exposed_total").increment(1);
}

/// Sets the gauges read at a scrape, hands over the hot counters, and renders every metric
/// in Prometheus' text format.
pub fn render(gauges: Gauges) -> String {
    let handle = handle();
    for pool in gauges.pools {
        let busy = pool.open.saturating_sub(pool.idle);
        metrics::gauge!("latchkey_db_pool_connections", "pool" => pool.name, "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!("latchkey_db_pool_connections", "pool" => pool.name, "state" => "busy")
            .set(f64::from(busy));
        metrics::gauge!("latchkey_db_pool_max_connections", "pool" => pool.name)
            .set(f64::from(pool.max));
    }
    metrics::gauge!("latchkey_token_cache_entries").set(gauges.cached_tokens as f64);
    metrics::gauge!("latchkey_last_used_pending").set(gauges.last_used_pending as f64);
    metrics::gauge!("latchkey_last_used_flush_lag_seconds").set(gauges.last_used_lag.as_secs_f64());
    publish_hot();
    handle.run_upkeep();
    handle.render()
}

/// What a scrape reads from the running server.
#[derive(Debug)]
pub struct Gauges {
    /// The store's connection pools.
    pub pools: Vec<latchkey_store::PoolUse>,
    /// Tokens in the token cache.
    pub cached_tokens: usize,
    /// Last-use times waiting for the next flush.
    pub last_used_pending: usize,
    /// How far the oldest of them lags.
    pub last_used_lag: Duration,
}
