//! Operations: request ids on every answer and in every log line of a request, `/metrics`
//! in Prometheus' format with the counts it promises, JSON logs, and `--config` files.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

use crate::kit::*;
use crate::process::{bootstrap_json, Node, LATCHKEY};

/// The value of one sample of the Prometheus text, 0 when absent. The registry is shared
/// by every test of this process, so tests compare before and after.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .send_raw(
            Request::get("/metrics").body(Body::empty()).unwrap(),
            LOCALHOST,
        )
        .await;
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_well_formed_one_is_kept() {
    let app = TestApp::new().await;
    let mut seen = std::collections::HashSet::new();
    for (uri, auth) in [
        ("/client/v4/user/tokens/verify", true),
        ("/client/v4/user/tokens/verify", false),
        ("/client/v4/no/such/route", true),
        ("/healthz", false),
    ] {
        let mut request = Request::get(uri);
        if auth {
            request = request.header("authorization", format!("Bearer {}", app.admin_token()));
        }
        let response = app
            .send_raw(request.body(Body::empty()).unwrap(), LOCALHOST)
            .await;
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(id.len(), 20, "{uri}: {id}");
        assert!(seen.insert(id), "ids are not reused");
    }
    let response = app
        .send_raw(
            Request::get("/healthz")
                .header("x-request-id", "edge-7f3a.1")
                .body(Body::empty())
                .unwrap(),
            LOCALHOST,
        )
        .await;
    assert_eq!(response.headers()["x-request-id"], "edge-7f3a.1");
}

