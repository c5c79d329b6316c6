//! Create, get, update, roll and delete on both families.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};
use time::Duration;

use crate::kit::*;

fn is_id(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[tokio::test]
async fn create_returns_the_secret_once_and_get_never_does() {
    let app = TestApp::new().await;
    for (family, prefix) in [(Family::User, "cfut_"), (Family::Account, "cfat_")] {
        let (read, _) = groups(family);
        let resource = app.resource(family);
        let body = json!({
            "name": "readonly token",
            "policies": [{"id": "f267e341f3dd4697bd3b9f71dd96247f", "effect": "allow",
                          "permission_groups": [{"id": read, "name": "ignored name", "meta": {"key": "k", "value": "v"}}],
                          "resources": {resource.clone(): "*"}}],
            "not_before": "2026-05-01T07:20:00+02:00",
            "expires_on": "2030-01-01T00:00:00.123Z",
            "condition": {"request.ip": {"in": ["127.0.0.0/8", "2400:cb00::/32"], "not_in": ["127.0.0.2/32"]}},
        });
        let r = app
            .post(&app.tokens_path(family), app.admin_token(), body)
            .await;
        let created = r.ok().clone();
        let secret = created["value"].as_str().unwrap();
        assert!(secret.starts_with(prefix) && (40..=80).contains(&secret.len()));
        assert!(is_id(&created["id"]));
        assert!(is_id(&created["policies"][0]["id"]));
        assert_ne!(
            created["policies"][0]["id"],
            "f267e341f3dd4697bd3b9f71dd96247f"
        );
        let group_name = match family {
            Family::User => "API Tokens Read",
            Family::Account => "Account API Tokens Read",
        };
        assert_eq!(
            created["policies"][0]["permission_groups"],
            json!([{"id": read, "name": group_name, "meta": {"key": "k", "value": "v"}}])
        );
        assert_eq!(created["policies"][0]["resources"], json!({resource: "*"}));
        assert_eq!(created["status"], "active");
        assert_eq!(created["issued_on"], "2026-06-01T12:00:00Z");
        assert_eq!(created["modified_on"], "2026-06-01T12:00:00Z");
        assert_eq!(created["not_before"], "2026-05-01T05:20:00Z");
        assert_eq!(created["expires_on"], "2030-01-01T00:00:00Z");
        assert_eq!(
            created["condition"],
            json!({"request_ip": {"in": ["127.0.0.0/8", "2400:cb00::/32"], "not_in": ["127.0.0.2/32"]}})
        );

        let id = created["id"].as_str().unwrap();
        let fetched = app
            .get(
                &format!("{}/{id}", app.tokens_path(family)),
                app.admin_token(),
            )
            .await;
        let mut expected = created.clone();
        expected.as_object_mut().unwrap().remove("value");
        assert_eq!(fetched.ok(), &expected);
        let listed = app.get(&app.tokens_path(family), app.admin_token()).await;
        assert!(listed
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("value").is_none()));
        // The secret works.
        app.get(&format!("{}/verify", app.tokens_path(family)), secret)
            .await
            .ok();
    }
}

