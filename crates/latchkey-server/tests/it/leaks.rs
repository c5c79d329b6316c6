//! Leak response: GitHub's signed secret scanning alerts and reports of leaked secrets
//! disable the token at once and mark it exposed; an exposed token is not enabled again by
//! an update, and a roll gives it a new secret and makes it active.

use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine;
use latchkey_server::leaks::github::KeySource;
use latchkey_server::Limits;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};

use crate::kit::*;

fn signing_key() -> SigningKey {
    loop {
        let bytes: [u8; 32] = rand::random();
        if let Ok(key) = SigningKey::from_slice(&bytes) {
            return key;
        }
    }
}

fn sign(key: &SigningKey, body: &[u8]) -> String {
    let signature: p256::ecdsa::Signature = key.sign(body);
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

/// An app that reads GitHub's keys from a file holding `current` (id "current") and
/// `retired` (id "retired", not current).
async fn app_with_keys(limits: Limits) -> (TestApp, SigningKey, SigningKey, tempfile::TempDir) {
    let (current, retired) = (signing_key(), signing_key());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("github-keys.json");
    let pem = |key: &SigningKey| {
        key.verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    };
    let list = json!({"public_keys": [
        {"key_identifier": "current", "key": pem(&current), "is_current": true},
        {"key_identifier": "retired", "key": pem(&retired), "is_current": false},
    ]});
    std::fs::write(&path, list.to_string()).unwrap();
    let mut app = TestApp::with_limits(limits).await;
    app.state = app.state.clone().with_github_keys(KeySource::File(path));
    (app, current, retired, dir)
}

/// POSTs `body` to the GitHub endpoint with these signature headers (`None`: left out).
async fn alert(app: &TestApp, body: &str, key_id: Option<&str>, signature: Option<&str>) -> Resp {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/latchkey/v1/secret-scanning/github")
        .header("content-type", "application/json");
    if let Some(id) = key_id {
        request = request.header("GITHUB-PUBLIC-KEY-IDENTIFIER", id);
    }
    if let Some(signature) = signature {
        request = request.header("GITHUB-PUBLIC-KEY-SIGNATURE", signature);
    }
    app.send(
        request.body(Body::from(body.to_owned())).unwrap(),
        LOCALHOST,
    )
    .await
}

async fn verify_status(app: &TestApp, secret: &str) -> u16 {
    app.get("/client/v4/user/tokens/verify", secret)
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn a_signed_github_alert_revokes_latchkey_secrets_and_labels_each_match() {
    let (app, key, _, _dir) = app_with_keys(Limits::default()).await;
    let (leaked_id, leaked) = app.create_with(Family::User, API_TOKENS_READ).await;
    let (rolled_id, old_secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let rolled_path = format!("/client/v4/user/tokens/{rolled_id}/value");
    app.put(&rolled_path, app.admin_token(), json!({}))
        .await
        .ok();
    let (_, bystander) = app.create_with(Family::User, API_TOKENS_READ).await;
    assert_eq!(verify_status(&app, &leaked).await, 200, "warm in the cache");
    // A wrong checksum: latchkey's prefix, not latchkey's secret.
    let mut forged = leaked.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });

    let body = json!([
        {"token": leaked, "type": "latchkey_user_token", "url": "https://github.com/o/r/blob/main/.env", "source": "content"},
        {"token": forged, "type": "latchkey_user_token", "url": "", "source": "commit"},
        {"token": "ghp_not_ours", "type": "latchkey_user_token"},
        {"token": old_secret, "type": "latchkey_user_token", "url": "https://github.com/o/r/commit/1", "source": "commit"},
    ])
    .to_string();
    let answer = alert(
        &app,
        &body,
        Some("current"),
        Some(&sign(&key, body.as_bytes())),
    )
    .await;
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let labels: Vec<&str> = answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "true_positive",
            "false_positive",
            "false_positive",
            "true_positive"
        ]
    );
    assert_eq!(answer.body[0]["token_raw"], leaked.as_str());
    assert_eq!(answer.body[0]["token_type"], "latchkey_user_token");

    // Refused at once (the cache held it), and every answer about it shows the exposure.
    assert_eq!(verify_status(&app, &leaked).await, 401);
    assert_eq!(
        verify_status(&app, &bystander).await,
        200,
        "no other token touched"
    );
    let path = format!("/client/v4/user/tokens/{leaked_id}");
    let token = app.get(&path, app.admin_token()).await.ok().clone();
    assert_eq!(token["status"], "disabled");
    assert_eq!(token["exposure"]["reporter"], "github");
    assert_eq!(token["exposure"]["source"], "content");
    assert_eq!(
        token["exposure"]["url"],
        "https://github.com/o/r/blob/main/.env"
    );
    assert_eq!(token["exposure"]["reported_on"], "2026-06-01T12:00:00Z");
    let listed = app.get("/client/v4/user/tokens", app.admin_token()).await;
    let listed = listed
        .ok()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == leaked_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["exposure"], token["exposure"]);
    let rolled = app
        .get(
            &format!("/client/v4/user/tokens/{rolled_id}"),
            app.admin_token(),
        )
        .await;
    assert!(
        rolled.ok().get("exposure").is_none(),
        "an old secret touches the token no more"
    );

    // A second alert for the same secret changes nothing more.
    let again = alert(
        &app,
        &body,
        Some("current"),
        Some(&sign(&key, body.as_bytes())),
    )
    .await;
    assert_eq!(again.body[0]["label"], "true_positive");
    let same = app.get(&path, app.admin_token()).await;
    assert_eq!(same.ok()["modified_on"], token["modified_on"]);

    // Not enabled again by an update; other changes are fine and keep the exposure.
    let mut update =
        json!({"name": token["name"], "policies": token["policies"], "status": "active"});
    app.put(&path, app.admin_token(), update.clone())
        .await
        .assert_error(400, 1021);
    assert_eq!(
        app.put(&path, app.admin_token(), update.clone())
            .await
            .pointer(),
        "/status"
    );
    update["status"] = json!("disabled");
    update["name"] = json!("renamed");
    let renamed = app.put(&path, app.admin_token(), update.clone()).await;
    assert_eq!(renamed.ok()["exposure"], token["exposure"]);
    update.as_object_mut().unwrap().remove("status");
    app.put(&path, app.admin_token(), update).await.ok();

    // A roll: a new secret, no exposure, active; the leaked secret stays dead.
    let new_secret = app
        .put(&format!("{path}/value"), app.admin_token(), json!({}))
        .await;
    let new_secret = new_secret.ok().as_str().unwrap().to_owned();
    let after = app.get(&path, app.admin_token()).await.ok().clone();
    assert_eq!(after["status"], "active");
    assert!(after.get("exposure").is_none(), "{after:#}");
    assert_eq!(verify_status(&app, &new_secret).await, 200);
    assert_eq!(verify_status(&app, &leaked).await, 401);

    // The audit log says who reported it and where; never the secret.
    let log = app
        .get("/client/v4/user/audit_logs", app.admin_token())
        .await;
    let log = log.ok().as_array().unwrap().clone();
    let exposed: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"]["type"] == "token_exposed")
        .collect();
    assert_eq!(exposed.len(), 1, "{log:#?}");
    assert_eq!(exposed[0]["resource"]["id"], leaked_id.as_str());
    assert_eq!(exposed[0]["metadata"]["reporter"], "github");
    assert_eq!(
        exposed[0]["metadata"]["url"],
        "https://github.com/o/r/blob/main/.env"
    );
    assert!(!serde_json::to_string(&log).unwrap().contains(&leaked));
}

