//! The layer every route is wrapped in: it gives the request its id (the answer's
//! `x-request-id`, and the id of every log line written while handling it, see
//! [`crate::logs`]), records the request's duration by route, method and status
//! ([`crate::metrics::request`]), and puts the caller's rate-limit allowance on the answer
//! (`x-ratelimit-*`, see [`crate::auth::rate_limit`]).
//!
//! What the handling shares with the layer travels in a task-local [`RequestContext`]
//! rather than in request extensions: nothing to allocate per request, and log lines
//! written deep inside a handler find the id without a tracing span.
//!
//! A hand-written tower layer rather than `axum::middleware::from_fn`: `from_fn` boxes a
//! clone of the route for every request, which measured about 3% of verify's throughput.

use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, Method, Uri};
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

use crate::auth::rate_limit::Allowance;
use crate::http::request_id;

/// What the handling of one request shares with [`Observed`].
#[derive(Debug)]
pub struct RequestContext {
    id: HeaderValue,
    /// The request's URI, for errors that name the path ([`with_request_path`]).
    uri: Uri,
    allowance: Cell<Option<Allowance>>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Calls `f` with the path of the request being handled, if any.
pub fn with_request_path<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    CURRENT.try_with(|context| f(context.uri.path())).ok()
}

/// Calls `f` with the id of the request being handled, if any.
pub fn with_request_id<R>(f: impl FnOnce(&HeaderValue) -> R) -> Option<R> {
    CURRENT.try_with(|context| f(&context.id)).ok()
}

/// Records the caller's allowance, for the answer's `x-ratelimit-*` headers.
pub fn report_allowance(allowance: Allowance) {
    // Outside a request (a unit test calling an extractor directly) there is no answer to
    // put it on.
    let _ = CURRENT.try_with(|context| context.allowance.set(Some(allowance)));
}

/// Wraps a route in [`Observed`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ObserveLayer;

impl<S> Layer<S> for ObserveLayer {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Observed<S> {
        Observed { inner }
    }
}

/// A route with request ids and timing; see the module documentation.
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
}

impl<S> Service<Request> for Observed<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id::for_request(request.headers());
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map(|path| route_label(path.as_str()));
        let method = method_label(request.method());
        let context = RequestContext {
            id,
            uri: request.uri().clone(),
            allowance: Cell::new(None),
        };
        ObservedFuture {
            inner: CURRENT.scope(context, self.inner.call(request)),
            done: Some(Done {
                started,
                route,
                method,
            }),
        }
    }
}

/// What is recorded when the answer is ready.
#[derive(Debug)]
struct Done {
    started: Instant,
    route: Option<&'static str>,
    method: &'static str,
}

pin_project_lite::pin_project! {
    /// The future of an [`Observed`] call.
    pub struct ObservedFuture<F> {
        #[pin]
        inner: TaskLocalFuture<RequestContext, F>,
        done: Option<Done>,
    }
}

impl<F, E> Future for ObservedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut result = ready!(this.inner.as_mut().poll(cx));
        let context = this.inner.take_value();
        if let (Ok(response), Some(done)) = (&mut result, this.done.take()) {
            crate::metrics::request(
                done.route.unwrap_or("unmatched"),
                done.method,
                response.status().as_u16(),
                done.started.elapsed(),
            );
            let headers = response.headers_mut();
            // Answers carry secrets (create, roll) and token details: no cache keeps them.
            // The dashboard's assets set their own policy.
            headers
                .entry(axum::http::header::CACHE_CONTROL)
                .or_insert(axum::http::HeaderValue::from_static("no-store"));
            if let Some(context) = context {
                if let Some(allowance) = context.allowance.get() {
                    allowance.write(headers);
                }
                headers.insert(request_id::HEADER, context.id);
            }
        }
        Poll::Ready(result)
    }
}

/// A route template as a `'static` label, so that no request holds (and counts a reference
/// to) the router's shared copy past routing. The templates are the router's, a fixed set,
/// so the copies made here are bounded.
fn route_label(template: &str) -> &'static str {
    static ALL: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    thread_local! {
        static KNOWN: RefCell<HashMap<Box<str>, &'static str>> = RefCell::default();
    }
    KNOWN.with_borrow_mut(|known| {
        if let Some(label) = known.get(template) {
            return *label;
        }
        let mut all = ALL.lock();
        let label = match all.iter().find(|label| **label == template) {
            Some(label) => *label,
            None => {
                let label: &'static str = Box::leak(template.into());
                all.push(label);
                label
            }
        };
        known.insert(template.into(), label);
        label
    })
}

/// The method as a metric label; unusual methods share one label.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}
