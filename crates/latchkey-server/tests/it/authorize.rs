//! latchkey's authorize endpoints, trusted proxies, operator permission groups and strict
//! delegation.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};
use time::Duration;

use crate::kit::*;

const VERIFY_PATH: &str = "/client/v4/user/tokens/verify";
const ORDERS_READ: &str = "5f3b0e2a9c6d4e8f9a1b2c3d4e5f6a7b";

/// An app whose catalogue has the operator group "Orders Read" (account and zone scopes).
async fn app_with_orders() -> TestApp {
    let mut app = TestApp::new().await;
    let catalogue = latchkey_server::serve::permission_groups_file::parse(&format!(
        r#"
        [[group]]
        id = "{ORDERS_READ}"
        name = "Orders Read"
        scopes = ["com.cloudflare.api.account", "com.cloudflare.api.account.zone"]
        category = "other"
        "#
    ))
    .unwrap();
    app.state = app.state.clone().with_catalogue(catalogue);
    app
}

async fn ask(app: &TestApp, secret: &str, body: Value) -> crate::kit::Resp {
    app.post("/latchkey/v1/authorize", secret, body).await
}

fn zone_question(group: &str, zone: &str, account: &str) -> Value {
    json!({"permission_group": group,
           "resource": format!("com.cloudflare.api.account.zone.{zone}"),
           "parents": [format!("com.cloudflare.api.account.{account}")],
           "explain": true})
}

#[tokio::test]
async fn decisions_are_explained_on_request() {
    let app = app_with_orders().await;
    let account = app.account_id();
    let account_key = format!("com.cloudflare.api.account.{account}");
    let (_, secret) = app
        .create(
            Family::Account,
            json!({"name": "orders", "policies": [
                {"effect": "allow", "permission_groups": [{"id": ORDERS_READ}],
                 "resources": {account_key.clone(): {"com.cloudflare.api.account.zone.*": "*"}}},
                {"effect": "deny", "permission_groups": [{"id": ORDERS_READ}],
                 "resources": {"com.cloudflare.api.account.zone.blocked": "*"}},
            ]}),
        )
        .await;

    // By name, nested under the token's account: allowed, with the deciding policy.
    let r = ask(&app, &secret, zone_question("Orders Read", "z1", &account)).await;
    let result = r.ok();
    assert_eq!(result["allowed"], true);
    assert_eq!(result["reason"], "allowed by policy");
    assert_eq!(result["matched_resource"], account_key);
    assert_eq!(result["policy_id"].as_str().unwrap().len(), 32);
    // By id, the same; without explain there is no policy id.
    let mut plain = zone_question(ORDERS_READ, "z1", &account);
    plain["explain"] = json!(false);
    assert_eq!(
        ask(&app, &secret, plain).await.ok(),
        &json!({"allowed": true, "reason": "allowed by policy"})
    );
    // The deny policy wins.
    let r = ask(
        &app,
        &secret,
        zone_question("Orders Read", "blocked", &account),
    )
    .await;
    assert_eq!(r.ok()["allowed"], false);
    assert_eq!(r.ok()["reason"], "denied by policy");
    assert_eq!(
        r.ok()["matched_resource"],
        "com.cloudflare.api.account.zone.blocked"
    );
    // Another account's zone: the nested wildcard does not reach it.
    let other = latchkey_core::Id::random().to_string();
    let r = ask(&app, &secret, zone_question("Orders Read", "z1", &other)).await;
    assert_eq!(
        r.ok(),
        &json!({"allowed": false, "reason": "no allow matched"})
    );
    // A group the token does not hold.
    let r = ask(&app, &secret, zone_question("DNS Read", "z1", &account)).await;
    assert_eq!(r.ok()["reason"], "no allow matched");
}

