//! The `latchkey` binary: bootstrap, users and accounts, and a first `serve`.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::pending_files;

const LATCHKEY: &str = env!("CARGO_BIN_EXE_latchkey");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(LATCHKEY).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn bootstrap_users_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cli.db").display());

    let (ok, out, err) = run(&["bootstrap", "--database", &db, "--email", "ops@example.com"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "one JSON object: {out}");
    let boot: Value = serde_json::from_str(&out).unwrap();
    for key in ["user_id", "account_id", "token_id"] {
        assert_eq!(boot[key].as_str().unwrap().len(), 32, "{key}");
    }
    assert!(boot["token"].as_str().unwrap().starts_with("cfut_"));
    // The same email again is refused with a clear message; a default email is fresh.
    let (ok, _, err) = run(&["bootstrap", "--database", &db, "--email", "ops@example.com"]);
    assert!(!ok && err.contains("ops@example.com exists"), "{err}");
    let (ok, out, _) = run(&["bootstrap", "--database", &db]);
    assert!(ok);
    assert_ne!(
        serde_json::from_str::<Value>(&out).unwrap()["user_id"],
        boot["user_id"]
    );

    let (ok, out, _) = run(&[
        "users",
        "add",
        "--email",
        "dev@example.com",
        "--database",
        &db,
    ]);
    assert!(ok);
    let user: Value = serde_json::from_str(&out).unwrap();
    let user_id = user["id"].as_str().unwrap();
    let (ok, _, err) = run(&["users", "add", "--email", "not an email", "--database", &db]);
    assert!(!ok && err.contains("--email"), "{err}");
    let (_, out, _) = run(&["users", "list", "--database", &db]);
    assert_eq!(out.lines().count(), 3);
    assert!(out.contains("dev@example.com"));

    let (ok, out, _) = run(&["accounts", "add", "--name", "Team", "--database", &db]);
    assert!(ok);
    let account: Value = serde_json::from_str(&out).unwrap();
    let account_id = account["id"].as_str().unwrap();
    let membership = [
        "--account",
        account_id,
        "--user",
        user_id,
        "--database",
        &db,
    ];
    let (ok, _, err) = run(&[&["accounts", "add-member"], &membership[..]].concat());
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[&["accounts", "add-member"], &membership[..]].concat());
    assert!(!ok && err.contains("already a member"), "{err}");
    let (_, out, _) = run(&[
        "accounts",
        "members",
        "--account",
        account_id,
        "--database",
        &db,
    ]);
    assert!(out.contains("dev@example.com"));
    let (ok, _, _) = run(&[&["accounts", "remove-member"], &membership[..]].concat());
    assert!(ok);
    let (_, out, _) = run(&["accounts", "list", "--database", &db]);
    assert_eq!(out.lines().count(), 3);
    let (ok, _, err) = run(&[
        "accounts",
        "add-member",
        "--account",
        "nope",
        "--user",
        user_id,
        "--database",
        &db,
    ]);
    assert!(!ok && err.contains("--account"), "{err}");
    let (ok, _, err) = run(&["migrate", "--database", &db]);
    assert!(ok, "{err}");
}