#[tokio::test]
async fn an_alert_without_a_valid_signature_or_shape_changes_nothing() {
    let (app, key, retired, _dir) = app_with_keys(Limits::default()).await;
    let (id, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let body =
        json!([{"token": secret, "type": "latchkey_user_token", "url": "", "source": "content"}])
            .to_string();
    let good = sign(&key, body.as_bytes());
    let other = sign(&signing_key(), body.as_bytes());
    let cases: [(&str, Option<&str>, Option<String>); 7] = [
        ("no headers", None, None),
        ("no signature", Some("current"), None),
        ("no key id", None, Some(good.clone())),
        ("not base64", Some("current"), Some("%%%".into())),
        (
            "not DER",
            Some("current"),
            Some(base64::engine::general_purpose::STANDARD.encode(b"abc")),
        ),
        ("another key's signature", Some("current"), Some(other)),
        (
            "a key that is not current",
            Some("retired"),
            Some(sign(&retired, body.as_bytes())),
        ),
    ];
    for (what, key_id, signature) in cases {
        let answer = alert(&app, &body, key_id, signature.as_deref()).await;
        answer.assert_error(400, 1020);
        assert!(
            !answer.body.to_string().contains(&secret),
            "{what}: the secret is not echoed"
        );
        assert_eq!(
            verify_status(&app, &secret).await,
            200,
            "{what}: nothing changed"
        );
    }
    let unknown = alert(&app, &body, Some("nobody"), Some(&good)).await;
    unknown.assert_error(400, 1020);
    assert!(unknown.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("nobody"));
    // Signed over other bytes than those sent.
    let tampered = body.replace("content", "commit");
    alert(&app, &tampered, Some("current"), Some(&good))
        .await
        .assert_error(400, 1020);
    // Signed, but not GitHub's array.
    for shape in [
        json!({"token": secret}).to_string(),
        "[{\"token\": 1}]".to_owned(),
        "not json".to_owned(),
    ] {
        let answer = alert(
            &app,
            &shape,
            Some("current"),
            Some(&sign(&key, shape.as_bytes())),
        )
        .await;
        assert_eq!(answer.status, 400, "{shape}: {:#}", answer.body);
    }
    assert_eq!(verify_status(&app, &secret).await, 200);
    let token = app
        .get(&format!("/client/v4/user/tokens/{id}"), app.admin_token())
        .await;
    assert!(token.ok().get("exposure").is_none());
}

#[tokio::test]
async fn a_key_list_that_cannot_be_read_is_a_503_that_changes_nothing() {
    let mut app = TestApp::new().await;
    let dir = tempfile::tempdir().unwrap();
    app.state = app
        .state
        .clone()
        .with_github_keys(KeySource::File(dir.path().join("missing.json")));
    let (_, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let body = json!([{"token": secret, "type": "t"}]).to_string();
    let answer = alert(
        &app,
        &body,
        Some("current"),
        Some(&sign(&signing_key(), body.as_bytes())),
    )
    .await;
    answer.assert_error(503, 1022);
    assert_eq!(verify_status(&app, &secret).await, 200);
}

#[tokio::test]
async fn a_report_disables_the_token_and_answers_the_same_for_any_secret() {
    let (app, _, _, _dir) = app_with_keys(Limits::default()).await;
    let (id, secret) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    let report = |secrets: Value| json!({"secrets": secrets, "source": "gitleaks", "url": "https://ci.example.com/job/7"});
    let known = app
        .call(
            Method::POST,
            "/latchkey/v1/leaks",
            None,
            Some(report(json!([secret, "cfut_nope"]))),
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/latchkey/v1/leaks",
            None,
            Some(report(json!(["cfat_nope", "x"]))),
        )
        .await;
    assert_eq!(known.ok(), &json!({"received": 2}));
    assert_eq!(unknown.ok(), &json!({"received": 2}), "no oracle");

    let path = format!("/client/v4/accounts/{}/tokens/{id}", app.account_id());
    let token = app.get(&path, app.admin_token()).await.ok().clone();
    assert_eq!(token["status"], "disabled");
    assert_eq!(
        token["exposure"],
        json!({"reported_on": "2026-06-01T12:00:00Z", "source": "gitleaks", "url": "https://ci.example.com/job/7", "reporter": "report"})
    );
    let verify = format!("/client/v4/accounts/{}/tokens/verify", app.account_id());
    app.get(&verify, &secret).await.assert_error(401, 1000);

    // At most 100 secrets; no control characters or oversized text.
    let many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
    let over = app
        .call(
            Method::POST,
            "/latchkey/v1/leaks",
            None,
            Some(report(json!(many))),
        )
        .await;
    over.assert_error(400, 1017);
    assert_eq!(over.pointer(), "/secrets");
    let control = json!({"secrets": [], "source": "a\u{7}b"});
    let refused = app
        .call(Method::POST, "/latchkey/v1/leaks", None, Some(control))
        .await;
    refused.assert_error(400, 1017);
    assert_eq!(refused.pointer(), "/source");
    let shape = app
        .call(
            Method::POST,
            "/latchkey/v1/leaks",
            None,
            Some(json!({"secret": "x"})),
        )
        .await;
    assert_eq!(shape.status, 400);
}

#[tokio::test]
async fn reports_count_against_the_failed_authentication_limit_of_the_address() {
    let limits = Limits {
        auth_failure_limit: 3,
        ..Limits::default()
    };
    let (app, _, _, _dir) = app_with_keys(limits).await;
    let body = json!({"secrets": ["cfut_guess"]});
    for _ in 0..3 {
        app.call(Method::POST, "/latchkey/v1/leaks", None, Some(body.clone()))
            .await
            .ok();
    }
    let refused = app
        .call(Method::POST, "/latchkey/v1/leaks", None, Some(body.clone()))
        .await;
    refused.assert_error(429, 1016);
    let elsewhere: std::net::IpAddr = "192.0.2.9".parse().unwrap();
    let other = app
        .call_from(
            elsewhere,
            Method::POST,
            "/latchkey/v1/leaks",
            None,
            Some(body),
        )
        .await;
    other.ok();
}

/// The gitleaks example of docs/leaks.md, run as written against a running latchkey, with a
/// report in gitleaks' JSON format.
#[tokio::test]
async fn the_gitleaks_example_reports_the_latchkey_secrets_of_a_report() {
    use crate::process::{bootstrap, create_token, verify, Node};

    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("leaks.db").display());
    let (admin, user) = bootstrap(&database);
    let node = Node::start(&database, dir.path(), "leaks");
    let (id, leaked) = create_token(&node, &admin, &user, "in a commit").await;
    let report = dir.path().join("gitleaks.json");
    let findings = json!([
        {"RuleID": "latchkey-api-token", "File": ".env", "Commit": "abc", "Secret": leaked, "Match": format!("TOKEN={leaked}")},
        {"RuleID": "aws-access-token", "File": "x.tf", "Commit": "abc", "Secret": "AKIAIOSFODNN7EXAMPLE"},
    ]);
    std::fs::write(&report, findings.to_string()).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/leaks/report-gitleaks"
    );
    let out = std::process::Command::new(script)
        .arg(&report)
        .arg(node.base.trim_end_matches("/client/v4"))
        .env("LATCHKEY_LEAK_URL", "https://git.example.com/r/commit/abc")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("reported 1 latchkey secret"));
    assert_eq!(verify(&node, &leaked).await, 401);
    let (status, token) = crate::process::call(
        reqwest::Method::GET,
        &format!("{}/user/tokens/{id}", node.base),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(token["result"]["exposure"]["source"], "gitleaks");
    assert_eq!(
        token["result"]["exposure"]["url"],
        "https://git.example.com/r/commit/abc"
    );
    node.kill();
}

