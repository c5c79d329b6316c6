//! Crash safety: `latchkey serve` killed with SIGKILL at random moments while eight clients
//! create, roll, update and delete tokens, then restarted on the same database, loses
//! nothing it acknowledged:
//! - every acknowledged create exists, with its last acknowledged name, and its last
//!   acknowledged secret verifies;
//! - after an acknowledged roll, every earlier secret is refused;
//! - every acknowledged delete stays deleted (404, and its secret is refused);
//! - on SQLite, `PRAGMA integrity_check` says `ok` at the end.
//!
//! A write whose answer never came (the process died first) may or may not have happened;
//! its token is left out of the checks from then on. Each round prints its counts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};

use crate::process::{bootstrap, Node};

const ROUNDS: usize = 20;
const WORKERS: usize = 8;

/// What the clients were told, token by token.
#[derive(Default)]
struct Ledger {
    /// Live tokens: id -> what was last acknowledged.
    live: HashMap<String, Known>,
    /// Deleted tokens: id -> their last secret.
    deleted: HashMap<String, String>,
    /// Tokens with an operation in flight (not to be touched by another client).
    busy: std::collections::HashSet<String>,
    /// Acknowledged writes so far.
    acknowledged: u64,
    /// Writes whose answer never came.
    unanswered: u64,
    /// Sequence for names.
    next: u64,
}

#[derive(Clone)]
struct Known {
    name: String,
    secret: String,
    old_secrets: Vec<String>,
}

enum Op {
    Create,
    Roll(String),
    Update(String),
    Delete(String),
}

struct Target {
    client: reqwest::Client,
    base: String,
    admin: String,
    user: String,
}

impl Target {
    fn body(&self, name: &str) -> Value {
        json!({
            "name": name,
            "policies": [{
                "effect": "allow",
                "resources": {format!("com.cloudflare.api.user.{}", self.user): "*"},
                "permission_groups": [{"id": "0cc3a61731504c89b99ec1be78b77aa0"}]
            }]
        })
    }

    /// `Some((status, body))`, or `None` when no answer came.
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.ok()?;
        let status = response.status().as_u16();
        let body = response.json().await.ok()?;
        Some((status, body))
    }
}

/// One client: random writes until the server stops answering.
async fn worker(target: Arc<Target>, ledger: Arc<Mutex<Ledger>>) {
    loop {
        let op = {
            let mut ledger = ledger.lock().unwrap();
            let mut rng = rand::rng();
            let idle: Vec<String> = ledger
                .live
                .keys()
                .filter(|id| !ledger.busy.contains(*id))
                .cloned()
                .collect();
            let op = if idle.len() < 10 || rng.random_bool(0.3) {
                Op::Create
            } else {
                let id = idle[rng.random_range(0..idle.len())].clone();
                ledger.busy.insert(id.clone());
                match rng.random_range(0..3) {
                    0 => Op::Roll(id),
                    1 => Op::Update(id),
                    _ => Op::Delete(id),
                }
            };
            ledger.next += 1;
            op
        };
        let (answered, id) = match op {
            Op::Create => {
                let name = format!("crash-{}", ledger.lock().unwrap().next);
                let answer = target
                    .send(Method::POST, "/user/tokens", Some(target.body(&name)))
                    .await;
                let mut ledger = ledger.lock().unwrap();
                match answer {
                    Some((200, body)) => {
                        let id = body["result"]["id"].as_str().unwrap().to_owned();
                        let secret = body["result"]["value"].as_str().unwrap().to_owned();
                        ledger.live.insert(
                            id,
                            Known {
                                name,
                                secret,
                                old_secrets: Vec::new(),
                            },
                        );
                        ledger.acknowledged += 1;
                        continue;
                    }
                    Some((status, body)) => panic!("create answered {status}: {body}"),
                    None => {
                        ledger.unanswered += 1;
                        return;
                    }
                }
            }
            Op::Roll(id) => {
                let path = format!("/user/tokens/{id}/value");
                let answer = target.send(Method::PUT, &path, Some(json!({}))).await;
                let mut ledger = ledger.lock().unwrap();
                if let Some((200, body)) = &answer {
                    let known = ledger.live.get_mut(&id).unwrap();
                    let old = std::mem::replace(
                        &mut known.secret,
                        body["result"].as_str().unwrap().to_owned(),
                    );
                    known.old_secrets.push(old);
                }
                (answer, id)
            }
            Op::Update(id) => {
                let name = format!("renamed-{}", ledger.lock().unwrap().next);
                let path = format!("/user/tokens/{id}");
                let answer = target
                    .send(Method::PUT, &path, Some(target.body(&name)))
                    .await;
                let mut ledger = ledger.lock().unwrap();
                if let Some((200, _)) = &answer {
                    ledger.live.get_mut(&id).unwrap().name = name;
                }
                (answer, id)
            }
            Op::Delete(id) => {
                let path = format!("/user/tokens/{id}");
                let answer = target.send(Method::DELETE, &path, None).await;
                let mut ledger = ledger.lock().unwrap();
                if let Some((200, _)) = &answer {
                    let known = ledger.live.remove(&id).unwrap();
                    ledger.deleted.insert(id.clone(), known.secret);
                }
                (answer, id)
            }
        };
        let mut ledger = ledger.lock().unwrap();
        ledger.busy.remove(&id);
        match answered {
            Some((200, _)) => ledger.acknowledged += 1,
            Some((status, body)) => panic!("a write on {id} answered {status}: {body}"),
            None => {
                // It may or may not have happened: stop checking this token.
                ledger.unanswered += 1;
                ledger.live.remove(&id);
                return;
            }
        }
    }
}

