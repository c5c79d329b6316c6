//! Verify on both families: 200 only for a usable token of that family (and account);
//! every refusal is 401 1000.

use axum::http::Method;
use serde_json::json;
use time::Duration;

use crate::kit::*;

#[tokio::test]
async fn verify_answers_the_presented_tokens_own_fields() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, _) = groups(family);
        let mut body = app.body_with(family, read);
        body["expires_on"] = json!("2027-01-01T00:00:00+01:00");
        body["not_before"] = json!("2026-01-01T00:00:00.5Z");
        let (id, secret) = app.create(family, body).await;
        let r = app
            .get(&format!("{}/verify", app.tokens_path(family)), &secret)
            .await;
        assert_eq!(
            r.ok(),
            &json!({"id": id, "status": "active",
                    "not_before": "2026-01-01T00:00:00Z", "expires_on": "2026-12-31T23:00:00Z"})
        );
        assert_eq!(
            r.body["messages"],
            json!([{"code": 10000, "message": "This API Token is valid and active", "type": null}])
        );
    }
}

#[tokio::test]
async fn every_refusal_on_verify_is_401_1000() {
    let app = TestApp::new().await;
    let user_verify = "/client/v4/user/tokens/verify";
    let account_verify = format!("{}/verify", app.tokens_path(Family::Account));
    let (_, user_secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let (account_token, account_secret) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;

    // Each family's verify knows only its own tokens (and account verify only its account).
    app.get(user_verify, &user_secret).await.ok();
    app.get(&account_verify, &account_secret).await.ok();
    app.get(user_verify, &account_secret)
        .await
        .assert_error(401, 1000);
    app.get(&account_verify, &user_secret)
        .await
        .assert_error(401, 1000);
    let other_account = format!(
        "/client/v4/accounts/{}/tokens/verify",
        latchkey_core::Id::random()
    );
    app.get(&other_account, &account_secret)
        .await
        .assert_error(401, 1000);

    // Unknown and malformed secrets.
    let unknown = latchkey_core::Secret::generate(latchkey_core::SecretKind::User);
    app.get(user_verify, unknown.expose())
        .await
        .assert_error(401, 1000);
    // Change the last character of the checksum (to one it is not).
    let last = if user_secret.ends_with('x') { 'y' } else { 'x' };
    let broken = format!("{}{last}", &user_secret[..user_secret.len() - 1]);
    app.get(user_verify, &broken).await.assert_error(401, 1000);

    // Disabled.
    let mut body = app.body_with(Family::Account, ACCOUNT_API_TOKENS_READ);
    body["status"] = json!("disabled");
    app.put(
        &format!("{}/{account_token}", app.tokens_path(Family::Account)),
        app.admin_token(),
        body,
    )
    .await
    .ok();
    app.get(&account_verify, &account_secret)
        .await
        .assert_error(401, 1000);

    // Refused address.
    let mut body = app.body_with(Family::User, API_TOKENS_READ);
    body["condition"] = json!({"request_ip": {"not_in": ["127.0.0.1/32"]}});
    let (_, fenced) = app.create(Family::User, body).await;
    app.get(user_verify, &fenced).await.assert_error(401, 1000);
    app.call_from(
        "::1".parse().unwrap(),
        Method::GET,
        user_verify,
        Some(&fenced),
        None,
    )
    .await
    .ok();

    // Not yet valid, then expired.
    let mut body = app.body_with(Family::User, API_TOKENS_READ);
    body["not_before"] = json!(latchkey_api::timestamp::format(
        app.clock.now() + Duration::days(1)
    ));
    body["expires_on"] = json!(latchkey_api::timestamp::format(
        app.clock.now() + Duration::days(2)
    ));
    let (_, later) = app.create(Family::User, body).await;
    app.get(user_verify, &later).await.assert_error(401, 1000);
    app.clock.advance(Duration::days(1));
    app.get(user_verify, &later).await.ok();
    app.clock.advance(Duration::days(1));
    app.get(user_verify, &later).await.assert_error(401, 1000);

    // No credentials and malformed headers keep their own rows.
    let none = app.call(Method::GET, user_verify, None, None).await;
    none.assert_error(403, 9106);
    assert_eq!(
        none.body["messages"][0]["code"], 10001,
        "says how to send a token: {}",
        none.body
    );
    assert!(none.body["messages"][0]["message"]
        .as_str()
        .unwrap()
        .contains("Authorization: Bearer <token>"));
    app.call(Method::GET, user_verify, Some("not a token"), None)
        .await
        .assert_error(400, 6003);
}

#[tokio::test]
async fn verify_needs_no_permission() {
    let app = TestApp::new().await;
    let (_, secret) = app
        .create(
            Family::User,
            json!({"name": "dns only", "policies": [allow(DNS_READ, "com.cloudflare.api.account.zone.*")]}),
        )
        .await;
    app.get("/client/v4/user/tokens/verify", &secret).await.ok();
}

/// A token refused by a verify endpoint (another family's, or another account's) has not
/// been used: its `last_used_on` stays as it was.
#[tokio::test]
async fn a_verify_that_refuses_the_token_records_no_use() {
    let app = TestApp::new().await;
    let (account_token, account_secret) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    let (user_token, user_secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let other_account = format!(
        "/client/v4/accounts/{}/tokens/verify",
        latchkey_core::Id::random()
    );
    app.get("/client/v4/user/tokens/verify", &account_secret)
        .await
        .assert_error(401, 1000);
    app.get(&other_account, &account_secret)
        .await
        .assert_error(401, 1000);
    let account_verify = format!("{}/verify", app.tokens_path(Family::Account));
    app.get(&account_verify, &user_secret)
        .await
        .assert_error(401, 1000);
    app.flush_last_used().await;
    let app = &app;
    let last_used = |family: Family, id: String| async move {
        let path = format!("{}/{id}", app.tokens_path(family));
        app.get(&path, app.admin_token()).await.ok()["last_used_on"].clone()
    };
    assert_eq!(
        last_used(Family::Account, account_token.clone()).await,
        json!(null)
    );
    assert_eq!(
        last_used(Family::User, user_token.clone()).await,
        json!(null)
    );
    // A verify that accepts it is a use.
    app.get(&account_verify, &account_secret).await.ok();
    app.flush_last_used().await;
    assert_ne!(last_used(Family::Account, account_token).await, json!(null));
}