#[test]
fn first_serve_writes_a_private_admin_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = Command::new("sh")
        .args(["-c", "umask 022 && exec \"$0\" \"$@\"", LATCHKEY])
        .args(["serve", "--listen", &listen])
        .current_dir(dir.path())
        .env_remove("LATCHKEY_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();

    let token_file = dir.path().join("latchkey-admin-token");
    let deadline = Instant::now() + Duration::from_secs(20);
    let secret = loop {
        let up = std::net::TcpStream::connect(&listen).is_ok();
        if up && token_file.exists() {
            break std::fs::read_to_string(&token_file)
                .unwrap()
                .trim()
                .to_owned();
        }
        assert!(Instant::now() < deadline, "latchkey did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        dir.path().join("latchkey.db").exists(),
        "default database beside the cwd"
    );
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The database and SQLite's files beside it hold emails, addresses and secret hashes:
    // private too, whatever the umask (022 here, as usual).
    for file in ["latchkey.db", "latchkey.db-wal", "latchkey.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is {:o}", mode & 0o777);
    }

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{listen}/client/v4/user/tokens/verify"))
            .bearer_auth(&secret)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "latchkey did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(
        log.contains("latchkey-admin-token"),
        "the log names the file: {log}"
    );
    assert!(!log.contains(&secret), "the secret never reaches the log");
    assert!(log.contains("latchkey stopped"));

    // Exactly one user was created, and the file holds its token.
    let db = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let (ok, out, _) = run(&["users", "list", "--database", &db]);
    assert!(ok);
    assert_eq!(out.lines().count(), 1);
    assert!(out.contains("admin@latchkey.local"));

    // Issue 25: a second database in the same directory would write the same default token
    // file. It stops before creating the database, names the file and the way out.
    let out = Command::new(LATCHKEY)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database", "sqlite://other.db"])
        .current_dir(dir.path())
        .env_remove("LATCHKEY_DATABASE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second first serve started");
    assert!(
        err.contains("latchkey-admin-token") && err.contains("--admin-token-file"),
        "{err}"
    );
    assert!(
        !dir.path().join("other.db").exists(),
        "the database was created before the refusal"
    );
    let kept = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(kept.trim(), secret, "the first database's secret is kept");
}

#[test]
fn serve_refuses_a_bad_permission_groups_file_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("groups.toml");
    std::fs::write(
        &file,
        "[[group]]\nid = \"82e64a83756745bbbb1c9c2701bf816b\"\nname = \"Mine\"\nscopes = [\"com.cloudflare.api.account\"]\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("x.db").display());
    let out = Command::new(LATCHKEY)
        .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
        .arg("--permission-groups")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("groups.toml")
            && err.contains("group #1")
            && err.contains("already used by \"DNS Read\""),
        "{err}"
    );
}

/// Issue 24: the first admin's secret went to a predictable `.pending` name opened with
/// create+truncate, and an existing token file (another database's only admin secret, or a
/// link planted there) was overwritten.
#[test]
fn an_existing_token_file_or_link_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("latchkey-admin-token");
    let target = dir.path().join("elsewhere");
    for planted in ["file", "link"] {
        std::fs::remove_file(&token_file).ok();
        if planted == "file" {
            std::fs::write(&token_file, "the other database's secret\n").unwrap();
        } else {
            std::os::unix::fs::symlink(&target, &token_file).unwrap();
        }
        let db = format!(
            "sqlite://{}",
            dir.path().join(format!("{planted}.db")).display()
        );
        let out = Command::new(LATCHKEY)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &db])
            .args(["--admin-token-file", token_file.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{planted}: serve started");
        assert!(
            err.contains("latchkey-admin-token") && err.contains("--admin-token-file"),
            "{planted}: {err}"
        );
        assert!(!target.exists(), "nothing was written through the link");
        if planted == "file" {
            let kept = std::fs::read_to_string(&token_file).unwrap();
            assert_eq!(kept, "the other database's secret\n");
        }
        assert_eq!(pending_files(dir.path()), 0, "no pending file left");
        assert!(
            !dir.path().join(format!("{planted}.db")).exists(),
            "{planted}: the refusal comes before the database is created"
        );
    }
}