/// GitHub sends alerts in batches: one of 100 matches is verified and revoked in one request
/// (the time is printed, for docs/leaks.md; not asserted).
#[tokio::test]
async fn an_alert_of_100_matches_revokes_each_token() {
    let limits = Limits {
        user_token_quota: 200,
        ..Limits::default()
    };
    let (app, key, _, _dir) = app_with_keys(limits).await;
    let mut secrets = Vec::new();
    for _ in 0..100 {
        secrets.push(app.create_with(Family::User, API_TOKENS_READ).await.1);
    }
    let matches: Vec<Value> = secrets
        .iter()
        .map(|s| json!({"token": s, "type": "latchkey_user_token", "url": "https://github.com/o/r", "source": "content"}))
        .collect();
    let body = Value::from(matches).to_string();
    let started = std::time::Instant::now();
    let answer = alert(
        &app,
        &body,
        Some("current"),
        Some(&sign(&key, body.as_bytes())),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let labels = answer.body.as_array().unwrap();
    assert_eq!(labels.len(), 100);
    assert!(labels.iter().all(|f| f["label"] == "true_positive"));
    // A few verifies (more would meet the failed-authentication limit), and every token's
    // exposure in the list.
    for secret in &secrets[..5] {
        assert_eq!(verify_status(&app, secret).await, 401);
    }
    let mut exposed = 0;
    for page in 1..=3 {
        let path = format!("/client/v4/user/tokens?per_page=50&page={page}");
        let listed = app.get(&path, app.admin_token()).await;
        exposed += listed
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["exposure"].is_object())
            .count();
    }
    assert_eq!(exposed, 100);
    println!(
        "an alert of 100 matches: verified and revoked in {} ms",
        took.as_millis()
    );
}

