//! The per-owner request limit and the failed-authentication limit per address.

use std::net::IpAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request};
use latchkey_server::Limits;
use serde_json::json;

use crate::kit::*;

const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

/// GET `path` with `token` from `from`: (status, headers).
async fn get(app: &TestApp, path: &str, token: &str, from: IpAddr) -> (u16, HeaderMap) {
    let request = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let response = app.send_raw(request, from).await;
    (response.status().as_u16(), response.headers().clone())
}

fn header(headers: &HeaderMap, name: &str) -> u64 {
    headers[name].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn each_owner_has_its_allowance_and_is_told_what_is_left() {
    let app = TestApp::with_limits(Limits {
        rate_limit: 5,
        ..Limits::default()
    })
    .await;
    let (_, account_token) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await; // the admin's first request
    let mut left = Vec::new();
    for _ in 0..3 {
        let (status, headers) =
            get(&app, "/client/v4/user/tokens", app.admin_token(), LOCALHOST).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-ratelimit-limit"), 5);
        left.push(header(&headers, "x-ratelimit-remaining"));
        // 300 s / 5 = 60 s per request used.
        assert!(header(&headers, "x-ratelimit-reset") <= 60 * 5);
    }
    assert_eq!(left, [3, 2, 1]);
    // Verify counts too.
    let (status, _) = get(
        &app,
        "/client/v4/user/tokens/verify",
        app.admin_token(),
        LOCALHOST,
    )
    .await;
    assert_eq!(status, 200);
    let (status, headers) = get(&app, "/client/v4/user/tokens", app.admin_token(), LOCALHOST).await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "x-ratelimit-remaining"), 0);
    let retry = header(&headers, "retry-after");
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    let refused = app
        .call(
            Method::GET,
            "/client/v4/user/tokens",
            Some(app.admin_token()),
            None,
        )
        .await;
    refused.assert_error(429, 971);
    // Another owner (the account) is not affected...
    let (status, headers) = get(
        &app,
        &format!("/client/v4/accounts/{}/tokens", app.account_id()),
        &account_token,
        LOCALHOST,
    )
    .await;
    assert_eq!(
        (status, header(&headers, "x-ratelimit-remaining")),
        (200, 4)
    );
    // ...and authorize decisions, which answer for your own API, are not counted.
    let decision = app
        .post(
            "/latchkey/v1/authorize",
            app.admin_token(),
            json!({"permission_group": API_TOKENS_WRITE,
                   "resource": format!("com.cloudflare.api.user.{}", app.user_id())}),
        )
        .await;
    assert_eq!(decision.ok()["allowed"], true);
}

#[tokio::test]
async fn failed_authentication_is_throttled_per_address() {
    let app = TestApp::with_limits(Limits {
        auth_failure_limit: 10, // one failure comes back every second
        ..Limits::default()
    })
    .await;
    let wrong = format!("cfut_{}", "a".repeat(46));
    // Requests without credentials are not guesses: they do not count.
    for _ in 0..30 {
        app.call(Method::GET, "/client/v4/user/tokens", None, None)
            .await
            .assert_error(403, 9106);
    }
    for _ in 0..10 {
        let (status, _) = get(&app, "/client/v4/user/tokens", &wrong, LOCALHOST).await;
        assert_eq!(status, 403);
    }
    let (status, headers) = get(&app, "/client/v4/user/tokens/verify", &wrong, LOCALHOST).await;
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), 1);
    // While blocked, even the right token from that address is refused, unexamined: a
    // right guess is no quicker to find than a wrong one.
    app.call(
        Method::GET,
        "/client/v4/user/tokens",
        Some(app.admin_token()),
        None,
    )
    .await
    .assert_error(429, 1016);
    let decision = app
        .post(
            "/latchkey/v1/authorize",
            app.admin_token(),
            json!({"permission_group": API_TOKENS_READ, "resource": "com.cloudflare.api.user.x"}),
        )
        .await;
    decision.assert_error(429, 1016);
    // Another address is not affected.
    let (status, _) = get(&app, "/client/v4/user/tokens", app.admin_token(), OTHER).await;
    assert_eq!(status, 200);
    // After Retry-After, the address may try again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = get(&app, "/client/v4/user/tokens", app.admin_token(), LOCALHOST).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn zero_turns_both_limits_off() {
    let app = TestApp::with_limits(Limits {
        rate_limit: 0,
        auth_failure_limit: 0,
        ..Limits::default()
    })
    .await;
    let wrong = format!("cfut_{}", "a".repeat(46));
    for _ in 0..50 {
        let (status, headers) = get(&app, "/client/v4/user/tokens", &wrong, LOCALHOST).await;
        assert_eq!(status, 403);
        assert!(!headers.contains_key("x-ratelimit-limit"));
    }
    let (status, headers) = get(&app, "/client/v4/user/tokens", app.admin_token(), LOCALHOST).await;
    assert_eq!(status, 200);
    assert!(!headers.contains_key("x-ratelimit-limit"));
}
