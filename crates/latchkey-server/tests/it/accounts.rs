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

    // Memberships change through the store, as the CLI changes them from another process;
    // the node's cached answers follow within the change feed's delay.
    let now = app.clock_now();
    app.state
        .store
        .add_member(other, app.admin.user_id, now)
        .await
        .unwrap();
    let took = until_status(&app, &other_path, &wild, 200).await;
    println!("membership added: seen after {} ms", took.as_millis());
    app.state
        .store
        .remove_member(other, app.admin.user_id)
        .await
        .unwrap();
    let took = until_status(&app, &other_path, &wild, 403).await;
    println!("membership removed: seen after {} ms", took.as_millis());
    app.get(&other_path, &wild).await.assert_error(403, 9109);
}

/// How long until `GET path` answers `status` (at most 2 s: SQLite's poll is every 0.5 s).
async fn until_status(app: &TestApp, path: &str, token: &str, status: u16) -> std::time::Duration {
    let start = std::time::Instant::now();
    while app.get(path, token).await.status.as_u16() != status {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{path} never answered {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    start.elapsed()
}
