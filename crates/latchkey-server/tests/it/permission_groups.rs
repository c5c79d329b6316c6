//! The permission-group catalogue on both families.

use serde_json::{json, Value};

use crate::kit::*;

fn ids(result: &Value) -> Vec<String> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn lists_the_catalogue_with_exact_filters() {
    let app = TestApp::new().await;
    let user = app
        .get(
            "/client/v4/user/tokens/permission_groups",
            app.admin_token(),
        )
        .await;
    let all = user.ok().as_array().unwrap().clone();
    assert!(all.len() >= 60);
    let billing = all.iter().find(|g| g["name"] == "Billing Read").unwrap();
    assert_eq!(
        billing,
        &json!({"id": "7cf72faf220841aabcfdfab81c43c4f6", "name": "Billing Read",
                "scopes": ["com.cloudflare.api.account"], "category": "account_and_billing",
                "description": "Grants read access to Billing"})
    );
    for family in FAMILIES {
        let path = format!("{}/permission_groups", app.tokens_path(family));
        let by_name = app
            .get(
                &format!("{path}?name=Account%20API%20Tokens%20Read"),
                app.admin_token(),
            )
            .await;
        assert_eq!(ids(by_name.ok()), [ACCOUNT_API_TOKENS_READ]);
        let none = app
            .get(
                &format!("{path}?name=account%20api%20tokens%20read"),
                app.admin_token(),
            )
            .await;
        assert_eq!(none.ok(), &json!([]), "names match exactly");
        // Encoded by the caller (as the spec asks) and again by its SDK.
        let twice = app
            .get(
                &format!("{path}?name=Account%2520API%2520Tokens%2520Read"),
                app.admin_token(),
            )
            .await;
        assert_eq!(ids(twice.ok()), [ACCOUNT_API_TOKENS_READ]);
        let twice_no_match = app
            .get(
                &format!("{path}?name=No%2520Such%2520Group"),
                app.admin_token(),
            )
            .await;
        assert_eq!(twice_no_match.ok(), &json!([]));
        let zones = app
            .get(
                &format!("{path}?scope=com.cloudflare.api.account.zone"),
                app.admin_token(),
            )
            .await;
        let zones = zones.ok().as_array().unwrap().clone();
        assert!(zones.iter().any(|g| g["id"] == DNS_READ));
        assert!(zones
            .iter()
            .all(|g| g["scopes"] == json!(["com.cloudflare.api.account.zone"])));
    }
    // Account tokens cannot hold user-scoped groups, so their catalogue leaves them out.
    let account = app
        .get(
            &format!("{}/permission_groups", app.tokens_path(Family::Account)),
            app.admin_token(),
        )
        .await;
    let account_ids = ids(account.ok());
    assert!(!account_ids.contains(&API_TOKENS_READ.to_owned()));
    assert!(account_ids.contains(&ACCOUNT_API_TOKENS_READ.to_owned()));
    // Read permission is enough.
    let (_, reader) = app.create_with(Family::User, API_TOKENS_READ).await;
    app.get("/client/v4/user/tokens/permission_groups", &reader)
        .await
        .ok();
}
