//! The dashboard's files: served from the binary at `/`, locked down by their headers, and
//! fetching nothing from anywhere else. The page itself is tested in a real browser by
//! scripts/dashboard-test.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;

use crate::kit::*;

async fn fetch(app: &TestApp, path: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let request = Request::builder().uri(path).body(Body::empty()).unwrap();
    let response = app.send_raw(request, LOCALHOST).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_a_strict_policy() {
    let app = TestApp::new().await;
    for (path, kind, marker) in [
        ("/", "text/html; charset=utf-8", "/dashboard/app.js"),
        (
            "/dashboard/app.js",
            "text/javascript; charset=utf-8",
            "sessionStorage",
        ),
        ("/dashboard/style.css", "text/css; charset=utf-8", ":root"),
        ("/dashboard/favicon.svg", "image/svg+xml", "<svg"),
    ] {
        let (status, headers, body) = fetch(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], kind, "{path}");
        assert!(body.contains(marker), "{path} is the real file");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(csp.contains("connect-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        // No asset names another origin: nothing is fetched from a CDN. (SVG's namespace is
        // a name, not an address anything fetches.)
        let body = body.replace(r#"xmlns="http://www.w3.org/2000/svg""#, "");
        for scheme in ["http://", "https://", "//cdn", "@import"] {
            assert!(!body.contains(scheme), "{path} mentions {scheme}");
        }
    }
    // Only those paths: anything else under /dashboard is the API's JSON 404.
    app.call(Method::GET, "/dashboard/other.js", None, None)
        .await
        .assert_error(404, 7003);
    app.call(Method::POST, "/", None, None)
        .await
        .assert_error(405, 7001);
}
