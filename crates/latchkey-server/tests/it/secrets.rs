//! No secret in clear anywhere latchkey writes: `latchkey serve` at log level `debug` goes
//! through every way a secret can reach it (bootstrap, create in both families, roll,
//! verify with the current and a rolled-away secret, authorize in both forms, a secret in a
//! query string, in a forward-auth header and in a malformed Authorization header, a leak
//! report), then
//! shuts down; its log, its database (the SQLite files byte for byte, or every row of every
//! PostgreSQL table as text) and an `export` are searched for each secret: zero hits.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::Connection;

use crate::process::{bootstrap_json, call, create_token, Node, LATCHKEY};

/// Every place a secret could show up, read as bytes: (name, contents).
type Haystacks = Vec<(String, Vec<u8>)>;

/// Drives `serve` on `database` through every secret-bearing request; returns the secrets
/// it saw and the haystacks latchkey wrote outside the database.
async fn exercise(database: &str, dir: &Path) -> (Vec<String>, Haystacks) {
    let admin = bootstrap_json(database);
    let (admin_secret, user) = (
        admin["token"].as_str().unwrap().to_owned(),
        admin["user_id"].as_str().unwrap().to_owned(),
    );
    let account = admin["account_id"].as_str().unwrap().to_owned();
    let node = Node::start_logging(database, dir, "secrets", &[], "debug");
    let base = node.base.clone();
    let mut secrets = vec![admin_secret.clone()];

    let (user_token, first) = create_token(&node, &admin_secret, &user, "user token").await;
    secrets.push(first.clone());
    let (status, created) = call(
        Method::POST,
        &format!("{base}/accounts/{account}/tokens"),
        &admin_secret,
        Some(json!({"name": "account token", "policies": [{
            "effect": "allow",
            "resources": {format!("com.cloudflare.api.account.{account}"): "*"},
            "permission_groups": [{"id": "eb56a6953c034b9d97dd838155666f06"}]}]})),
    )
    .await;
    assert_eq!(status, 200);
    let account_secret = created["result"]["value"].as_str().unwrap().to_owned();
    secrets.push(account_secret.clone());

    let (status, rolled) = call(
        Method::PUT,
        &format!("{base}/user/tokens/{user_token}/value"),
        &admin_secret,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let current = rolled["result"].as_str().unwrap().to_owned();
    secrets.push(current.clone());

    let verify = format!("{base}/user/tokens/verify");
    assert_eq!(call(Method::GET, &verify, &current, None).await.0, 200);
    assert_eq!(call(Method::GET, &verify, &first, None).await.0, 401);
    assert_eq!(
        call(Method::GET, &verify, &account_secret, None).await.0,
        401
    );
    let authorize = base.replace("/client/v4", "/latchkey/v1/authorize");
    let question = json!({"permission_group": "Account API Tokens Read",
                          "resource": format!("com.cloudflare.api.account.{account}")});
    let (status, _) = call(Method::POST, &authorize, &account_secret, Some(question)).await;
    assert_eq!(status, 200);
    let http = reqwest::Client::new();
    let forward = http
        .get(&authorize)
        .bearer_auth(&current)
        .header("x-latchkey-permission", "API Tokens Read")
        .header("x-latchkey-resource", &first)
        .send()
        .await
        .unwrap();
    assert!(forward.status().is_client_error());
    let in_query = http
        .get(format!("{base}/user/tokens?token={current}&page={first}"))
        .bearer_auth(&current)
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 400);
    let malformed = http
        .get(&verify)
        .header("authorization", format!("Bearer {current} {first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    // A leak report (issue 19): the token is disabled, and neither the answer, the log, the
    // audit entry nor the stored exposure holds the secret.
    let (leaked_id, leaked) = create_token(&node, &admin_secret, &user, "leaked").await;
    secrets.push(leaked.clone());
    let leaks = base.replace("/client/v4", "/latchkey/v1/leaks");
    let report = json!({"secrets": [leaked, "cfut_not_ours"], "source": "gitleaks", "url": "https://ci.example.com/1"});
    let (status, receipt) = call(Method::POST, &leaks, "", Some(report)).await;
    assert_eq!(status, 200, "{receipt}");
    let (status, exposed) = call(
        Method::GET,
        &format!("{base}/user/tokens/{leaked_id}"),
        &admin_secret,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(exposed["result"]["exposure"]["source"], "gitleaks");
    let audit = call(
        Method::GET,
        &format!("{base}/user/audit_logs"),
        &admin_secret,
        None,
    )
    .await
    .1;

    let log_file = dir.join("secrets.log");
    let (_, clean) = node.terminate(Duration::from_secs(20));
    assert!(clean);
    let export = dir.join("export.jsonl");
    let out = Command::new(LATCHKEY)
        .args(["export", "--database", database, "--output"])
        .arg(&export)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = std::fs::read(&log_file).unwrap();
    assert!(
        String::from_utf8_lossy(&log).contains("token created"),
        "the log is the real one"
    );
    let haystacks = vec![
        ("serve log".to_owned(), log),
        ("export".to_owned(), std::fs::read(&export).unwrap()),
        (
            "leak report answer".to_owned(),
            receipt.to_string().into_bytes(),
        ),
        ("exposed token".to_owned(), exposed.to_string().into_bytes()),
        ("audit log".to_owned(), audit.to_string().into_bytes()),
    ];
    (secrets, haystacks)
}

/// The number of (secret, haystack) pairs where the secret, or its random part, appears.
fn hits(secrets: &[String], haystacks: &Haystacks) -> Vec<String> {
    let mut found = Vec::new();
    for secret in secrets {
        let random = &secret[5..45];
        for (name, bytes) in haystacks {
            for needle in [secret.as_str(), random] {
                if bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
                {
                    found.push(format!("{}… in {name}", &secret[..9]));
                }
            }
        }
    }
    found
}

fn report(backend: &str, secrets: &[String], haystacks: &Haystacks) {
    let found = hits(secrets, haystacks);
    let bytes: usize = haystacks.iter().map(|(_, b)| b.len()).sum();
    println!(
        "secrets ({backend}): {} secrets issued, {} places ({} bytes) searched, {} hits",
        secrets.len(),
        haystacks.len(),
        bytes,
        found.len()
    );
    assert!(found.is_empty(), "secrets in clear: {found:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_the_sqlite_files_or_an_export() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.db");
    let database = format!("sqlite://{}", file.display());
    let (secrets, mut haystacks) = exercise(&database, dir.path()).await;
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{}{suffix}", file.display());
        if let Ok(bytes) = std::fs::read(&path) {
            haystacks.push((path, bytes));
        }
    }
    assert!(haystacks.len() >= 3, "the database file was read");
    report("sqlite", &secrets, &haystacks);
    // The search does find a secret where there is one.
    let planted = vec![("planted".to_owned(), secrets[1].clone().into_bytes())];
    assert_eq!(hits(&secrets[1..2], &planted).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_the_postgres_rows_or_an_export() {
    let Some(database) = latchkey_store::testing::fresh_postgres_database("secrets").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (secrets, mut haystacks) = exercise(&database, dir.path()).await;
    let mut connection = sqlx::PgConnection::connect(&database).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut connection)
    .await
    .unwrap();
    assert!(tables.iter().any(|(t,)| t == "tokens"));
    for (table,) in tables {
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT CAST(t AS text) FROM \"{table}\" t"))
                .fetch_all(&mut connection)
                .await
                .unwrap();
        let text: String = rows.into_iter().map(|(row,)| row + "\n").collect();
        haystacks.push((format!("table {table}"), text.into_bytes()));
    }
    report("postgres", &secrets, &haystacks);
}
