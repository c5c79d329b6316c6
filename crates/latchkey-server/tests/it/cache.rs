//! The token cache, seen from outside: hits never reach the database, unknown secrets are
//! remembered briefly, and every write path invalidates.

use latchkey_core::{Owner, Secret, SecretKind};
use serde_json::json;

use crate::kit::*;

/// The audit entry of a write these tests make behind latchkey's back.
fn behind_the_back() -> latchkey_core::AuditEvent {
    latchkey_core::AuditEvent::new(
        latchkey_core::AuditAction::TokenUpdate,
        time::OffsetDateTime::now_utc(),
    )
}

const VERIFY: &str = "/client/v4/user/tokens/verify";

/// Creates a token, has it cached, and deletes its row behind latchkey's back: the cached
/// token still answers, which shows a hit does not consult the database. Returns its id
/// and secret.
async fn cached_then_deleted_behind_the_back(app: &TestApp) -> (String, String) {
    let (id, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    app.get(VERIFY, &secret).await.ok();
    let owner = Owner::User(app.admin.user_id);
    app.state
        .store
        .delete_token(owner, id.parse().unwrap(), &behind_the_back())
        .await
        .unwrap();
    app.get(VERIFY, &secret).await.ok();
    (id, secret)
}

#[tokio::test]
async fn a_cached_token_is_served_without_the_database_until_a_write_forgets_it() {
    let app = TestApp::without_change_feed().await;
    let (id, secret) = cached_then_deleted_behind_the_back(&app).await;
    app.state.cache.forget(id.parse().unwrap());
    app.get(VERIFY, &secret).await.assert_error(401, 1000);
}

#[tokio::test]
async fn a_change_behind_latchkeys_back_is_seen_once_the_ttl_has_passed() {
    let ttl = std::time::Duration::from_secs(1);
    let app = TestApp::with_limits_without_change_feed(latchkey_server::Limits {
        token_cache_ttl: ttl,
        ..latchkey_server::Limits::default()
    })
    .await;
    // Still served straight after the delete: an entry lives at least half the TTL...
    let (_, secret) = cached_then_deleted_behind_the_back(&app).await;
    // ...and at most all of it.
    tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
    app.get(VERIFY, &secret).await.assert_error(401, 1000);
}

#[tokio::test]
async fn unknown_secrets_are_remembered_briefly() {
    let app = TestApp::without_change_feed().await;
    let secret = Secret::generate(SecretKind::User);
    app.get(VERIFY, secret.expose())
        .await
        .assert_error(401, 1000);

    // The same hash appearing in the database within UNKNOWN_TTL is not looked up again.
    let (_, other) = app.create_with(Family::User, API_TOKENS_READ).await;
    let token = app
        .state
        .cache
        .lookup(
            app.state.store.as_ref(),
            &Secret::parse(&other).unwrap().0.hash(),
            std::time::Instant::now(),
        )
        .await
        .unwrap()
        .unwrap();
    let mut copy = latchkey_core::Token::clone(&token);
    copy.id = latchkey_core::Id::random();
    app.state
        .store
        .insert_token(&copy, &secret.hash(), u64::MAX, &behind_the_back())
        .await
        .unwrap();
    app.get(VERIFY, secret.expose())
        .await
        .assert_error(401, 1000);
}

#[tokio::test]
async fn every_write_path_invalidates_a_cached_token() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, write) = groups(family);
        let path = app.tokens_path(family);
        let list = path.clone();
        // Update: a cached reader gains Write at once.
        let (id, secret) = app.create_with(family, read).await;
        app.get(&list, &secret).await.ok();
        app.post(&path, &secret, app.body_with(family, read))
            .await
            .assert_error(403, 9109);
        app.put(
            &format!("{path}/{id}"),
            app.admin_token(),
            app.body_with(family, write),
        )
        .await
        .ok();
        app.post(&path, &secret, app.body_with(family, read))
            .await
            .ok();
        // Status change.
        let mut disabled = app.body_with(family, write);
        disabled["status"] = json!("disabled");
        app.put(&format!("{path}/{id}"), app.admin_token(), disabled)
            .await
            .ok();
        app.get(&list, &secret).await.assert_error(403, 9109);
        let mut active = app.body_with(family, write);
        active["status"] = json!("active");
        app.put(&format!("{path}/{id}"), app.admin_token(), active)
            .await
            .ok();
        app.get(&list, &secret).await.ok();
        // Roll: the cached old secret dies at once.
        let rolled = app
            .put(&format!("{path}/{id}/value"), app.admin_token(), json!({}))
            .await;
        let new_secret = rolled.ok().as_str().unwrap().to_owned();
        app.get(&list, &secret).await.assert_error(403, 9109);
        app.get(&list, &new_secret).await.ok();
        // The old secret's index entry now leads to the token cached under the new secret:
        // the hashes differ, so it still misses.
        app.get(&list, &secret).await.assert_error(403, 9109);
        // Delete.
        app.delete(&format!("{path}/{id}"), app.admin_token())
            .await
            .ok();
        app.get(&list, &new_secret).await.assert_error(403, 9109);
    }
}