/// A real SMTP server for a test: Python's aiosmtpd, which prints each message it receives.
/// scripts/test installs it and names its Python in `LATCHKEY_TEST_SMTPD` (and sets
/// `LATCHKEY_REQUIRE_SMTPD=1`, so that a missing server fails the run instead of skipping).
struct Smtpd {
    child: std::process::Child,
    out: std::path::PathBuf,
    port: u16,
}

impl Smtpd {
    fn start(dir: &std::path::Path) -> Option<Smtpd> {
        let python = match std::env::var("LATCHKEY_TEST_SMTPD") {
            Ok(python) => python,
            Err(_) if std::env::var_os("LATCHKEY_REQUIRE_SMTPD").is_some() => {
                panic!("LATCHKEY_TEST_SMTPD must name a Python with aiosmtpd (scripts/test installs it)")
            }
            Err(_) => {
                eprintln!("skipped: set LATCHKEY_TEST_SMTPD to a Python with aiosmtpd (scripts/test does)");
                return None;
            }
        };
        let port = crate::process::free_port();
        let out = dir.join("smtpd.out");
        let child = std::process::Command::new(&python)
            .args([
                "-u",
                "-m",
                "aiosmtpd",
                "-n",
                "-c",
                "aiosmtpd.handlers.Debugging",
            ])
            .arg("-l")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd with {python}: {e}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "aiosmtpd did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(Smtpd { child, out, port })
    }

