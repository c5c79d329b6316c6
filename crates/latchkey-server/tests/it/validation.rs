//! Body validation: 400 with a documented code and the field as a JSON pointer; the bound
//! on what a token may grant; body size.

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use crate::kit::*;

async fn create_fails(app: &TestApp, body: Value, status: u16, code: u64, pointer: &str) {
    for family in FAMILIES {
        let r = app
            .post(&app.tokens_path(family), app.admin_token(), body.clone())
            .await;
        r.assert_error(status, code);
        assert_eq!(r.pointer(), pointer, "{:#}", r.body);
    }
}

fn with_policy(policy: Value) -> Value {
    json!({"name": "t", "policies": [policy]})
}

#[tokio::test]
async fn malformed_bodies_name_the_field() {
    let app = TestApp::new().await;
    let zone = "com.cloudflare.api.account.zone.eb78d65290b24279ba6f44721b3ea3c4";
    let good_policy = allow(DNS_READ, zone);

    create_fails(&app, json!({"policies": [good_policy]}), 400, 1003, "/name").await;
    create_fails(&app, json!({"name": "t"}), 400, 1003, "/policies").await;
    create_fails(
        &app,
        json!({"name": "t", "policies": []}),
        400,
        1003,
        "/policies",
    )
    .await;
    create_fails(
        &app,
        json!({"name": 7, "policies": [good_policy]}),
        400,
        1003,
        "/name",
    )
    .await;
    create_fails(
        &app,
        json!({"name": "", "policies": [good_policy]}),
        400,
        1005,
        "/name",
    )
    .await;
    let long = "x".repeat(121);
    create_fails(
        &app,
        json!({"name": long, "policies": [good_policy]}),
        400,
        1005,
        "/name",
    )
    .await;
    let mut effect = good_policy.clone();
    effect["effect"] = json!("permit");
    create_fails(&app, with_policy(effect), 400, 1003, "/policies/0/effect").await;

    let unknown = allow("00000000000000000000000000000000", zone);
    create_fails(
        &app,
        with_policy(unknown),
        400,
        1006,
        "/policies/0/permission_groups/0/id",
    )
    .await;
    let malformed = allow("DNS Read", zone);
    create_fails(
        &app,
        with_policy(malformed),
        400,
        1006,
        "/policies/0/permission_groups/0/id",
    )
    .await;
    let no_groups = json!({"effect": "allow", "permission_groups": [], "resources": {zone: "*"}});
    create_fails(
        &app,
        with_policy(no_groups),
        400,
        1003,
        "/policies/0/permission_groups",
    )
    .await;

    for key in [
        "com.cloudflare.api.account",
        "com.cloudflare.api.account.zone",
        "com.cloudflare.api.zone.abc",
        "com.cloudflare.api.account.a b",
        "everything",
    ] {
        let pointer = format!("/policies/0/resources/{key}");
        create_fails(&app, with_policy(allow(DNS_READ, key)), 400, 1007, &pointer).await;
    }
    let not_star = json!({"effect": "allow", "permission_groups": [{"id": DNS_READ}], "resources": {zone: "read"}});
    create_fails(
        &app,
        with_policy(not_star),
        400,
        1007,
        &format!("/policies/0/resources/{zone}"),
    )
    .await;
    let bad_nest = json!({"effect": "allow", "permission_groups": [{"id": DNS_READ}],
                          "resources": {zone: {"com.cloudflare.api.account.zone.*": "*"}}});
    create_fails(
        &app,
        with_policy(bad_nest),
        400,
        1007,
        &format!("/policies/0/resources/{zone}"),
    )
    .await;
    let no_resources =
        json!({"effect": "allow", "permission_groups": [{"id": DNS_READ}], "resources": {}});
    create_fails(
        &app,
        with_policy(no_resources),
        400,
        1007,
        "/policies/0/resources",
    )
    .await;

    // A zone group on an account resource fits nothing; on the nested form it does.
    let account_key = format!("com.cloudflare.api.account.{}", app.account_id());
    create_fails(
        &app,
        with_policy(allow(DNS_READ, &account_key)),
        400,
        1008,
        "/policies/0/permission_groups/0",
    )
    .await;
    let nested = json!({"effect": "allow", "permission_groups": [{"id": DNS_READ}],
                        "resources": {account_key: {"com.cloudflare.api.account.zone.*": "*"}}});
    for family in FAMILIES {
        app.post(
            &app.tokens_path(family),
            app.admin_token(),
            with_policy(nested.clone()),
        )
        .await
        .ok();
    }

    for (list, value) in [
        ("in", "10.0.0.0/33"),
        ("in", "10.0.0.1"),
        ("not_in", "fe80::/129"),
        ("in", "nonsense"),
    ] {
        let body = json!({"name": "t", "policies": [good_policy], "condition": {"request_ip": {list: ["10.0.0.0/8", value]}}});
        create_fails(
            &app,
            body,
            400,
            1009,
            &format!("/condition/request_ip/{list}/1"),
        )
        .await;
    }

    for field in ["not_before", "expires_on"] {
        for value in [json!("tomorrow"), json!("2026-01-01"), json!(5)] {
            let body = json!({"name": "t", "policies": [good_policy], field: value});
            create_fails(&app, body, 400, 1010, &format!("/{field}")).await;
        }
    }
    let backwards = json!({"name": "t", "policies": [good_policy],
                           "not_before": "2026-02-01T00:00:00Z", "expires_on": "2026-01-01T00:00:00Z"});
    create_fails(&app, backwards, 400, 1010, "/expires_on").await;

    // Exactly 120 characters is fine, and so is a null expiry.
    let ok = json!({"name": "y".repeat(120), "policies": [good_policy], "expires_on": null});
    for family in FAMILIES {
        app.post(&app.tokens_path(family), app.admin_token(), ok.clone())
            .await
            .ok();
    }
}