/// The writes that must stop an old secret (or old rights) the moment they return.
#[derive(Debug, Clone, Copy)]
enum Revoke {
    Delete,
    Roll,
    Disable,
}

const REVOKES: [Revoke; 3] = [Revoke::Delete, Revoke::Roll, Revoke::Disable];

impl Revoke {
    async fn apply(self, app: &TestApp, id: &str) {
        let path = format!("{}/{id}", app.tokens_path(Family::User));
        match self {
            Revoke::Delete => {
                app.delete(&path, app.admin_token()).await.ok();
            }
            Revoke::Roll => {
                app.put(&format!("{path}/value"), app.admin_token(), json!({}))
                    .await
                    .ok();
            }
            Revoke::Disable => {
                let mut body = app.body_with(Family::User, API_TOKENS_READ);
                body["status"] = json!("disabled");
                app.put(&path, app.admin_token(), body).await.ok();
            }
        }
    }
}

/// Every way a request can present `secret` refuses it: verify, the management API,
/// authorize and forward-auth.
async fn assert_refused_everywhere(app: &TestApp, secret: &str, what: &str) {
    let verify = app.get(VERIFY, secret).await;
    assert_eq!(verify.status, 401, "verify after {what}: {:#}", verify.body);
    let list = app.get(&app.tokens_path(Family::User), secret).await;
    assert_eq!(list.status, 403, "list after {what}: {:#}", list.body);
    let question = json!({
        "permission_group": API_TOKENS_READ,
        "resource": app.resource(Family::User),
    });
    let asked = app.post("/latchkey/v1/authorize", secret, question).await;
    // An unknown secret is 401; a known but disabled token is answered "not allowed".
    let refused = asked.status == 401
        || (asked.status == 200 && asked.body["result"]["allowed"] == json!(false));
    assert!(refused, "authorize after {what}: {:#}", asked.body);
    let forward = axum::http::Request::get("/latchkey/v1/authorize")
        .header("authorization", format!("Bearer {secret}"))
        .header("x-latchkey-permission", API_TOKENS_READ)
        .header("x-latchkey-resource", app.resource(Family::User))
        .body(axum::body::Body::empty())
        .unwrap();
    let forward = app.send_raw(forward, LOCALHOST).await;
    assert_eq!(forward.status(), 401, "forward-auth after {what}");
}

/// The defect of issue 24: a token whose cache entry was read again after it went stale, or
/// that was first used by several requests at once, kept being served after a delete, roll
/// or disable (its id index line was lost when the second read replaced the first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_refuses_the_old_secret_at_once_after_re_reads_and_concurrent_first_uses() {
    let ttl = std::time::Duration::from_millis(600);
    let app = TestApp::with_limits(latchkey_server::Limits {
        token_cache_ttl: ttl,
        ..latchkey_server::Limits::default()
    })
    .await;
    let mut stale = Vec::new();
    for revoke in REVOKES {
        let (id, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
        app.get(VERIFY, &secret).await.ok();
        stale.push((revoke, id, secret));
    }
    tokio::time::sleep(ttl + std::time::Duration::from_millis(50)).await;
    for (revoke, id, secret) in &stale {
        // Read again: the stale entry is replaced by a new one.
        app.get(VERIFY, secret).await.ok();
        revoke.apply(&app, id).await;
        assert_refused_everywhere(&app, secret, &format!("{revoke:?} after a re-read")).await;
    }
    for revoke in REVOKES {
        let (id, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
        let uses = (0..8).map(|_| app.get(VERIFY, &secret));
        for answer in futures_util::future::join_all(uses).await {
            answer.ok();
        }
        revoke.apply(&app, &id).await;
        let what = format!("{revoke:?} after 8 concurrent first uses");
        assert_refused_everywhere(&app, &secret, &what).await;
    }
}