#[tokio::test]
async fn known_tokens_get_reasons_and_unknown_ones_401() {
    let app = app_with_orders().await;
    let account_key = format!("com.cloudflare.api.account.{}", app.account_id());
    let question = json!({"permission_group": "Orders Read", "resource": account_key});
    let body = json!({"name": "t", "policies": [allow(ORDERS_READ, &account_key)],
                      "expires_on": latchkey_api::timestamp::format(app.clock.now() + Duration::hours(1))});
    let (id, secret) = app.create(Family::Account, body.clone()).await;
    assert_eq!(
        ask(&app, &secret, question.clone()).await.ok()["allowed"],
        true
    );

    let mut disabled = body.clone();
    disabled["status"] = json!("disabled");
    let path = format!("{}/{id}", app.tokens_path(Family::Account));
    app.put(&path, app.admin_token(), disabled).await.ok();
    let r = ask(&app, &secret, question.clone()).await;
    assert_eq!(
        r.ok(),
        &json!({"allowed": false, "reason": "the token is disabled"})
    );
    let mut enabled = body;
    enabled["status"] = json!("active");
    app.put(&path, app.admin_token(), enabled).await.ok();
    app.clock.advance(Duration::hours(1));
    assert_eq!(
        ask(&app, &secret, question.clone()).await.ok()["reason"],
        "the token has expired"
    );

    let unknown = latchkey_core::Secret::generate(latchkey_core::SecretKind::Account);
    ask(&app, unknown.expose(), question.clone())
        .await
        .assert_error(401, 1000);
    app.call(Method::POST, "/latchkey/v1/authorize", None, Some(question))
        .await
        .assert_error(403, 9106);
}

#[tokio::test]
async fn questions_are_validated_naming_the_field() {
    let app = app_with_orders().await;
    let key = format!("com.cloudflare.api.account.{}", app.account_id());
    for (body, code, pointer) in [
        (
            json!({"permission_group": "Orders Write", "resource": key}),
            1006,
            "/permission_group",
        ),
        (
            json!({"permission_group": "Orders Read", "resource": "com.cloudflare.api.account.*"}),
            1007,
            "/resource",
        ),
        (
            json!({"permission_group": "Orders Read", "resource": "nonsense"}),
            1007,
            "/resource",
        ),
        (
            json!({"permission_group": "Orders Read", "resource": key, "parents": ["x"]}),
            1007,
            "/parents/0",
        ),
        (json!({"resource": key}), 1003, "/permission_group"),
    ] {
        let r = ask(&app, app.admin_token(), body).await;
        r.assert_error(400, code);
        assert_eq!(r.pointer(), pointer);
    }
}

#[tokio::test]
async fn allows_are_bounded_by_what_the_owner_holds() {
    let app = app_with_orders().await;
    let (_, secret) = app
        .create(
            Family::User,
            json!({"name": "every account", "policies": [allow(ORDERS_READ, "com.cloudflare.api.account.*")]}),
        )
        .await;
    let own = json!({"permission_group": "Orders Read", "resource": format!("com.cloudflare.api.account.{}", app.account_id())});
    assert_eq!(ask(&app, &secret, own).await.ok()["allowed"], true);
    let foreign = json!({"permission_group": "Orders Read",
                         "resource": format!("com.cloudflare.api.account.{}", latchkey_core::Id::random())});
    assert_eq!(
        ask(&app, &secret, foreign).await.ok(),
        &json!({"allowed": false, "reason": "the token's owner does not hold the resource"})
    );
}