/// Checks every acknowledged fact against a fresh process; returns how many facts it
/// checked and a description of each one lost.
async fn check(
    target: &Target,
    live: &HashMap<String, Known>,
    deleted: &HashMap<String, String>,
) -> (u64, Vec<String>) {
    let verify = |secret: String| {
        let client = target.client.clone();
        let url = format!("{}/user/tokens/verify", target.base);
        async move {
            client
                .get(url)
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut checked = 0;
    let mut lost = Vec::new();
    for (id, known) in live {
        let (status, body) = target
            .send(Method::GET, &format!("/user/tokens/{id}"), None)
            .await
            .expect("the restarted server answers");
        checked += 1;
        if status != 200 || body["result"]["name"] != known.name.as_str() {
            lost.push(format!(
                "{id}: expected {:?}, got {status} {}",
                known.name, body["result"]["name"]
            ));
        }
        checked += 1;
        if verify(known.secret.clone()).await != 200 {
            lost.push(format!("{id}: its last secret no longer verifies"));
        }
        for old in &known.old_secrets {
            checked += 1;
            if verify(old.clone()).await != 401 {
                lost.push(format!("{id}: a rolled-away secret still verifies"));
            }
        }
    }
    for (id, secret) in deleted {
        let (status, _) = target
            .send(Method::GET, &format!("/user/tokens/{id}"), None)
            .await
            .expect("the restarted server answers");
        checked += 2;
        if status != 404 {
            lost.push(format!("{id}: deleted, but GET answers {status}"));
        }
        if verify(secret.clone()).await != 401 {
            lost.push(format!("{id}: deleted, but its secret still verifies"));
        }
    }
    (checked, lost)
}

async fn kill_and_restart(backend: &str, database: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (admin, user) = bootstrap(database);
    // The checks try rolled-away secrets on purpose, which the failed-authentication
    // limit would rightly refuse after a few.
    let args = [
        "--user-token-quota",
        "100000",
        "--rate-limit",
        "0",
        "--auth-failure-limit",
        "0",
    ];
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let client = reqwest::Client::new();
    let mut node = Node::start_with(database, dir.path(), "crash-0", &args);
    let mut total_checked = 0;
    let mut lost = Vec::new();
    for round in 1..=ROUNDS {
        let target = Arc::new(Target {
            client: client.clone(),
            base: node.base.clone(),
            admin: admin.clone(),
            user: user.clone(),
        });
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(worker(Arc::clone(&target), Arc::clone(&ledger))))
            .collect();
        let after = Duration::from_millis(rand::rng().random_range(50..400));
        tokio::time::sleep(after).await;
        node.kill();
        for worker in workers {
            worker.await.expect("a client failed");
        }
        node = Node::start_with(database, dir.path(), &format!("crash-{round}"), &args);
        let target = Target {
            base: node.base.clone(),
            ..Arc::into_inner(target).unwrap()
        };
        let (live, deleted, acknowledged, unanswered) = {
            let ledger = ledger.lock().unwrap();
            let counts = (ledger.acknowledged, ledger.unanswered);
            (
                ledger.live.clone(),
                ledger.deleted.clone(),
                counts.0,
                counts.1,
            )
        };
        let (checked, round_lost) = check(&target, &live, &deleted).await;
        total_checked += checked;
        println!(
            "crash safety ({backend}) round {round}: killed after {} ms; acknowledged \
             {acknowledged} writes so far, {unanswered} unanswered; checked {checked} facts; \
             lost {}",
            after.as_millis(),
            round_lost.len()
        );
        lost.extend(
            round_lost
                .into_iter()
                .map(|l| format!("round {round}: {l}")),
        );
    }
    let ledger = ledger.lock().unwrap();
    println!(
        "crash safety ({backend}): {ROUNDS} SIGKILLs; acknowledged {}; checked {total_checked}; \
         lost {}",
        ledger.acknowledged,
        lost.len()
    );
    assert!(
        ledger.acknowledged > 100 * ROUNDS as u64 / 10,
        "too few writes to prove anything"
    );
    assert!(
        lost.is_empty(),
        "acknowledged writes lost:\n{}",
        lost.join("\n")
    );
    drop(node);
    // Every write was audited in its own transaction: the chain survived the kills whole.
    let verified = std::process::Command::new(crate::process::LATCHKEY)
        .args(["audit", "verify", "--database", database])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stdout);
    println!("crash safety ({backend}): {}", said.trim());
    assert!(
        verified.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_without_losing_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crash.db");
    let database = format!("sqlite://{}", file.display());
    kill_and_restart("sqlite", &database).await;

    use sqlx::Connection;
    let mut connection = sqlx::SqliteConnection::connect(&database).await.unwrap();
    let (integrity,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    println!("crash safety (sqlite): PRAGMA integrity_check = {integrity}");
    assert_eq!(integrity, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survives_sigkill_without_losing_acknowledged_writes() {
    let Some(database) = latchkey_store::testing::fresh_postgres_database("crash").await else {
        return;
    };
    kill_and_restart("postgres", &database).await;
}