    /// What it received, once it holds `count` messages (waiting up to 15 s).
    async fn messages(&self, count: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            if text
                .matches("---------- MESSAGE FOLLOWS ----------")
                .count()
                >= count
            {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{count} messages did not arrive: {text}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn mailer(port: u16) -> Option<latchkey_server::mail::Mailer> {
    latchkey_server::mail::Mailer::new(&latchkey_server::mail::SmtpSettings {
        url: Some(format!("smtp://127.0.0.1:{port}")),
        from: Some("latchkey <latchkey@example.com>".into()),
        password_file: None,
    })
    .unwrap()
}

#[tokio::test]
async fn the_owner_is_told_by_email_where_the_secret_was_found_and_how_to_roll_it() {
    let dir = tempfile::tempdir().unwrap();
    let Some(smtpd) = Smtpd::start(dir.path()) else {
        return;
    };
    let (mut app, _, _, _keys) = app_with_keys(Limits::default()).await;
    app.state = app.state.clone().with_mailer(mailer(smtpd.port));
    let (user_id, user_secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let (account_id, account_secret) = app
        .create_with(Family::Account, ACCOUNT_API_TOKENS_READ)
        .await;
    let report = json!({"secrets": [user_secret, account_secret], "source": "gitleaks", "url": "https://ci.example.com/job/9"});
    let started = std::time::Instant::now();
    app.call(Method::POST, "/latchkey/v1/leaks", None, Some(report))
        .await
        .ok();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the answer does not wait for the mail"
    );
    assert_eq!(verify_status(&app, &user_secret).await, 401);

    // The body is quoted-printable (lettre's choice for long lines): undo its soft breaks.
    let mail = smtpd
        .messages(2)
        .await
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=");
    assert_eq!(mail.matches("To: admin@example.com").count(), 2, "{mail}");
    assert!(
        mail.contains("From: latchkey <latchkey@example.com>"),
        "{mail}"
    );
    assert!(mail.contains("Subject: latchkey: the token"), "{mail}");
    for id in [&user_id, &account_id] {
        assert!(mail.contains(id.as_str()), "{id}: {mail}");
    }
    assert!(
        mail.contains("https://ci.example.com/job/9") && mail.contains("gitleaks"),
        "{mail}"
    );
    assert!(
        mail.contains(&format!("latchkey tokens roll {user_id}")),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "latchkey tokens roll {account_id} --account {}",
            app.account_id()
        )),
        "{mail}"
    );
    assert!(mail.contains("of the account Acme"), "{mail}");
    for secret in [&user_secret, &account_secret] {
        assert!(!mail.contains(&secret[5..]), "a secret in the mail");
    }
}

#[tokio::test]
async fn a_mail_that_cannot_be_sent_never_undoes_the_revocation() {
    let (mut app, _, _, _keys) = app_with_keys(Limits::default()).await;
    // Nothing listens there.
    app.state = app
        .state
        .clone()
        .with_mailer(mailer(crate::process::free_port()));
    let (_, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let report = json!({"secrets": [secret]});
    app.call(Method::POST, "/latchkey/v1/leaks", None, Some(report))
        .await
        .ok();
    assert_eq!(verify_status(&app, &secret).await, 401);
}