#[tokio::test]
async fn update_is_a_full_replacement_that_ignores_read_only_fields() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, write) = groups(family);
        let mut body = app.body_with(family, read);
        body["expires_on"] = json!("2030-01-01T00:00:00Z");
        body["condition"] = json!({"request_ip": {"in": ["127.0.0.0/8"]}});
        let (id, secret) = app.create(family, body).await;
        let path = format!("{}/{id}", app.tokens_path(family));
        app.clock.advance(Duration::minutes(1));

        let mut whole = app.get(&path, app.admin_token()).await.ok().clone();
        let issued_on = whole["issued_on"].clone();
        let modified_on = latchkey_api::timestamp::format(app.clock.now());
        whole["name"] = json!("renamed");
        whole["policies"] = json!([allow(write, &app.resource(family))]);
        whole["issued_on"] = json!("2000-01-01T00:00:00Z");
        whole["id"] = json!("ffffffffffffffffffffffffffffffff");
        whole.as_object_mut().unwrap().remove("expires_on");
        whole.as_object_mut().unwrap().remove("condition");
        let updated = app.put(&path, app.admin_token(), whole).await.ok().clone();
        assert_eq!(updated["id"], id.as_str());
        assert_eq!(updated["name"], "renamed");
        assert_eq!(updated["issued_on"], issued_on);
        assert_eq!(updated["modified_on"], modified_on);
        assert_ne!(issued_on, modified_on);
        assert_eq!(updated["policies"][0]["permission_groups"][0]["id"], write);
        assert!(updated.get("expires_on").is_none(), "absent means removed");
        assert!(updated.get("condition").is_none());
        assert_eq!(updated["status"], "active", "status kept when not sent");
        assert!(updated.get("value").is_none());
        assert_eq!(app.get(&path, app.admin_token()).await.ok(), &updated);
        // The token now holds Write: it can create.
        app.post(
            &app.tokens_path(family),
            &secret,
            app.body_with(family, read),
        )
        .await
        .ok();

        // Status disabled and back to active.
        let mut body = app.body_with(family, read);
        body["status"] = json!("disabled");
        assert_eq!(
            app.put(&path, app.admin_token(), body.clone()).await.ok()["status"],
            "disabled"
        );
        body["status"] = json!("active");
        assert_eq!(
            app.put(&path, app.admin_token(), body).await.ok()["status"],
            "active"
        );
    }
}

#[tokio::test]
async fn roll_replaces_only_the_secret_and_accepts_any_empty_body() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, _) = groups(family);
        let (id, mut secret) = app.create_with(family, read).await;
        let path = format!("{}/{id}", app.tokens_path(family));
        let verify = format!("{}/verify", app.tokens_path(family));
        let before = app.get(&path, app.admin_token()).await.ok().clone();
        app.clock.advance(Duration::minutes(1));
        let bodies = [
            (Some("application/json"), "{}"),
            (None, ""),
            (Some("application/json"), ""),
            (Some("text/plain"), "{\"ignored\": true}"),
            // cloudflare-go's `Tokens.Value.Update(ctx, id, TokenValueUpdateParams{})`
            // marshals its empty params as `null`.
            (Some("application/json"), "null"),
        ];
        for (content_type, body) in bodies {
            let mut request = Request::put(format!("{path}/value"))
                .header("authorization", format!("Bearer {}", app.admin_token()));
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let r = app
                .send(request.body(Body::from(body)).unwrap(), LOCALHOST)
                .await;
            let new_secret = r.ok().as_str().unwrap().to_owned();
            assert_ne!(new_secret, secret);
            assert_eq!(&new_secret[..5], &secret[..5], "same family prefix");
            app.get(&verify, &secret).await.assert_error(401, 1000);
            app.get(&verify, &new_secret).await.ok();
            secret = new_secret;
        }
        let mut after = app.get(&path, app.admin_token()).await.ok().clone();
        after.as_object_mut().unwrap().remove("last_used_on");
        let mut before = before;
        before.as_object_mut().unwrap().remove("last_used_on");
        assert_eq!(after, before, "everything but the secret is unchanged");

        let r = app
            .call(
                Method::PUT,
                &format!("{path}/value"),
                Some(app.admin_token()),
                Some(json!([1])),
            )
            .await;
        r.assert_error(400, 1003);
        let garbage = Request::put(format!("{path}/value"))
            .header("authorization", format!("Bearer {}", app.admin_token()))
            .body(Body::from("{not json"))
            .unwrap();
        app.send(garbage, LOCALHOST).await.assert_error(400, 6007);
    }
}

