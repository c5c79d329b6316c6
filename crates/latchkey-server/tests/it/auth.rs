//! Authentication and authorisation rows of the error contract, on a management endpoint.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;
use time::Duration;

use crate::kit::*;

#[tokio::test]
async fn no_credentials_is_403_9106_and_9107() {
    let app = TestApp::new().await;
    let r = app
        .call(Method::GET, "/client/v4/user/tokens", None, None)
        .await;
    r.assert_error(403, 9106);
    assert_eq!(r.body["errors"][1]["code"], 9107);
    assert_eq!(
        r.body["errors"][0]["message"],
        "Missing X-Auth-Email header"
    );
}

#[tokio::test]
async fn global_api_key_credentials_are_unknown() {
    let app = TestApp::new().await;
    let request = Request::get("/client/v4/user/tokens")
        .header("x-auth-email", "user@example.com")
        .header("x-auth-key", "144c9defac04969c7bfad8efaa8ea194")
        .body(Body::empty())
        .unwrap();
    app.send(request, LOCALHOST).await.assert_error(403, 9103);
}

#[tokio::test]
async fn a_header_that_is_not_bearer_token68_is_400_6003_6111() {
    let app = TestApp::new().await;
    for value in [
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        format!("Bearer  {}", app.admin_token()),
        format!("Bearer \"{}\"", app.admin_token()),
        format!("Basic {}", app.admin_token()),
        "Bearer two words".to_owned(),
        app.admin_token().to_owned(),
    ] {
        let request = Request::get("/client/v4/user/tokens")
            .header("authorization", &value)
            .body(Body::empty())
            .unwrap();
        let r = app.send(request, LOCALHOST).await;
        r.assert_error(400, 6003);
        assert_eq!(
            r.body["errors"][0]["error_chain"][0]["code"], 6111,
            "{value}"
        );
    }
}

#[tokio::test]
async fn unknown_or_malformed_secrets_are_403_9109() {
    let app = TestApp::new().await;
    let good = app.admin_token().to_owned();
    let mut flipped = good.clone().into_bytes();
    flipped[12] = if flipped[12] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let other = latchkey_core::Secret::generate(latchkey_core::SecretKind::User);
    for secret in [
        flipped.as_str(),
        other.expose(),
        "8M7wS6hCpXVc-DoRnPPY_UCWPgy8aea4Wy6kCe5T",
        &good.replacen("cfut_", "cfat_", 1),
    ] {
        let r = app.get("/client/v4/user/tokens", secret).await;
        r.assert_error(403, 9109);
        assert_eq!(r.body["errors"][0]["message"], "Invalid access token");
    }
}

#[tokio::test]
async fn disabled_expired_not_yet_valid_rolled_and_deleted_tokens_are_refused() {
    let app = TestApp::new().await;
    let path = "/client/v4/user/tokens";
    let now = app.clock.now();
    let (read, _) = groups(Family::User);
    let resource = app.resource(Family::User);
    let probe = |secret: String| {
        let app = &app;
        async move { app.get(path, &secret).await }
    };

    // Disabled.
    let (id, secret) = app.create_with(Family::User, read).await;
    probe(secret.clone()).await.ok();
    let mut body = app.body_with(Family::User, read);
    body["status"] = json!("disabled");
    app.put(&format!("{path}/{id}"), app.admin_token(), body)
        .await
        .ok();
    probe(secret).await.assert_error(403, 9109);

    // Expired (at exactly expires_on) and not yet valid (before not_before).
    let nb = now + Duration::hours(1);
    let exp = now + Duration::hours(2);
    let (_, secret) = app
        .create(
            Family::User,
            json!({"name": "window", "policies": [allow(read, &resource)],
                   "not_before": latchkey_api::timestamp::format(nb),
                   "expires_on": latchkey_api::timestamp::format(exp)}),
        )
        .await;
    probe(secret.clone()).await.assert_error(403, 9109);
    app.clock.advance(Duration::hours(1));
    probe(secret.clone()).await.ok();
    app.clock.advance(Duration::hours(1));
    probe(secret.clone()).await.assert_error(403, 9109);

    // Rolled away and deleted.
    let (id, secret) = app.create_with(Family::User, read).await;
    let rolled = app
        .put(&format!("{path}/{id}/value"), app.admin_token(), json!({}))
        .await;
    let new_secret = rolled.ok().as_str().unwrap().to_owned();
    probe(secret).await.assert_error(403, 9109);
    probe(new_secret.clone()).await.ok();
    app.delete(&format!("{path}/{id}"), app.admin_token())
        .await
        .ok();
    probe(new_secret).await.assert_error(403, 9109);
}

