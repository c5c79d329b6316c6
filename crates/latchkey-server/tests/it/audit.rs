//! The audit log: every token lifecycle event and every throttled address is recorded and
//! listed under `.../audit_logs`; the chain verifies, and `latchkey audit verify` finds a
//! tampered entry.

use std::process::Command;
use std::time::Duration;

use axum::http::Method;
use latchkey_server::audit::{self, Verdict};
use latchkey_server::Limits;
use serde_json::{json, Value};
use sqlx::Connection;

use crate::kit::*;
use crate::process::{bootstrap, create_token, Node, LATCHKEY};

fn actions(entries: &Value) -> Vec<&str> {
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"]["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_lifecycle_event_is_listed_for_its_owner() {
    let app = TestApp::new().await;
    let tokens = app.tokens_path(Family::Account);
    let (id, secret) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    let mut body = app.body_with(Family::Account, ACCOUNT_API_TOKENS_READ);
    body["name"] = json!("renamed");
    app.put(&format!("{tokens}/{id}"), app.admin_token(), body.clone())
        .await
        .ok();
    body["status"] = json!("disabled");
    app.put(&format!("{tokens}/{id}"), app.admin_token(), body)
        .await
        .ok();
    let rolled = app
        .put(
            &format!("{tokens}/{id}/value"),
            app.admin_token(),
            json!({}),
        )
        .await;
    let new_secret = rolled.ok().as_str().unwrap().to_owned();
    app.delete(&format!("{tokens}/{id}"), app.admin_token())
        .await
        .ok();

    let path = format!("/client/v4/accounts/{}/audit_logs", app.account_id());
    let listed = app.get(&path, app.admin_token()).await;
    let entries = listed.ok();
    assert_eq!(
        actions(entries),
        [
            "token_delete",
            "token_roll",
            "token_status",
            "token_update",
            "token_create"
        ]
    );
    let admin_token = app.admin.token_id.to_string();
    for entry in entries.as_array().unwrap() {
        assert_eq!(entry["actor"]["id"], admin_token.as_str());
        assert_eq!(entry["actor"]["type"], "token");
        assert_eq!(entry["actor"]["ip"], "127.0.0.1");
        assert_eq!(entry["interface"], "API");
        assert_eq!(entry["owner"]["id"], app.account_id().as_str());
        assert_eq!(entry["owner"]["type"], "account");
        assert_eq!(entry["resource"]["id"], id.as_str());
        assert_eq!(entry["action"]["result"], true);
        assert!(entry["when"].as_str().unwrap().ends_with('Z'));
        assert_eq!(entry["chain"]["hash"].as_str().unwrap().len(), 64);
    }
    assert_eq!(
        entries[2]["metadata"]["status"],
        json!({"from": "active", "to": "disabled"})
    );
    assert_eq!(entries[3]["metadata"]["name"], "renamed");
    let text = listed.body.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&new_secret),
        "no secret in the log"
    );
    assert_eq!(listed.body["result_info"]["total_count"], 5);

    // Paging, order and time range.
    let page = app
        .get(
            &format!("{path}?per_page=2&direction=asc"),
            app.admin_token(),
        )
        .await;
    assert_eq!(actions(page.ok()), ["token_create", "token_update"]);
    let later = app
        .get(
            &format!("{path}?since=2030-01-01T00:00:00Z"),
            app.admin_token(),
        )
        .await;
    assert!(later.ok().as_array().unwrap().is_empty());
    for bad in [
        "per_page=0",
        "per_page=1001",
        "since=yesterday",
        "direction=up",
    ] {
        app.get(&format!("{path}?{bad}"), app.admin_token())
            .await
            .assert_error(400, 1004);
    }

    // The user's own log has the admin's creation by `bootstrap`, from the command line.
    let mine = app
        .get("/client/v4/user/audit_logs", app.admin_token())
        .await;
    let mine = mine.ok().as_array().unwrap().clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["action"]["type"], "token_create");
    assert_eq!(mine[0]["actor"]["type"], "system");
    assert_eq!(mine[0]["interface"], "CLI");
    assert_eq!(mine[0]["metadata"]["via"], "bootstrap");

    // Reading the log takes the right to list the owner's tokens.
    let (_, reader) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    app.get(&path, &reader).await.ok();
    let (_, user_reader) = app.create_with(Family::User, API_TOKENS_READ).await;
    app.get(&path, &user_reader).await.assert_error(403, 9109);

    match audit::verify(app.state.store.as_ref(), 3).await.unwrap() {
        Verdict::Intact { entries, .. } => assert_eq!(entries, 1 + 5 + 2),
        broken => panic!("{broken:?}"),
    }
}

#[tokio::test]
async fn a_throttled_address_is_recorded() {
    let app = TestApp::with_limits(Limits {
        auth_failure_limit: 2,
        ..Limits::default()
    })
    .await;
    let wrong = format!("cfut_{}", "b".repeat(46));
    for _ in 0..3 {
        app.call(Method::GET, "/client/v4/user/tokens", Some(&wrong), None)
            .await;
    }
    // Written when the burst ends: quiet for the failure period.
    let ended = std::time::Instant::now() + latchkey_server::auth::rate_limit::FAILURE_PERIOD;
    audit::record_throttled(&app.state, std::time::Instant::now(), false).await;
    let before = app.state.store.audit_entries(0, 100).await.unwrap().len();
    audit::record_throttled(&app.state, ended, false).await;
    let entries = app.state.store.audit_entries(0, 100).await.unwrap();
    let throttled: Vec<_> = entries
        .iter()
        .filter(|e| e.event.action == latchkey_core::AuditAction::AuthThrottled)
        .collect();
    assert_eq!(throttled.len(), 1);
    assert_eq!(
        entries.len(),
        before + 1,
        "nothing written while it went on"
    );
    assert_eq!(throttled[0].event.client_ip, Some(LOCALHOST));
    assert!(
        throttled[0].event.details.contains("\"refused\":1"),
        "{}",
        throttled[0].event.details
    );
    assert_eq!(throttled[0].event.owner, None);
    assert!(!throttled[0].event.details.contains(&wrong[5..]));
    // Once: the burst is recorded, not every refusal.
    audit::record_throttled(&app.state, ended, true).await;
    assert_eq!(
        app.state.store.audit_entries(0, 100).await.unwrap().len(),
        entries.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_finds_a_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.db");
    let database = format!("sqlite://{}", file.display());
    let (admin, user) = bootstrap(&database);
    let node = Node::start_with(&database, dir.path(), "audit", &[]);
    for n in 0..4 {
        create_token(&node, &admin, &user, &format!("audited {n}")).await;
    }
    let (_, clean) = node.terminate(Duration::from_secs(20));
    assert!(clean);
    let verify = || {
        Command::new(LATCHKEY)
            .args(["audit", "verify", "--database", &database])
            .output()
            .unwrap()
    };
    let intact = verify();
    let said = String::from_utf8_lossy(&intact.stdout).into_owned();
    assert!(intact.status.success(), "{said}");
    assert!(
        said.starts_with("audit log intact: 5 entries, last hash "),
        "{said}"
    );

    let mut db = sqlx::SqliteConnection::connect(&database).await.unwrap();
    sqlx::query("UPDATE audit_log SET details = '{\"name\":\"nothing to see\"}' WHERE seq = 3")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let broken = verify();
    let said = String::from_utf8_lossy(&broken.stderr).into_owned();
    assert!(!broken.status.success());
    assert!(said.contains("audit log broken at entry 3"), "{said}");
}
