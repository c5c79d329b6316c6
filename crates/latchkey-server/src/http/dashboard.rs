//! The web dashboard: four static files (the page, its script, its style and its icon), embedded in the binary at build time and served
//! at `/`. The page talks only to the public API (`/client/v4`), so it adds no power a
//! token does not already have; see `dashboard/app.js`.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// No script, style or connection leaves this origin; nothing may frame the page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (X_FRAME_OPTIONS, "DENY"),
            (REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// (path, content type, contents) of each file.
const FILES: [(&str, &str, &str); 4] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../../dashboard/index.html"),
    ),
    (
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../dashboard/app.js"),
    ),
    (
        "/dashboard/style.css",
        "text/css; charset=utf-8",
        include_str!("../../dashboard/style.css"),
    ),
    (
        "/dashboard/favicon.svg",
        "image/svg+xml",
        include_str!("../../dashboard/favicon.svg"),
    ),
];

/// `GET /` and `GET /dashboard/{app.js,style.css,favicon.svg}`.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    FILES
        .into_iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            router.route(path, get(move || async move { asset(content_type, body) }))
        })
}
