//! Snapshots of every response shape, so that a change on the wire is a reviewed change.
//! Ids, secrets and times vary per run and are redacted.

use axum::http::Method;
use insta::assert_json_snapshot;
use serde_json::json;

use crate::kit::*;

/// The body with this run's account and user ids replaced by placeholders.
fn scrub(app: &TestApp, body: &serde_json::Value) -> serde_json::Value {
    let text = body
        .to_string()
        .replace(&app.account_id(), "[account_id]")
        .replace(&app.user_id(), "[user_id]");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn response_shapes() {
    let app = TestApp::new().await;
    let account_key = format!("com.cloudflare.api.account.{}", app.account_id());
    let body = json!({
        "name": "shapes",
        "policies": [
            allow(ACCOUNT_API_TOKENS_READ, &account_key),
            {"effect": "deny", "permission_groups": [{"id": DNS_READ, "meta": {"key": "k", "value": "v"}}],
             "resources": {account_key.clone(): {"com.cloudflare.api.account.zone.*": "*"}}},
        ],
        "not_before": "2026-01-01T00:00:00Z",
        "expires_on": "2030-01-01T00:00:00Z",
        "condition": {"request_ip": {"in": ["192.0.2.0/24"], "not_in": ["192.0.2.1/32"]}},
    });
    let created = app
        .post("/client/v4/user/tokens", app.admin_token(), body)
        .await;
    let id = created.ok()["id"].as_str().unwrap().to_owned();
    assert_json_snapshot!("create", scrub(&app, &created.body), {
        ".result.id" => "[id]", ".result.value" => "[secret]",
        ".result.policies[].id" => "[id]",
        ".result.issued_on" => "[now]", ".result.modified_on" => "[now]",
    });

    let list = app
        .get("/client/v4/user/tokens?per_page=5", app.admin_token())
        .await;
    assert_json_snapshot!("list", list.body, {
        ".result" => "[tokens]",
    });
    let verify = app
        .get("/client/v4/user/tokens/verify", app.admin_token())
        .await;
    assert_json_snapshot!("verify", verify.body, { ".result.id" => "[id]" });
    let roll = app
        .put(
            &format!("/client/v4/user/tokens/{id}/value"),
            app.admin_token(),
            json!({}),
        )
        .await;
    assert_json_snapshot!("roll", roll.body, { ".result" => "[secret]" });
    let groups = app
        .get(
            "/client/v4/user/tokens/permission_groups?name=DNS%20Read",
            app.admin_token(),
        )
        .await;
    assert_json_snapshot!("permission_groups", groups.body);
    let deleted = app
        .delete(&format!("/client/v4/user/tokens/{id}"), app.admin_token())
        .await;
    assert_json_snapshot!("delete", deleted.body, { ".result.id" => "[id]" });

    let invalid = app
        .post(
            "/client/v4/user/tokens",
            app.admin_token(),
            json!({"name": "x", "policies": [allow(DNS_READ, "nonsense")]}),
        )
        .await;
    assert_json_snapshot!("validation_error", invalid.body);
    let header = app
        .call(
            Method::GET,
            "/client/v4/user/tokens",
            Some("not a token68!"),
            None,
        )
        .await;
    assert_json_snapshot!("header_error", header.body);
}
