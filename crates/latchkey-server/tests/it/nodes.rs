//! Several `latchkey serve` processes on one PostgreSQL: starting together on an empty
//! database, a change on one node refused by the other within a second, and the database
//! going away and coming back.
//!
//! These need PostgreSQL (see `latchkey_store::testing`); the outage test starts a cluster of
//! its own with `scripts/pg`, since it stops it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use latchkey_store::testing::{fresh_postgres_database, postgres_server};
use serde_json::json;

use crate::process::{
    bootstrap, call, create_token, free_port, pending_files, verify, Node, LATCHKEY,
};

/// A new user's first start on PostgreSQL: no `--admin-token-file`, so the admin token goes
/// to `latchkey-admin-token` in the working directory, as the docs say.
#[tokio::test]
async fn a_first_serve_on_postgresql_writes_the_admin_token_in_the_working_directory() {
    let Some(database) = fresh_postgres_database("a_first_serve_on_postgresql").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = dir.path().join("serve.log");
    let mut child = Command::new(LATCHKEY)
        .args(["serve", "--listen", &listen, "--database", &database])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let token_file = dir.path().join("latchkey-admin-token");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(token_file.exists() && std::net::TcpStream::connect(&listen).is_ok()) {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none() && Instant::now() < deadline,
            "latchkey did not start ({exited:?}): {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let secret = std::fs::read_to_string(&token_file).unwrap();
    let status = reqwest::Client::new()
        .get(format!("http://{listen}/client/v4/user/tokens/verify"))
        .bearer_auth(secret.trim())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert_eq!(pending_files(dir.path()), 0);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// How long until `node` answers `secret`'s verify with `want` (polling every 5 ms, at
/// most 5 s).
async fn time_until(node: &Node, secret: &str, want: u16) -> Duration {
    let start = Instant::now();
    loop {
        if verify(node, secret).await == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "node never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_an_empty_database_create_one_admin() {
    let Some(database) = fresh_postgres_database("nodes_starting_together").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (db_a, dir_a) = (database.clone(), dir.path().to_owned());
    let (db_b, dir_b) = (database.clone(), dir.path().to_owned());
    let a = std::thread::spawn(move || Node::start(&db_a, &dir_a, "a"));
    let b = std::thread::spawn(move || Node::start(&db_b, &dir_b, "b"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());

    let files: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|n| dir.path().join(format!("{n}-admin-token")))
        .filter(|f| f.exists())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "one node created the admin:\n{}\n{}",
        a.log(),
        b.log()
    );
    assert_eq!(
        pending_files(dir.path()),
        0,
        "no pending secret file is left behind"
    );
    let secret = std::fs::read_to_string(&files[0])
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(verify(&a, &secret).await, 200);
    assert_eq!(verify(&b, &secret).await, 200);
    let out = Command::new(LATCHKEY)
        .args(["users", "list", "--database", &database])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_node_is_refused_by_the_other_within_a_second() {
    let Some(database) = fresh_postgres_database("a_change_through_one_node").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = Node::start(&database, dir.path(), "a");
    let b = Node::start(&database, dir.path(), "b");
    let (admin, user) = bootstrap(&database);

    let (disabled_id, disabled) = create_token(&a, &admin, &user, "to disable").await;
    let (rolled_id, rolled) = create_token(&a, &admin, &user, "to roll").await;
    let (deleted_id, deleted) = create_token(&a, &admin, &user, "to delete").await;
    let (_, leaked) = create_token(&a, &admin, &user, "to leak").await;
    // Node B has each token cached (its cache keeps them for 30 s on its own).
    for secret in [&disabled, &rolled, &deleted, &leaked] {
        assert_eq!(verify(&b, secret).await, 200);
        assert_eq!(verify(&b, secret).await, 200);
    }
    let tokens = format!("{}/user/tokens", a.base);

    let (status, body) = call(
        reqwest::Method::PUT,
        &format!("{tokens}/{disabled_id}"),
        &admin,
        Some(
            json!({"name": "to disable", "status": "disabled", "policies": [{
                "effect": "allow",
                "resources": {format!("com.cloudflare.api.user.{user}"): "*"},
                "permission_groups": [{"id": "0cc3a61731504c89b99ec1be78b77aa0"}]
            }]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    let disable = time_until(&b, &disabled, 401).await;

    let (status, body) = call(
        reqwest::Method::PUT,
        &format!("{tokens}/{rolled_id}/value"),
        &admin,
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    let roll = time_until(&b, &rolled, 401).await;
    let new_secret = body["result"].as_str().unwrap();
    assert_eq!(verify(&b, new_secret).await, 200);

    let (status, body) = call(
        reqwest::Method::DELETE,
        &format!("{tokens}/{deleted_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    let delete = time_until(&b, &deleted, 401).await;

    // A leaked secret reported to node A (issue 19): A refuses it when the report returns.
    let (status, body) = call(
        reqwest::Method::POST,
        &format!(
            "{}/latchkey/v1/leaks",
            a.base.trim_end_matches("/client/v4")
        ),
        "",
        Some(json!({"secrets": [leaked], "source": "test"})),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(verify(&a, &leaked).await, 401);
    let exposed = time_until(&b, &leaked, 401).await;

    println!(
        "propagation from node A to node B: disable {} ms, roll {} ms, delete {} ms, leak report {} ms",
        disable.as_millis(),
        roll.as_millis(),
        delete.as_millis(),
        exposed.as_millis()
    );
    for (what, took) in [
        ("disable", disable),
        ("roll", roll),
        ("delete", delete),
        ("leak report", exposed),
    ] {
        assert!(
            took < Duration::from_secs(1),
            "{what} took {took:?} to reach node B"
        );
    }
}

/// Issue 24's defect across nodes: tokens that both nodes read again after their entries
/// went stale, or that both met first as 8 requests at once, are refused by the writing node
/// the moment its write returns and by the other node within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_re_reads_and_concurrent_first_uses_stops_the_secret_on_both_nodes() {
    let Some(database) = fresh_postgres_database("a_write_after_re_reads").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ttl = ["--token-cache-ttl", "1"];
    let a = Node::start_with(&database, dir.path(), "a", &ttl);
    let b = Node::start_with(&database, dir.path(), "b", &ttl);
    let (admin, user) = bootstrap(&database);
    let tokens = format!("{}/user/tokens", a.base);
    let disable = |name: &str| {
        json!({"name": name, "status": "disabled", "policies": [{
            "effect": "allow",
            "resources": {format!("com.cloudflare.api.user.{user}"): "*"},
            "permission_groups": [{"id": "0cc3a61731504c89b99ec1be78b77aa0"}]
        }]})
    };
    for how in ["re-read", "concurrent first uses"] {
        for write in ["delete", "roll", "disable"] {
            let (id, secret) = create_token(&a, &admin, &user, write).await;
            if how == "re-read" {
                for node in [&a, &b] {
                    assert_eq!(verify(node, &secret).await, 200);
                }
                tokio::time::sleep(Duration::from_millis(1100)).await;
                for node in [&a, &b] {
                    assert_eq!(verify(node, &secret).await, 200);
                }
            } else {
                let uses = (0..8).flat_map(|_| [verify(&a, &secret), verify(&b, &secret)]);
                for status in futures_util::future::join_all(uses).await {
                    assert_eq!(status, 200);
                }
            }
            let (method, url, body) = match write {
                "delete" => (reqwest::Method::DELETE, format!("{tokens}/{id}"), None),
                "roll" => (
                    reqwest::Method::PUT,
                    format!("{tokens}/{id}/value"),
                    Some(json!({})),
                ),
                _ => (
                    reqwest::Method::PUT,
                    format!("{tokens}/{id}"),
                    Some(disable(write)),
                ),
            };
            let (status, answer) = call(method, &url, &admin, body).await;
            assert_eq!(status, 200, "{answer:#}");
            assert_eq!(
                verify(&a, &secret).await,
                401,
                "{write} after {how}: the writing node refuses at once"
            );
            let took = time_until(&b, &secret, 401).await;
            assert!(
                took < Duration::from_secs(1),
                "{write} after {how} took {took:?} to reach node B"
            );
        }
    }
}

/// Runs `scripts/pg` with `args`; its standard output.
fn scripts_pg(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg");
    let out = Command::new(script).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "scripts/pg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_going_away_gives_503_and_the_node_recovers_by_itself() {
    if postgres_server("the_database_going_away").is_none() {
        return;
    }
    // A cluster of its own, since this test stops it.
    let root = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let cluster = root.path().join("pg");
    let cluster = cluster.to_str().unwrap();
    let port = free_port().to_string();
    let server = scripts_pg(&["start", cluster, &port]);
    struct Stop<'a>(&'a str);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            // Stopped already when the test passed; this is for a failed one.
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg");
            Command::new(script).args(["stop", self.0]).output().ok();
        }
    }
    let _stop = Stop(cluster);

    let mut node = Node::start(&server, root.path(), "node");
    let (admin, user) = bootstrap(&server);
    assert_eq!(verify(&node, &admin).await, 200);
    let tokens = format!("{}/user/tokens", node.base);

    scripts_pg(&["stop", cluster]);
    // The node notices the lost connection and stops trusting its cache; from then on every
    // request that needs the database gets a 503 envelope, within the pool's timeout.
    let outage = Instant::now();
    while verify(&node, &admin).await != 503 {
        assert!(
            outage.elapsed() < Duration::from_secs(10),
            "no 503 within 10 s of the database stopping"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for method in [reqwest::Method::GET, reqwest::Method::POST] {
        let started = Instant::now();
        let body = (method == reqwest::Method::POST).then(|| json!({"name": "x", "policies": []}));
        let (status, body) = call(method.clone(), &tokens, &admin, body).await;
        let took = started.elapsed();
        assert_eq!(status, 503, "{method} {body:#}");
        assert_eq!(body["success"], false);
        assert_eq!(body["errors"][0]["code"], 1015, "{body:#}");
        assert!(took < Duration::from_secs(5), "{method} took {took:?}");
        println!(
            "{method} during the outage: 503 after {} ms",
            took.as_millis()
        );
    }
    assert!(node.is_running(), "the node survives the outage");
    // Alive, but not ready.
    let root = node.base.trim_end_matches("/client/v4").to_owned();
    let health = reqwest::get(format!("{root}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::get(format!("{root}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["errors"][0]["code"], 1015, "{ready:#}");

    scripts_pg(&["start", cluster, &port]);
    let back = Instant::now();
    while verify(&node, &admin).await != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "the node did not recover within 15 s: {}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "recovered {} ms after the database came back",
        back.elapsed().as_millis()
    );
    let (_, secret) = create_token(&node, &admin, &user, "after the outage").await;
    assert_eq!(verify(&node, &secret).await, 200);
    let ready = reqwest::get(format!("{root}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert!(!node.log().contains("panicked"), "{}", node.log());
}
