//! `GET /client/v4/user` and `GET /client/v4/accounts`: who a token acts for.

use axum::http::Method;
use latchkey_core::Id;
use latchkey_store::Account;
use serde_json::json;

use crate::kit::*;

async fn add_account(app: &TestApp, name: &str, member: bool) -> Id {
    let account = Account {
        id: Id::random(),
        name: name.into(),
        created_on: latchkey_core::Clock::now(app.clock.as_ref()),
    };
    app.state.store.create_account(&account).await.unwrap();
    if member {
        let user: Id = app.user_id().parse().unwrap();
        app.state
            .store
            .add_member(account.id, user, account.created_on)
            .await
            .unwrap();
    }
    account.id
}

fn ids(response: &Resp) -> Vec<String> {
    response
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_user_token_learns_its_user() {
    let app = TestApp::new().await;
    let response = app.get("/client/v4/user", app.admin_token()).await;
    let user = response.ok();
    assert_eq!(user["id"], app.user_id());
    assert!(user["email"].as_str().unwrap().contains('@'));
    assert!(user["created_on"].as_str().unwrap().ends_with('Z'));
    // A token with nothing on its user (only an account group) does not.
    let (_, account_only) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    let user_token_on_account = app
        .post(
            &app.tokens_path(Family::User),
            app.admin_token(),
            json!({"name": "on the account only",
                   "policies": [allow(ACCOUNT_API_TOKENS_READ, &app.resource(Family::Account))]}),
        )
        .await;
    let secret = user_token_on_account.ok()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    app.get("/client/v4/user", &secret)
        .await
        .assert_error(403, 9109);
    // Account tokens have no user.
    app.get("/client/v4/user", &account_only)
        .await
        .assert_error(403, 9109);
    app.call(Method::GET, "/client/v4/user", None, None)
        .await
        .assert_error(403, 9106);
}

#[tokio::test]
async fn accounts_lists_what_the_token_may_act_on() {
    let app = TestApp::new().await;
    let second = add_account(&app, "Second", true).await;
    let _foreign = add_account(&app, "Foreign", false).await;
    // The admin holds Account API Tokens Write on its first account only.
    let listed = app.get("/client/v4/accounts", app.admin_token()).await;
    assert_eq!(ids(&listed), vec![app.account_id()]);
    let first = &listed.ok()[0];
    assert_eq!(first["type"], "standard");
    assert!(first["name"].is_string());
    assert_eq!(listed.body["result_info"]["total_count"], 1);

    // A wildcard reaches every account the user is a member of, and no other.
    let (_, wide) = app
        .create(
            Family::User,
            json!({"name": "all accounts", "policies": [
                allow(ACCOUNT_API_TOKENS_READ, "com.cloudflare.api.account.*")
            ]}),
        )
        .await;
    let mut expected = vec![app.account_id(), second.to_string()];
    assert_eq!(ids(&app.get("/client/v4/accounts", &wide).await), expected);
    expected.reverse();
    assert_eq!(
        ids(&app.get("/client/v4/accounts?direction=desc", &wide).await),
        expected
    );
    let paged = app
        .get("/client/v4/accounts?per_page=5&page=2", &wide)
        .await;
    assert_eq!(ids(&paged), Vec::<String>::new());
    assert_eq!(paged.body["result_info"]["total_count"], 2);
    app.get("/client/v4/accounts?per_page=500", &wide)
        .await
        .assert_error(400, 1004);

    // A deny on the second account hides it.
    let (_, denied) = app
        .create(
            Family::User,
            json!({"name": "not the second", "policies": [
                allow(ACCOUNT_API_TOKENS_READ, "com.cloudflare.api.account.*"),
                deny(ACCOUNT_API_TOKENS_READ, &format!("com.cloudflare.api.account.{second}")),
            ]}),
        )
        .await;
    assert_eq!(
        ids(&app.get("/client/v4/accounts", &denied).await),
        vec![app.account_id()]
    );

    // An account token sees its own account only.
    let (_, account_token) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    assert_eq!(
        ids(&app.get("/client/v4/accounts", &account_token).await),
        vec![app.account_id()]
    );
    // A user token with only user permissions sees none.
    let (_, user_only) = app.create_with(Family::User, API_TOKENS_READ).await;
    assert!(ids(&app.get("/client/v4/accounts", &user_only).await).is_empty());
}