/// Issue 25: an operator whose only admin token is gone gets a new one with `recover`, on the
/// database while the server runs; the token manages the user's and its accounts' tokens,
/// and the audit log says it came from an operator's recovery.
#[tokio::test]
async fn recover_lets_a_locked_out_user_back_in() {
    use crate::process::{call, verify, Node};
    use reqwest::Method;

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("locked.db").display());
    let (ok, out, err) = run(&["bootstrap", "--database", &db, "--email", "ops@example.com"]);
    assert!(ok, "{err}");
    let boot: Value = serde_json::from_str(&out).unwrap();
    let (admin, account) = (boot["token"].as_str().unwrap(), &boot["account_id"]);
    let node = Node::start(&db, dir.path(), "locked");
    let own = format!(
        "{}/user/tokens/{}",
        node.base,
        boot["token_id"].as_str().unwrap()
    );
    let (status, body) = call(Method::DELETE, &own, admin, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(verify(&node, admin).await, 401, "locked out");

    let file = dir.path().join("recovery");
    let file_arg = file.to_str().unwrap();
    let args = [
        "recover",
        "--database",
        &db,
        "--email",
        "ops@example.com",
        "--output",
        file_arg,
    ];
    let (ok, out, err) = run(&args);
    assert!(ok, "{err}");
    let recovered: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(recovered["user_id"], boot["user_id"]);
    assert_eq!(recovered["account_ids"], serde_json::json!([account]));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let secret = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert!(
        !out.contains(&secret) && !err.contains(&secret),
        "the secret is only in the file"
    );
    assert!(err.contains("recovery"), "says where the secret is: {err}");

    assert_eq!(verify(&node, &secret).await, 200);
    let (status, body) = call(
        Method::GET,
        &format!("{}/user/tokens", node.base),
        &secret,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let account_tokens = format!(
        "{}/accounts/{}/tokens",
        node.base,
        account.as_str().unwrap()
    );
    let (status, body) = call(Method::GET, &account_tokens, &secret, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        Method::GET,
        &format!("{}/user/tokens/verify", node.base),
        &secret,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body["result"]["expires_on"].is_string(),
        "a recovery token expires: {body}"
    );
    let (status, body) = call(
        Method::GET,
        &format!("{}/user/audit_logs", node.base),
        &secret,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let entry = body["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["id"] == recovered["token_id"])
        .unwrap_or_else(|| panic!("no audit entry for the recovery: {body:#}"));
    assert_eq!(entry["metadata"]["via"], "operator recovery", "{entry}");
    assert_eq!(entry["interface"], "CLI");

    // The file is never overwritten, and an unknown email says who exists.
    let (ok, _, err) = run(&args);
    assert!(!ok);
    assert!(err.contains(file_arg) && err.contains("--output"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), secret);
    let other = dir.path().join("other");
    let (ok, _, err) = run(&[
        "recover",
        "--database",
        &db,
        "--email",
        "nobody@example.com",
        "--output",
        other.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains("nobody@example.com") && err.contains("users list"),
        "{err}"
    );
    assert!(!other.exists());
    assert_eq!(pending_files(dir.path()), 0);
    let (ok, out, err) = run(&["audit", "verify", "--database", &db]);
    assert!(ok, "{out}{err}");
    node.kill();
}

/// Mistakes a new user makes with `serve`'s address get a message that shows the right form.
#[test]
fn a_port_alone_or_a_port_flag_is_told_the_form_of_listen() {
    let (ok, _, err) = run(&["serve", "--listen", "18204"]);
    assert!(!ok);
    assert!(err.contains("127.0.0.1:18204"), "{err}");
    let (ok, _, err) = run(&["serve", "--listen", "localhost"]);
    assert!(!ok);
    assert!(err.contains("127.0.0.1:8787 or [::1]:8787"), "{err}");
    let (ok, _, err) = run(&["serve", "--port", "8787"]);
    assert!(!ok);
    assert!(err.contains("--listen 127.0.0.1:8787"), "{err}");
}

/// A database that cannot be opened is named with the reason, in one paragraph without a
/// stack trace.
#[test]
fn database_errors_say_what_is_wrong() {
    let missing = Command::new(LATCHKEY)
        .args(["migrate", "--database", "sqlite:///no/such/dir/latchkey.db"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(!missing.status.success());
    assert!(
        err.contains("the directory /no/such/dir of the SQLite database does not exist"),
        "{err}"
    );
    assert!(
        !err.contains("stack backtrace") && !err.contains("Stack backtrace"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one paragraph: {err}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://latchkey@127.0.0.1:{port}/latchkey");
    let (ok, _, err) = run(&["migrate", "--database", &url]);
    assert!(!ok);
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "{err}");
}