#[tokio::test]
async fn malformed_json_and_missing_bodies() {
    let app = TestApp::new().await;
    for (body, code) in [
        ("{", 6007),
        ("{\"name\": \"t\",}", 6007),
        ("", 1003),
        ("[]", 1003),
        ("{} {}", 6007),
    ] {
        let request = Request::post("/client/v4/user/tokens")
            .header("authorization", format!("Bearer {}", app.admin_token()))
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        app.send(request, LOCALHOST).await.assert_error(400, code);
    }
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = TestApp::with_limits(latchkey_server::Limits {
        max_body_bytes: 1000,
        ..Default::default()
    })
    .await;
    let body = json!({"name": "x".repeat(2000), "policies": []});
    app.post("/client/v4/user/tokens", app.admin_token(), body)
        .await
        .assert_error(413, 1012);
}

#[tokio::test]
async fn a_token_cannot_grant_what_its_owner_does_not_hold() {
    let app = TestApp::new().await;
    let foreign_account = format!("com.cloudflare.api.account.{}", latchkey_core::Id::random());
    let foreign_user = format!("com.cloudflare.api.user.{}", latchkey_core::Id::random());
    let own_user = app.resource(Family::User);

    // A user token: not another user, not an account its user is not a member of.
    for key in [&foreign_user, &foreign_account] {
        let group = if key.contains(".user.") {
            API_TOKENS_READ
        } else {
            ACCOUNT_API_TOKENS_READ
        };
        let r = app
            .post(
                "/client/v4/user/tokens",
                app.admin_token(),
                with_policy(allow(group, key)),
            )
            .await;
        r.assert_error(403, 9109);
        assert_eq!(r.pointer(), format!("/policies/0/resources/{key}"));
    }
    // An account token: not a user, not another account, not another account's bucket.
    let account_path = app.tokens_path(Family::Account);
    let bucket_elsewhere = format!(
        "com.cloudflare.edge.r2.bucket.{}_default_b",
        latchkey_core::Id::random()
    );
    let bucket_here = format!(
        "com.cloudflare.edge.r2.bucket.{}_default_b",
        app.account_id()
    );
    let bucket_read = "6a018a9f2fc74eb6b293b0c548f38b39";
    for (group, key) in [
        (API_TOKENS_READ, own_user.as_str()),
        (ACCOUNT_API_TOKENS_READ, foreign_account.as_str()),
        (bucket_read, bucket_elsewhere.as_str()),
    ] {
        app.post(
            &account_path,
            app.admin_token(),
            with_policy(allow(group, key)),
        )
        .await
        .assert_error(403, 9109);
    }
    app.post(
        &account_path,
        app.admin_token(),
        with_policy(allow(bucket_read, &bucket_here)),
    )
    .await
    .ok();
    // Wildcards are bounded when evaluated, and deny policies may name anything.
    app.post(
        "/client/v4/user/tokens",
        app.admin_token(),
        json!({"name": "wild", "policies": [
            allow(ACCOUNT_API_TOKENS_READ, "com.cloudflare.api.account.*"),
            deny(ACCOUNT_API_TOKENS_READ, &foreign_account),
        ]}),
    )
    .await
    .ok();
}

