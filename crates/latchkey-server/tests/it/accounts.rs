//! Account-family authorisation: membership, account tokens, foreign and malformed ids.

use latchkey_core::Id;
use latchkey_store::Account;
use serde_json::json;

use crate::kit::*;

async fn second_account(app: &TestApp) -> Id {
    let account = Account {
        id: Id::random(),
        name: "Other".into(),
        created_on: app.clock_now(),
    };
    app.state.store.create_account(&account).await.unwrap();
    account.id
}

impl TestApp {
    fn clock_now(&self) -> time::OffsetDateTime {
        latchkey_core::Clock::now(self.clock.as_ref())
    }
}

#[tokio::test]
async fn foreign_accounts_are_403_whether_or_not_they_exist() {
    let app = TestApp::new().await;
    let existing = second_account(&app).await;
    for account in [existing, Id::random()] {
        let path = format!("/client/v4/accounts/{account}/tokens");
        app.get(&path, app.admin_token())
            .await
            .assert_error(403, 9109);
        app.get(&format!("{path}/permission_groups"), app.admin_token())
            .await
            .assert_error(403, 9109);
        app.get(&format!("{path}/{}", Id::random()), app.admin_token())
            .await
            .assert_error(403, 9109);
    }
    for bad in [
        "abc",
        "023E105F4ECEF8AD9CA31A8372D0C353",
        "023e105f4ecef8ad9ca31a8372d0c35",
    ] {
        app.get(
            &format!("/client/v4/accounts/{bad}/tokens"),
            app.admin_token(),
        )
        .await
        .assert_error(404, 7003);
    }
}

#[tokio::test]
async fn account_tokens_act_only_on_their_own_account() {
    let app = TestApp::new().await;
    let own = app.tokens_path(Family::Account);
    let (_, manager) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_WRITE)
        .await;
    // It manages its account's tokens...
    let created = app
        .post(
            &own,
            &manager,
            app.body_with(Family::Account, ACCOUNT_API_TOKENS_READ),
        )
        .await;
    let id = created.ok()["id"].as_str().unwrap().to_owned();
    app.get(&own, &manager).await.ok();
    app.delete(&format!("{own}/{id}"), &manager).await.ok();
    // ...but not another account's, and not user tokens.
    let other = second_account(&app).await;
    app.get(&format!("/client/v4/accounts/{other}/tokens"), &manager)
        .await
        .assert_error(403, 9109);
    app.get("/client/v4/user/tokens", &manager)
        .await
        .assert_error(403, 9109);
    // Even a wildcard policy does not reach beyond its own account.
    let (_, wild) = app
        .create(
            Family::Account,
            json!({"name": "wild", "policies": [allow(ACCOUNT_API_TOKENS_READ, "com.cloudflare.api.account.*")]}),
        )
        .await;
    app.get(&own, &wild).await.ok();
    app.get(&format!("/client/v4/accounts/{other}/tokens"), &wild)
        .await
        .assert_error(403, 9109);
}

#[tokio::test]
async fn user_tokens_reach_accounts_only_while_their_user_is_a_member() {
    let app = TestApp::new().await;
    let other = second_account(&app).await;
    let other_path = format!("/client/v4/accounts/{other}/tokens");
    let (_, wild) = app
        .create(
            Family::User,
            json!({"name": "all accounts", "policies": [allow(ACCOUNT_API_TOKENS_READ, "com.cloudflare.api.account.*")]}),
        )
        .await;
    app.get(&app.tokens_path(Family::Account), &wild).await.ok();
    app.get(&other_path, &wild).await.assert_error(403, 9109);

    let now = app.clock_now();
    app.state
        .store
        .add_member(other, app.admin.user_id, now)
        .await
        .unwrap();
    app.get(&other_path, &wild).await.ok();
    app.state
        .store
        .remove_member(other, app.admin.user_id)
        .await
        .unwrap();
    app.get(&other_path, &wild).await.assert_error(403, 9109);
}
