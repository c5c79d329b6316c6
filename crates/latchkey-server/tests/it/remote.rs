//! `latchkey tokens ...` and `latchkey permission-groups list` against a running
//! `latchkey serve`: every subcommand, in both families, as a table and as JSON; the
//! token from each of its sources; errors as sentences with the Cloudflare code; shell
//! completions.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::process::{bootstrap_json, Node, LATCHKEY};

/// Runs `latchkey args...` against `node` with `token` in `token_var`.
fn run_with<S: AsRef<str>>(node: &Node, token_var: &str, token: &str, args: &[S]) -> Output {
    Command::new(LATCHKEY)
        .args(args.iter().map(AsRef::as_ref))
        .env("LATCHKEY_URL", &node.base)
        .env_remove("LATCHKEY_TOKEN")
        .env_remove("CLOUDFLARE_API_TOKEN")
        .env_remove("RUST_BACKTRACE")
        .env(token_var, token)
        .output()
        .unwrap()
}

/// Runs it with `LATCHKEY_TOKEN`; asserts success and returns standard output.
fn ok<S: AsRef<str>>(node: &Node, token: &str, args: &[S]) -> String {
    let out = run_with(node, "LATCHKEY_TOKEN", token, args);
    let shown: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    assert!(
        out.status.success(),
        "{shown:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json<S: AsRef<str>>(node: &Node, token: &str, args: &[S]) -> Value {
    let mut args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    args.push("--json");
    serde_json::from_str(&ok(node, token, &args)).unwrap()
}

fn start(dir: &Path) -> (Node, Value) {
    let database = format!("sqlite://{}", dir.join("remote.db").display());
    let admin = bootstrap_json(&database);
    (Node::start(&database, dir, "remote"), admin)
}

#[tokio::test]
async fn every_token_command_in_both_families() {
    let dir = tempfile::tempdir().unwrap();
    let (node, admin) = start(dir.path());
    let admin_secret = admin["token"].as_str().unwrap();
    let account = admin["account_id"].as_str().unwrap();
    for family in [vec![], vec!["--account", account]] {
        let with = |args: &[&str]| -> Vec<String> {
            args.iter()
                .chain(family.iter())
                .map(|a| (*a).to_owned())
                .collect()
        };
        let account_key = format!("com.cloudflare.api.account.{account}");

        let created = json(
            &node,
            admin_secret,
            &with(&[
                "tokens",
                "create",
                "--name",
                "cli made",
                "--allow",
                "Account Settings Read",
                "--resource",
                &account_key,
                "--allow-cidr",
                "127.0.0.0/8",
                "--expires-on",
                "2031-02-03T04:05:06Z",
            ]),
        );
        let id = created["id"].as_str().unwrap().to_owned();
        let secret = created["value"].as_str().unwrap().to_owned();
        assert_eq!(created["name"], "cli made");
        assert_eq!(created["expires_on"], "2031-02-03T04:05:06Z");
        assert_eq!(created["condition"]["request_ip"]["in"][0], "127.0.0.0/8");
        assert_eq!(
            created["policies"][0]["permission_groups"][0]["name"],
            "Account Settings Read"
        );

        // The table names it; JSON lists it with everything else.
        let table = ok(&node, admin_secret, &with(&["tokens", "list"]));
        assert!(table.contains("cli made") && table.contains(&id), "{table}");
        let listed = json(&node, admin_secret, &with(&["tokens", "list"]));
        assert!(listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id.as_str()));
        let shown = ok(&node, admin_secret, &with(&["tokens", "get", &id]));
        assert!(shown.contains("allow Account Settings Read on"), "{shown}");

        // The new token verifies itself, from its family.
        let verified = json(&node, &secret, &with(&["tokens", "verify"]));
        assert_eq!(verified["id"], id.as_str());

        // Update changes only what is given.
        let updated = json(
            &node,
            admin_secret,
            &with(&[
                "tokens", "update", &id, "--status", "disabled", "--name", "renamed",
            ]),
        );
        assert_eq!(updated["status"], "disabled");
        assert_eq!(updated["name"], "renamed");
        assert_eq!(updated["expires_on"], "2031-02-03T04:05:06Z");
        assert_eq!(
            updated["policies"][0]["permission_groups"][0]["name"],
            "Account Settings Read"
        );
        let refused = run_with(
            &node,
            "LATCHKEY_TOKEN",
            &secret,
            &with(&["tokens", "verify"]),
        );
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("1000"));
        ok(
            &node,
            admin_secret,
            &with(&["tokens", "update", &id, "--status", "active"]),
        );

        // Roll: the old secret stops working, the printed one works.
        let rolled = ok(&node, admin_secret, &with(&["tokens", "roll", &id]));
        let new_secret = rolled.trim().strip_prefix("secret: ").unwrap().to_owned();
        assert_ne!(new_secret, secret);
        assert!(!run_with(
            &node,
            "LATCHKEY_TOKEN",
            &secret,
            &with(&["tokens", "verify"])
        )
        .status
        .success());
        ok(&node, &new_secret, &with(&["tokens", "verify"]));

        ok(&node, admin_secret, &with(&["tokens", "delete", &id]));
        let gone = run_with(
            &node,
            "LATCHKEY_TOKEN",
            admin_secret,
            &with(&["tokens", "get", &id]),
        );
        assert!(!gone.status.success());
        // The wire says 404 7003 "Could not route to ..."; the CLI says what it means.
        let stderr = String::from_utf8_lossy(&gone.stderr);
        assert!(
            stderr.starts_with(&format!("latchkey: no token {id}")),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn permission_groups_tokens_from_every_source_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (node, admin) = start(dir.path());
    let admin_secret = admin["token"].as_str().unwrap();

    let groups = json(
        &node,
        admin_secret,
        &[
            "permission-groups",
            "list",
            "--scope",
            "com.cloudflare.api.account.zone",
        ],
    );
    let groups = groups.as_array().unwrap();
    assert!(groups.len() > 10);
    assert!(groups
        .iter()
        .all(|g| g["scopes"][0] == "com.cloudflare.api.account.zone"));
    let table = ok(
        &node,
        admin_secret,
        &["permission-groups", "list", "--name", "DNS Read"],
    );
    assert!(
        table.contains("DNS Read") && table.contains("dns_and_zones"),
        "{table}"
    );

    // CLOUDFLARE_API_TOKEN when LATCHKEY_TOKEN is unset, then --token-file.
    let out = run_with(
        &node,
        "CLOUDFLARE_API_TOKEN",
        admin_secret,
        &["tokens", "verify"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{admin_secret}\n")).unwrap();
    let out = run_with(
        &node,
        "UNRELATED",
        "",
        &["tokens", "verify", "--token-file", file.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_with(&node, "UNRELATED", "", &["tokens", "list"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("LATCHKEY_TOKEN"));

    // The API's refusal, as a sentence with its code; no secret in it.
    let out = run_with(
        &node,
        "LATCHKEY_TOKEN",
        admin_secret,
        &[
            "tokens",
            "create",
            "--name",
            "bad",
            "--allow",
            "DNS Read",
            "--resource",
            "not-a-key",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("HTTP 400") && stderr.contains("1007"),
        "{stderr}"
    );
    assert!(!stderr.contains(admin_secret));
    let out = run_with(
        &node,
        "LATCHKEY_TOKEN",
        admin_secret,
        &[
            "tokens",
            "create",
            "--name",
            "bad",
            "--allow",
            "No Such Group",
            "--resource",
            "x",
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no permission group named"));

    // Issue 25: a token that does not exist is "no token <id>", not the wire's "Could not
    // route to ...".
    let missing = "0123456789abcdef0123456789abcdef";
    for command in ["get", "roll", "delete"] {
        let out = run_with(
            &node,
            "LATCHKEY_TOKEN",
            admin_secret,
            &["tokens", command, missing],
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim(),
            format!("latchkey: no token {missing}"),
            "{command}"
        );
    }

    // A server that cannot be reached: which URL was tried, and how to give another; one
    // paragraph even with RUST_BACKTRACE set.
    let closed = format!("http://127.0.0.1:{}/client/v4", crate::process::free_port());
    for args in [&["tokens", "list"][..], &["permission-groups", "list"][..]] {
        let out = Command::new(LATCHKEY)
            .args(args)
            .env("LATCHKEY_URL", &closed)
            .env("LATCHKEY_TOKEN", admin_secret)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&closed), "{stderr}");
        assert!(
            stderr.contains("--url") && stderr.contains("LATCHKEY_URL"),
            "{stderr}"
        );
        assert!(stderr.to_lowercase().contains("refused"), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn completions_cover_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(LATCHKEY)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["tokens", "permission-groups", "roll", "account"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
}