/// Issue 24: without limits, 100 tokens of 1 MB of `meta` each took the process from 29 MB
/// to 221 MB once verified, and a page of 50 of them was a 52 MB answer.
#[tokio::test]
async fn every_list_and_text_of_a_token_is_bounded() {
    let app = TestApp::new().await;
    let zone = "com.cloudflare.api.account.zone.eb78d65290b24279ba6f44721b3ea3c4";
    let group = |meta: Value| json!({"id": DNS_READ, "meta": meta});
    let policy_with = |groups: Vec<Value>, resources: Value| json!({"effect": "allow", "permission_groups": groups, "resources": resources});
    let long = "m".repeat(257);
    let one_zone = json!({zone: "*"});
    for (meta, field) in [
        (json!({"key": long, "value": "v"}), "key"),
        (json!({"key": "k", "value": long}), "value"),
    ] {
        let body = with_policy(policy_with(vec![group(meta)], one_zone.clone()));
        let pointer = format!("/policies/0/permission_groups/0/meta/{field}");
        create_fails(&app, body, 400, 1017, &pointer).await;
    }
    let at_limit = json!({"key": "k".repeat(256), "value": "v".repeat(256)});
    let body = with_policy(policy_with(vec![group(at_limit.clone())], one_zone.clone()));
    app.create(Family::User, body).await;

    let policies: Vec<Value> = (0..33).map(|_| allow(DNS_READ, zone)).collect();
    create_fails(
        &app,
        json!({"name": "t", "policies": policies}),
        400,
        1017,
        "/policies",
    )
    .await;
    let groups: Vec<Value> = (0..33).map(|_| json!({"id": DNS_READ})).collect();
    let body = with_policy(policy_with(groups, one_zone.clone()));
    create_fails(&app, body, 400, 1017, "/policies/0/permission_groups").await;
    let zones: serde_json::Map<String, Value> = (0..65)
        .map(|i| {
            (
                format!("com.cloudflare.api.account.zone.{i:032x}"),
                json!("*"),
            )
        })
        .collect();
    let body = with_policy(policy_with(
        vec![json!({"id": DNS_READ})],
        Value::Object(zones),
    ));
    create_fails(&app, body, 400, 1017, "/policies/0/resources").await;
    let ranges: Vec<String> = (0..65).map(|i| format!("10.0.{i}.0/24")).collect();
    for list in ["in", "not_in"] {
        let mut body = with_policy(allow(DNS_READ, zone));
        body["condition"] = json!({"request_ip": {list: ranges}});
        create_fails(
            &app,
            body,
            400,
            1017,
            &format!("/condition/request_ip/{list}"),
        )
        .await;
    }

    // Each list within its limit, but all of them at once: the whole is bounded too.
    let groups: Vec<Value> = (0..32).map(|_| group(at_limit.clone())).collect();
    let policies: Vec<Value> = (0..32)
        .map(|_| policy_with(groups.clone(), one_zone.clone()))
        .collect();
    create_fails(
        &app,
        json!({"name": "t", "policies": policies}),
        400,
        1017,
        "/policies",
    )
    .await;
}

/// Issue 24: names with NUL, ESC, BEL or U+202E reached an admin's terminal raw.
#[tokio::test]
async fn names_with_control_characters_or_bidi_overrides_are_refused() {
    let app = TestApp::new().await;
    let zone = "com.cloudflare.api.account.zone.eb78d65290b24279ba6f44721b3ea3c4";
    for name in [
        "a\u{0}b",
        "\u{1b}]0;owned\u{7}",
        "bell\u{7}",
        "evil\u{202e}txt.exe",
        "tab\there",
        "c1\u{85}",
    ] {
        let body = json!({"name": name, "policies": [allow(DNS_READ, zone)]});
        create_fails(&app, body, 400, 1005, "/name").await;
    }
    let body = json!({"name": "Zürich – 東京 ✓", "policies": [allow(DNS_READ, zone)]});
    app.create(Family::User, body).await;
}
