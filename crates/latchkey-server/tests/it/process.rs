//! `latchkey serve` as a separate process, and calls to it over HTTP.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const LATCHKEY: &str = env!("CARGO_BIN_EXE_latchkey");

/// A running `latchkey serve`, killed when dropped.
pub struct Node {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl Node {
    /// Starts a node on `database` writing a first admin token (if it creates one) to
    /// `dir/<name>-admin-token`; returns once it listens.
    pub fn start(database: &str, dir: &Path, name: &str) -> Node {
        Node::start_with(database, dir, name, &[])
    }

    /// [`Node::start`] with more arguments for `serve`.
    pub fn start_with(database: &str, dir: &Path, name: &str, args: &[&str]) -> Node {
        Node::start_logging(database, dir, name, args, "info")
    }

    /// [`Node::start_with`] at log level `rust_log` (`RUST_LOG`).
    pub fn start_logging(
        database: &str,
        dir: &Path,
        name: &str,
        args: &[&str],
        rust_log: &str,
    ) -> Node {
        Node::spawn(database, dir, name, args, rust_log, None)
    }

    /// [`Node::start_with`] in a process whose file-descriptor limit (soft and hard) is
    /// `descriptors`.
    pub fn start_with_descriptors(
        database: &str,
        dir: &Path,
        name: &str,
        args: &[&str],
        descriptors: u64,
    ) -> Node {
        Node::spawn(database, dir, name, args, "info", Some(descriptors))
    }

    fn spawn(
        database: &str,
        dir: &Path,
        name: &str,
        args: &[&str],
        rust_log: &str,
        descriptors: Option<u64>,
    ) -> Node {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(LATCHKEY);
        if let Some(limit) = descriptors {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is a plain system call, safe between fork and exec.
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit));
            }
        }
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--database", database])
            .args(args)
            .arg("--admin-token-file")
            .arg(dir.join(format!("{name}-admin-token")))
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let node = Node {
            child,
            base: format!("http://127.0.0.1:{port}/client/v4"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "node {name} did not start: {}",
                node.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        node
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Node {
    /// Kills the process with SIGKILL: no shutdown, no flush, as a crash or power cut would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Node {
    /// Sends SIGTERM and waits (at most `limit`) for the process to exit: how long it took
    /// and whether it exited successfully.
    pub fn terminate(mut self, limit: Duration) -> (Duration, bool) {
        let start = Instant::now();
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (start.elapsed(), status.success());
            }
            assert!(
                start.elapsed() < limit,
                "still running {limit:?} after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        let authority = self.base.trim_start_matches("http://");
        authority.split(['/', ':']).nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// `latchkey bootstrap` on `database`: its JSON (`user_id`, `account_id`, `token_id`,
/// `token`).
pub fn bootstrap_json(database: &str) -> Value {
    let out = Command::new(LATCHKEY)
        .args(["bootstrap", "--database", database])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// How many first-admin `.pending` files are left in `dir`.
pub fn pending_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .to_string_lossy()
                .ends_with(".pending")
        })
        .count()
}

/// `latchkey bootstrap` on `database`: (admin secret, user id).
pub fn bootstrap(database: &str) -> (String, String) {
    let admin = bootstrap_json(database);
    (
        admin["token"].as_str().unwrap().to_owned(),
        admin["user_id"].as_str().unwrap().to_owned(),
    )
}

pub async fn call(
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, url)
        .bearer_auth(token)
        .timeout(Duration::from_secs(20));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, body)
}

pub async fn verify(node: &Node, secret: &str) -> u16 {
    let url = format!("{}/user/tokens/verify", node.base);
    call(reqwest::Method::GET, &url, secret, None).await.0
}

/// Creates a user token (read-only on the user) through `node`: (id, secret).
pub async fn create_token(node: &Node, admin: &str, user: &str, name: &str) -> (String, String) {
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{}/user/tokens", node.base),
        admin,
        Some(json!({
            "name": name,
            "policies": [{
                "effect": "allow",
                "resources": {format!("com.cloudflare.api.user.{user}"): "*"},
                "permission_groups": [{"id": "0cc3a61731504c89b99ec1be78b77aa0"}]
            }]
        })),
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    (
        body["result"]["id"].as_str().unwrap().to_owned(),
        body["result"]["value"].as_str().unwrap().to_owned(),
    )
}