#[tokio::test]
async fn refused_client_address_names_the_location() {
    let app = TestApp::new().await;
    let (read, _) = groups(Family::User);
    let mut body = app.body_with(Family::User, read);
    body["condition"] =
        json!({"request_ip": {"in": ["10.0.0.0/8", "2001:db8::/32"], "not_in": ["10.9.0.0/16"]}});
    let (_, secret) = app.create(Family::User, body).await;
    let path = "/client/v4/user/tokens";
    let at = |ip: &str| {
        let ip = ip.parse().unwrap();
        let app = &app;
        let secret = secret.clone();
        async move {
            app.call_from(ip, Method::GET, path, Some(&secret), None)
                .await
        }
    };
    at("10.1.2.3").await.ok();
    at("2001:db8::7").await.ok();
    at("::ffff:10.1.2.3").await.ok();
    let r = at("10.9.0.1").await;
    r.assert_error(403, 9109);
    assert_eq!(
        r.body["errors"][0]["message"],
        "Cannot use the access token from location: 10.9.0.1"
    );
    let r = at("127.0.0.1").await;
    assert_eq!(
        r.body["errors"][0]["message"],
        "Cannot use the access token from location: 127.0.0.1"
    );
    at("2001:db9::1").await.assert_error(403, 9109);
}

#[tokio::test]
async fn a_valid_token_without_the_permission_is_unauthorized() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, _) = groups(family);
        let path = app.tokens_path(family);
        let (_, reader) = app.create_with(family, read).await;
        app.get(&path, &reader).await.ok();
        let r = app.post(&path, &reader, app.body_with(family, read)).await;
        r.assert_error(403, 9109);
        assert_eq!(
            r.body["errors"][0]["message"],
            "Unauthorized to access requested resource"
        );
        // A DNS-only token may do nothing with tokens.
        let (_, dns) = app
            .create(
                family,
                json!({"name": "dns", "policies": [allow(DNS_READ, "com.cloudflare.api.account.zone.*")]}),
            )
            .await;
        app.get(&path, &dns).await.assert_error(403, 9109);
        app.get(&format!("{path}/permission_groups"), &dns)
            .await
            .assert_error(403, 9109);
    }
}

#[tokio::test]
async fn deny_policies_win_over_allow() {
    let app = TestApp::new().await;
    let resource = app.resource(Family::User);
    let (_, secret) = app
        .create(
            Family::User,
            json!({"name": "write but no read", "policies": [
                allow(API_TOKENS_WRITE, "com.cloudflare.api.user.*"),
                deny(API_TOKENS_READ, &resource),
            ]}),
        )
        .await;
    app.get("/client/v4/user/tokens", &secret)
        .await
        .assert_error(403, 9109);
    // Create is granted by Write and not denied by the Read deny.
    app.post(
        "/client/v4/user/tokens",
        &secret,
        app.body_with(Family::User, API_TOKENS_READ),
    )
    .await
    .ok();
}

#[tokio::test]
async fn last_used_on_is_recorded_in_batches() {
    let app = TestApp::new().await;
    let (read, _) = groups(Family::User);
    let (id, secret) = app.create_with(Family::User, read).await;
    let path = format!("/client/v4/user/tokens/{id}");
    let before = app.get(&path, app.admin_token()).await;
    assert!(before.ok().get("last_used_on").is_none());
    app.clock.advance(Duration::minutes(5));
    app.get("/client/v4/user/tokens", &secret).await.ok();
    let used_at = latchkey_api::timestamp::format(app.clock.now());
    // Visible at once (from memory), then durable after the flush.
    assert_eq!(
        app.get(&path, app.admin_token()).await.ok()["last_used_on"],
        used_at
    );
    app.flush_last_used().await;
    let stored = app
        .state
        .store
        .get_token(
            latchkey_core::Owner::User(app.admin.user_id),
            id.parse().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        latchkey_api::timestamp::format(stored.last_used_on.unwrap()),
        used_at
    );
}