#[tokio::test]
async fn delete_removes_and_unknown_ids_are_404() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, _) = groups(family);
        let (id, _) = app.create_with(family, read).await;
        let path = format!("{}/{id}", app.tokens_path(family));
        let r = app.delete(&path, app.admin_token()).await;
        assert_eq!(r.ok(), &json!({"id": id}));
        let r = app.get(&path, app.admin_token()).await;
        r.assert_error(404, 7003);
        assert_eq!(
            r.body["errors"][0]["message"],
            format!("Could not route to {path}, perhaps your object identifier is invalid?")
        );
        app.delete(&path, app.admin_token())
            .await
            .assert_error(404, 7003);
        app.put(&path, app.admin_token(), app.body_with(family, read))
            .await
            .assert_error(404, 7003);
        app.put(&format!("{path}/value"), app.admin_token(), json!({}))
            .await
            .assert_error(404, 7003);
        // Malformed ids are 404 too.
        for bad in [
            "abc",
            "ED17574386854BF78A67040BE0A770B0",
            "ed17574386854bf78a67040be0a770b0x",
        ] {
            app.get(
                &format!("{}/{bad}", app.tokens_path(family)),
                app.admin_token(),
            )
            .await
            .assert_error(404, 7003);
        }
    }
}

#[tokio::test]
async fn families_do_not_see_each_others_tokens() {
    let app = TestApp::new().await;
    let (user_token, _) = app.create_with(Family::User, API_TOKENS_READ).await;
    let (account_token, _) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    app.get(
        &format!("{}/{user_token}", app.tokens_path(Family::Account)),
        app.admin_token(),
    )
    .await
    .assert_error(404, 7003);
    app.get(
        &format!("{}/{account_token}", app.tokens_path(Family::User)),
        app.admin_token(),
    )
    .await
    .assert_error(404, 7003);
    app.delete(
        &format!("{}/{account_token}", app.tokens_path(Family::User)),
        app.admin_token(),
    )
    .await
    .assert_error(404, 7003);
}

#[tokio::test]
async fn a_token_past_expires_on_reads_back_expired() {
    let app = TestApp::new().await;
    let mut body = app.body_with(Family::User, API_TOKENS_READ);
    body["expires_on"] = json!(latchkey_api::timestamp::format(
        app.clock.now() + Duration::hours(1)
    ));
    let (id, _) = app.create(Family::User, body).await;
    let path = format!("/client/v4/user/tokens/{id}");
    assert_eq!(
        app.get(&path, app.admin_token()).await.ok()["status"],
        "active"
    );
    app.clock.advance(Duration::hours(1));
    assert_eq!(
        app.get(&path, app.admin_token()).await.ok()["status"],
        "expired"
    );
}

#[tokio::test]
async fn quotas_are_enforced_per_owner() {
    let app = TestApp::with_limits(latchkey_server::Limits {
        user_token_quota: 3,
        account_token_quota: 2,
        ..Default::default()
    })
    .await;
    // The admin token itself counts towards its user's quota.
    for family in FAMILIES {
        let (read, _) = groups(family);
        let quota = match family {
            Family::User => 2,
            Family::Account => 2,
        };
        for _ in 0..quota {
            app.create_with(family, read).await;
        }
        let r = app
            .post(
                &app.tokens_path(family),
                app.admin_token(),
                app.body_with(family, read),
            )
            .await;
        r.assert_error(400, 1011);
    }
}

#[tokio::test]
async fn concurrent_creates_never_exceed_the_quota() {
    let app = TestApp::with_limits(latchkey_server::Limits {
        account_token_quota: 10,
        ..Default::default()
    })
    .await;
    let body = app.body_with(Family::Account, ACCOUNT_API_TOKENS_READ);
    let path = app.tokens_path(Family::Account);
    let results = futures_join(&app, &path, &body, 25).await;
    let ok = results.iter().filter(|s| **s == 200).count();
    let refused = results.iter().filter(|s| **s == 400).count();
    assert_eq!((ok, refused), (10, 15), "{results:?}");
}

async fn futures_join(app: &TestApp, path: &str, body: &Value, n: usize) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let state = app.state.clone();
        let request = Request::post(path)
            .header("authorization", format!("Bearer {}", app.admin_token()))
            .header("content-type", "application/json")
            .extension(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                1,
            ))))
            .body(Body::from(body.to_string()))
            .unwrap();
        set.spawn(async move {
            use tower::ServiceExt;
            latchkey_server::router(state)
                .oneshot(request)
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    set.join_all().await
}