fn forward(
    secret: Option<&str>,
    permission: &str,
    resource: &str,
    from_headers: &[(&str, &str)],
) -> Request<Body> {
    let mut request = Request::get("/latchkey/v1/authorize")
        .header("x-latchkey-permission", permission)
        .header("x-latchkey-resource", resource);
    if let Some(secret) = secret {
        request = request.header("authorization", format!("Bearer {secret}"));
    }
    for (name, value) in from_headers {
        request = request.header(*name, *value);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn forward_auth_answers_200_401_403() {
    let app = app_with_orders().await;
    let account_key = format!("com.cloudflare.api.account.{}", app.account_id());
    let (token_id, allowed) = app
        .create(
            Family::Account,
            json!({"name": "ok", "policies": [allow(ORDERS_READ, &account_key)]}),
        )
        .await;
    let r = app
        .send(
            forward(Some(&allowed), "Orders Read", &account_key, &[]),
            LOCALHOST,
        )
        .await;
    r.ok();
    let r = app
        .send_raw(
            forward(Some(&allowed), "Orders Read", &account_key, &[]),
            LOCALHOST,
        )
        .await;
    assert_eq!(r.headers()["x-latchkey-token-id"], token_id.as_str());
    assert_eq!(
        r.headers()["x-latchkey-owner"],
        format!("account:{}", app.account_id()).as_str()
    );

    // No token, unknown token, expired token: 401 with WWW-Authenticate.
    let (_, expiring) = app
        .create(
            Family::Account,
            json!({"name": "soon", "policies": [allow(ORDERS_READ, &account_key)],
            "expires_on": latchkey_api::timestamp::format(app.clock.now() + Duration::minutes(1))}),
        )
        .await;
    let unknown = latchkey_core::Secret::generate(latchkey_core::SecretKind::User);
    app.clock.advance(Duration::minutes(1));
    for secret in [None, Some(unknown.expose()), Some(expiring.as_str())] {
        let r = app
            .send_raw(forward(secret, "Orders Read", &account_key, &[]), LOCALHOST)
            .await;
        assert_eq!(r.status(), 401, "{secret:?}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }

    // Denied by policy, no allow, refused address: 403.
    let (_, denied) = app
        .create(
            Family::Account,
            json!({"name": "deny", "policies": [
            allow(ORDERS_READ, "com.cloudflare.api.account.*"), deny(ORDERS_READ, &account_key)]}),
        )
        .await;
    app.send(
        forward(Some(&denied), "Orders Read", &account_key, &[]),
        LOCALHOST,
    )
    .await
    .assert_error(403, 9109);
    app.send(
        forward(
            Some(&allowed),
            "DNS Read",
            "com.cloudflare.api.account.zone.z1",
            &[],
        ),
        LOCALHOST,
    )
    .await
    .assert_error(403, 9109);
    let (_, fenced) = app
        .create(
            Family::Account,
            json!({"name": "fenced", "policies": [allow(ORDERS_READ, &account_key)],
            "condition": {"request_ip": {"in": ["192.0.2.0/24"]}}}),
        )
        .await;
    let r = app
        .send(
            forward(Some(&fenced), "Orders Read", &account_key, &[]),
            LOCALHOST,
        )
        .await;
    r.assert_error(403, 9109);
    assert_eq!(
        r.body["errors"][0]["message"],
        "Cannot use the access token from location: 127.0.0.1"
    );
    app.send(
        forward(Some(&fenced), "Orders Read", &account_key, &[]),
        "192.0.2.7".parse().unwrap(),
    )
    .await
    .ok();

    // A gateway that forgets the question is misconfigured: 400.
    let request = Request::get("/latchkey/v1/authorize")
        .header("authorization", format!("Bearer {allowed}"))
        .body(Body::empty())
        .unwrap();
    let r = app.send(request, LOCALHOST).await;
    r.assert_error(400, 1003);
    assert_eq!(r.pointer(), "/header/x-latchkey-permission");
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let mut app = app_with_orders().await;
    let account_key = format!("com.cloudflare.api.account.{}", app.account_id());
    let (_, fenced) = app
        .create(
            Family::Account,
            json!({"name": "fenced", "policies": [allow(ORDERS_READ, &account_key)],
            "condition": {"request_ip": {"in": ["198.51.100.0/24"]}}}),
        )
        .await;
    let spoofed = [
        ("x-forwarded-for", "198.51.100.7"),
        ("cf-connecting-ip", "198.51.100.7"),
    ];
    let status = |r: &crate::kit::Resp| r.status.as_u16();

    // No trusted proxy: the headers are ignored, the peer 127.0.0.1 is refused.
    let r = app
        .send(
            forward(Some(&fenced), "Orders Read", &account_key, &spoofed),
            LOCALHOST,
        )
        .await;
    assert_eq!(status(&r), 403);

    app.state = app
        .state
        .clone()
        .with_trusted_proxies(vec!["127.0.0.0/8".parse().unwrap()]);
    // From the trusted proxy, the forwarded client counts.
    let r = app
        .send(
            forward(Some(&fenced), "Orders Read", &account_key, &spoofed),
            LOCALHOST,
        )
        .await;
    assert_eq!(status(&r), 200);
    // A client that writes its own X-Forwarded-For entry gets the proxy's entry instead.
    let chained = [("x-forwarded-for", "198.51.100.7, 203.0.113.5")];
    let r = app
        .send(
            forward(Some(&fenced), "Orders Read", &account_key, &chained),
            LOCALHOST,
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["message"],
        "Cannot use the access token from location: 203.0.113.5"
    );
    // An untrusted peer still cannot choose its address.
    let r = app
        .send(
            forward(Some(&fenced), "Orders Read", &account_key, &spoofed),
            "203.0.113.9".parse().unwrap(),
        )
        .await;
    assert_eq!(status(&r), 403);
    // The management API uses the same address.
    let r = app
        .call_from(
            LOCALHOST,
            Method::GET,
            "/client/v4/user/tokens/verify",
            Some(app.admin_token()),
            None,
        )
        .await;
    r.ok();
}

#[tokio::test]
async fn operator_groups_are_listed_and_grantable() {
    let app = app_with_orders().await;
    let groups = app
        .get(
            &format!(
                "{}/permission_groups?name=Orders%20Read",
                app.tokens_path(Family::Account)
            ),
            app.admin_token(),
        )
        .await;
    assert_eq!(
        groups.ok(),
        &json!([{"id": ORDERS_READ, "name": "Orders Read",
                 "scopes": ["com.cloudflare.api.account", "com.cloudflare.api.account.zone"],
                 "category": "other", "description": "Grants Orders Read"}])
    );
    let created = app
        .post(&app.tokens_path(Family::User), app.admin_token(),
              json!({"name": "t", "policies": [allow(ORDERS_READ, "com.cloudflare.api.account.zone.*")]}))
        .await;
    assert_eq!(
        created.ok()["policies"][0]["permission_groups"][0]["name"],
        "Orders Read"
    );
}

#[tokio::test]
async fn strict_delegation_bounds_new_tokens_by_the_callers_grants() {
    let mut app = TestApp::new().await;
    let user_key = app.resource(Family::User);
    let (_, creator) = app
        .create(
            Family::User,
            json!({"name": "creator", "policies": [
                allow(API_TOKENS_WRITE, &user_key),
                allow(DNS_READ, "com.cloudflare.api.account.zone.z1"),
            ]}),
        )
        .await;
    let wider = json!({"name": "wider", "policies": [allow(DNS_READ, "com.cloudflare.api.account.zone.*")]});
    let within = json!({"name": "within", "policies": [allow(DNS_READ, "com.cloudflare.api.account.zone.z1")]});
    let path = app.tokens_path(Family::User);
    // By default only the owner's rights bound it (as Cloudflare does).
    app.post(&path, &creator, wider.clone()).await.ok();

    app.state = app.state.clone().with_strict_delegation(true);
    app.post(&path, &creator, within).await.ok();
    let r = app.post(&path, &creator, wider).await;
    r.assert_error(403, 9109);
    assert_eq!(r.pointer(), "/policies/0");
    let write = json!({"name": "write", "policies": [allow("4755a26eedb94da69e1066d98aa820be", "com.cloudflare.api.account.zone.z1")]});
    app.post(&path, &creator, write)
        .await
        .assert_error(403, 9109);
}

/// Issue 24: under strict delegation a token with "API Tokens Write" could roll the admin's
/// token (and so obtain its rights) and create copies of itself without its address limit
/// or expiry.
#[tokio::test]
async fn strict_delegation_bounds_every_write_by_the_callers_grant() {
    let mut app = TestApp::new().await;
    let user_key = app.resource(Family::User);
    let path = app.tokens_path(Family::User);
    let limited = |name: &str| {
        json!({
            "name": name,
            "policies": [allow(API_TOKENS_WRITE, &user_key)],
            "condition": {"request_ip": {"in": ["127.0.0.0/8"]}},
            "expires_on": "2030-01-01T00:00:00Z",
        })
    };
    let (_, writer) = app.create(Family::User, limited("writer")).await;
    let admin_id = app.admin.token_id.to_string();
    let admin_path = format!("{path}/{admin_id}");

    // Cloudflare's model, without the flag: the owner's rights bound what it may do.
    let (victim, _) = app.create_with(Family::User, API_TOKENS_READ).await;
    app.put(&format!("{path}/{victim}/value"), &writer, json!({}))
        .await
        .ok();

    app.state = app.state.clone().with_strict_delegation(true);
    // The admin's token holds more than the writer: not rolled, changed, disabled or deleted.
    let r = app
        .put(&format!("{admin_path}/value"), &writer, json!({}))
        .await;
    r.assert_error(403, 9109);
    assert!(r.pointer().starts_with("/policies/"), "{}", r.pointer());
    let mut disable = limited("admin");
    disable["status"] = json!("disabled");
    app.put(&admin_path, &writer, disable)
        .await
        .assert_error(403, 9109);
    app.delete(&admin_path, &writer)
        .await
        .assert_error(403, 9109);
    app.get(&admin_path, app.admin_token()).await.ok();
    app.get(VERIFY_PATH, app.admin_token()).await.ok();

    // Children: no wider address, no later (or missing) expiry, no earlier start.
    let mut anywhere = limited("anywhere");
    anywhere.as_object_mut().unwrap().remove("condition");
    let r = app.post(&path, &writer, anywhere).await;
    r.assert_error(403, 9109);
    assert_eq!(r.pointer(), "/condition/request_ip/in");
    let mut wider = limited("wider");
    wider["condition"]["request_ip"]["in"] = json!(["0.0.0.0/0"]);
    assert_eq!(
        app.post(&path, &writer, wider).await.pointer(),
        "/condition/request_ip/in"
    );
    let mut forever = limited("forever");
    forever.as_object_mut().unwrap().remove("expires_on");
    let r = app.post(&path, &writer, forever).await;
    r.assert_error(403, 9109);
    assert_eq!(r.pointer(), "/expires_on");
    let mut later = limited("later");
    later["expires_on"] = json!("2031-01-01T00:00:00Z");
    assert_eq!(
        app.post(&path, &writer, later).await.pointer(),
        "/expires_on"
    );

    // Within its grant, everything still works: create, update, roll, disable, delete.
    let mut narrower = limited("narrower");
    narrower["condition"]["request_ip"]["in"] = json!(["127.0.0.1/32"]);
    narrower["expires_on"] = json!("2029-01-01T00:00:00Z");
    let created = app.post(&path, &writer, narrower.clone()).await;
    let child = created.ok()["id"].as_str().unwrap().to_owned();
    let child_path = format!("{path}/{child}");
    narrower["status"] = json!("disabled");
    app.put(&child_path, &writer, narrower).await.ok();
    app.put(&format!("{child_path}/value"), &writer, json!({}))
        .await
        .ok();
    // ...but not widening the child on update.
    let r = app.put(&child_path, &writer, limited("widened")).await;
    assert_eq!(
        r.status, 200,
        "a copy of its own grant is within it: {:#}",
        r.body
    );
    let mut widened = limited("widened");
    widened.as_object_mut().unwrap().remove("expires_on");
    app.put(&child_path, &writer, widened)
        .await
        .assert_error(403, 9109);
    app.delete(&child_path, &writer).await.ok();
}