#[tokio::test]
async fn metrics_count_requests_outcomes_and_cache_lookups() {
    let app = TestApp::new().await;
    let before = scrape(&app).await;
    let path = app.tokens_path(Family::User);
    let (id, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let mut body = app.body_with(Family::User, API_TOKENS_READ);
    body["status"] = json!("disabled");
    app.put(&format!("{path}/{id}"), app.admin_token(), body)
        .await
        .ok();
    for _ in 0..3 {
        app.get("/client/v4/user/tokens/verify", &secret)
            .await
            .assert_error(401, 1000);
    }
    app.get("/client/v4/user/tokens/verify", app.admin_token())
        .await
        .ok();
    app.post(
        "/latchkey/v1/authorize",
        app.admin_token(),
        json!({"permission_group": "DNS Read", "resource": "com.cloudflare.api.account.zone.0123456789abcdef0123456789abcdef"}),
    )
    .await
    .ok();
    let after = scrape(&app).await;
    let delta = |series: &str| sample(&after, series) - sample(&before, series);

    assert!(delta(r#"latchkey_authentications_total{outcome="disabled"}"#) >= 3.0);
    assert!(delta(r#"latchkey_authentications_total{outcome="ok"}"#) >= 3.0);
    assert!(
        delta(r#"latchkey_authorize_decisions_total{allowed="false",reason="no_allow_matched"}"#)
            >= 1.0
    );
    assert!(delta(r#"latchkey_token_cache_lookups_total{result="hit"}"#) >= 1.0);
    assert!(delta(r#"latchkey_token_cache_lookups_total{result="miss"}"#) >= 1.0);
    let verify_401 = r#"latchkey_http_request_duration_seconds_count{route="/client/v4/user/tokens/verify",method="GET",status="401"}"#;
    assert!(delta(verify_401) >= 3.0, "{after}");
    let created = r#"latchkey_http_request_duration_seconds_count{route="/client/v4/user/tokens",method="POST",status="200"}"#;
    assert!(delta(created) >= 1.0);
    assert!(after.contains(r#"latchkey_http_request_duration_seconds_bucket{route="/client/v4/user/tokens/verify",method="GET",status="200",le="0.001"}"#));
    for gauge in [
        r#"latchkey_db_pool_connections{pool="#,
        "latchkey_db_pool_max_connections{pool=",
        "latchkey_token_cache_entries ",
        "latchkey_last_used_pending ",
        "latchkey_last_used_flush_lag_seconds ",
    ] {
        assert!(after.contains(gauge), "{gauge} missing:\n{after}");
    }
    // Paths as sent never become labels: ids stay out of the metrics.
    assert!(!after.contains(&id));
}

#[tokio::test]
async fn the_last_used_lag_grows_until_a_flush() {
    let app = TestApp::new().await;
    app.get("/client/v4/user/tokens/verify", app.admin_token())
        .await
        .ok();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (pending, lag) = app.state.last_used.backlog();
    assert!(
        pending >= 1 && lag >= Duration::from_millis(50),
        "{pending} {lag:?}"
    );
    app.flush_last_used().await;
    assert_eq!(app.state.last_used.backlog(), (0, Duration::ZERO));
}

/// `--log-format json` and the request id in the lines a request writes; text lines end
/// with it.
#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("logs.db").display());
    let admin = bootstrap_json(&database);
    let node = Node::start_with(&database, dir.path(), "logs", &["--log-format", "json"]);
    let response = reqwest::Client::new()
        .post(format!("{}/user/tokens", node.base))
        .bearer_auth(admin["token"].as_str().unwrap())
        .header("x-request-id", "trace-me-42")
        .json(&json!({"name": "logged", "policies": [{"effect": "allow",
            "permission_groups": [{"id": DNS_READ}],
            "resources": {"com.cloudflare.api.account.zone.*": "*"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let log = node.log();
    node.terminate(Duration::from_secs(15));
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let created = lines
        .iter()
        .find(|line| line["fields"]["message"] == "token created")
        .unwrap_or_else(|| panic!("no creation line in {log}"));
    assert_eq!(created["request_id"], "trace-me-42", "{created}");
    // Lines outside any request carry no id.
    let listening = lines
        .iter()
        .find(|line| line["fields"]["message"] == "latchkey listening")
        .unwrap();
    assert!(listening.get("request_id").is_none(), "{listening}");
    assert_eq!(created["level"], "INFO");

    let node = Node::start(&database, dir.path(), "text");
    reqwest::Client::new()
        .delete(format!(
            "{}/user/tokens/{}",
            node.base,
            created["fields"]["token_id"].as_str().unwrap()
        ))
        .bearer_auth(admin["token"].as_str().unwrap())
        .header("x-request-id", "text-7")
        .send()
        .await
        .unwrap();
    let log = node.log();
    node.terminate(Duration::from_secs(15));
    let deleted = log
        .lines()
        .find(|line| line.contains("token deleted"))
        .unwrap_or_else(|| panic!("no deletion line in {log}"));
    assert!(deleted.ends_with(" request_id=text-7"), "{deleted}");
}

/// `--config`: a TOML file's settings apply below flags and the environment, and a bad
/// one stops the start with a message naming the setting.
#[tokio::test]
async fn a_config_file_sets_what_flags_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("config.db").display());
    let admin = bootstrap_json(&database);
    let file = dir.path().join("latchkey.toml");
    std::fs::write(&file, "rate-limit = 2\nmax_body_bytes = 4096\n").unwrap();
    let node = Node::start_with(
        &database,
        dir.path(),
        "config",
        &["--config", file.to_str().unwrap(), "--rate-limit", "3"],
    );
    let client = reqwest::Client::new();
    let verify = client
        .get(format!("{}/user/tokens/verify", node.base))
        .bearer_auth(admin["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    // The flag (3) beat the file (2).
    assert_eq!(verify.headers()["x-ratelimit-limit"], "3");
    // The file's body limit applied (the default is 1 MiB).
    let big = client
        .post(format!("{}/user/tokens", node.base))
        .bearer_auth(admin["token"].as_str().unwrap())
        .header("content-type", "application/json")
        .body(format!(r#"{{"name":"{}"}}"#, "x".repeat(5000)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    drop(node);

    for (contents, named) in [
        ("rate-limt = 2\n", "rate-limt"),
        ("rate-limit = \"lots\"\n", "--rate-limit"),
        ("user-token-quota = 0\n", "--user-token-quota"),
    ] {
        std::fs::write(&file, contents).unwrap();
        let out = std::process::Command::new(LATCHKEY)
            .args(["serve", "--database", &database, "--listen", "127.0.0.1:0"])
            .arg("--config")
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{contents} was accepted");
        assert!(stderr.contains(named), "{contents}: {stderr}");
    }
}

/// Issue 24: answers carrying a secret (create, roll) had no `Cache-Control`; every API
/// answer, success or failure, now says `no-store`.
#[tokio::test]
async fn no_api_answer_may_be_cached() {
    let app = TestApp::new().await;
    let create = Request::post(app.tokens_path(Family::User))
        .header("authorization", format!("Bearer {}", app.admin_token()))
        .header("content-type", "application/json")
        .body(Body::from(
            app.body_with(Family::User, API_TOKENS_READ).to_string(),
        ))
        .unwrap();
    let verify = Request::get("/client/v4/user/tokens/verify")
        .body(Body::empty())
        .unwrap();
    let unknown = Request::get("/client/v4/no/such/route")
        .body(Body::empty())
        .unwrap();
    for request in [create, verify, unknown] {
        let uri = request.uri().clone();
        let response = app.send_raw(request, LOCALHOST).await;
        assert_eq!(response.headers()["cache-control"], "no-store", "{uri}");
    }
}
