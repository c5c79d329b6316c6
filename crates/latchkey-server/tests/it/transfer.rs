//! `latchkey export` / `latchkey import`: a deployment moves from SQLite to PostgreSQL and
//! back, and every token keeps working with the secret it was issued with.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use latchkey_store::testing::fresh_postgres_database;
use serde_json::json;

use crate::process::{bootstrap, call, create_token, verify, Node, LATCHKEY};

fn latchkey(args: &[&str]) -> (bool, String) {
    let out = Command::new(LATCHKEY).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn export(database: &str, file: &Path) -> String {
    let (ok, err) = latchkey(&[
        "export",
        "--database",
        database,
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    std::fs::read_to_string(file).unwrap()
}

fn import(database: &str, file: &Path) {
    let (ok, err) = latchkey(&[
        "import",
        "--database",
        database,
        "--input",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("imported"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_moves_from_sqlite_to_postgres_and_back_without_reissuing_tokens() {
    let Some(postgres) = fresh_postgres_database("export_import").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("origin.db").display());

    // A deployment with a disabled token, an address condition and a second member.
    let (admin, user) = bootstrap(&sqlite);
    let mut secrets = vec![admin.clone()];
    {
        let node = Node::start(&sqlite, dir.path(), "origin");
        for name in ["ci", "deploy"] {
            secrets.push(create_token(&node, &admin, &user, name).await.1);
        }
        let (id, disabled) = create_token(&node, &admin, &user, "old").await;
        let (status, body) = call(
            reqwest::Method::PUT,
            &format!("{}/user/tokens/{id}", node.base),
            &admin,
            Some(json!({
                "name": "old", "status": "disabled",
                "condition": {"request_ip": {"in": ["10.0.0.0/8"], "not_in": ["10.1.0.0/16"]}},
                "policies": [{"effect": "allow",
                    "resources": {format!("com.cloudflare.api.user.{user}"): "*"},
                    "permission_groups": [{"id": "0cc3a61731504c89b99ec1be78b77aa0"}]}]
            })),
        )
        .await;
        assert_eq!(status, 200, "{body:#}");
        assert_eq!(verify(&node, &disabled).await, 401);
        secrets.push(disabled);
    }
    let (ok, err) = latchkey(&[
        "users",
        "add",
        "--email",
        "dev@example.com",
        "--database",
        &sqlite,
    ]);
    assert!(ok, "{err}");

    let first = dir.path().join("first.jsonl");
    let exported = export(&sqlite, &first);
    let mode = std::fs::metadata(&first).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the export is private");
    assert_eq!(
        exported.lines().count(),
        1 + 2 + 1 + 1 + 4,
        "header, users, account, membership, tokens"
    );
    for secret in &secrets {
        assert!(!exported.contains(secret.as_str()), "no secret is exported");
        assert!(!exported.contains(&secret[5..20]), "no part of one either");
    }

    // SQLite -> PostgreSQL: the same export comes back out, and every secret works there.
    import(&postgres, &first);
    let second = dir.path().join("second.jsonl");
    assert_eq!(export(&postgres, &second), exported);
    {
        let node = Node::start(&postgres, dir.path(), "moved");
        for secret in &secrets[..3] {
            assert_eq!(verify(&node, secret).await, 200);
        }
        assert_eq!(verify(&node, &secrets[3]).await, 401, "still disabled");
        let (status, body) = call(
            reqwest::Method::GET,
            &format!("{}/user/tokens", node.base),
            &admin,
            None,
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(body["result_info"]["total_count"], 4);
        assert_eq!(
            body["result"][3]["condition"]["request_ip"]["not_in"],
            json!(["10.1.0.0/16"])
        );
    }

    // ... and back to a new SQLite file.
    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    import(&back, &second);
    assert_eq!(export(&back, &dir.path().join("third.jsonl")), exported);

    // An import never merges into a database in use.
    let (ok, err) = latchkey(&[
        "import",
        "--database",
        &back,
        "--input",
        first.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("only into an empty database"), "{err}");
    let garbage = dir.path().join("garbage.jsonl");
    std::fs::write(&garbage, "{\"type\":\"token\"}\n").unwrap();
    let empty = format!("sqlite://{}", dir.path().join("empty.db").display());
    let (ok, err) = latchkey(&[
        "import",
        "--database",
        &empty,
        "--input",
        garbage.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("line 1"), "{err}");
}
