//! The request path in-process, without sockets: the time latchkey adds to an HTTP request
//! on top of hyper and the kernel. `cargo bench -p latchkey-bench --bench request_path`.
//!
//! - `bare`: the ceiling endpoint of `scripts/bench` ([`latchkey_bench::bare_router`]: reads
//!   `Authorization`, answers a verify-shaped envelope);
//! - `verify`: `GET /client/v4/user/tokens/verify` with a cached token, through latchkey's
//!   whole router (request id, metrics, rate limit, authentication, last use, answer);
//! - `verify over 10,000 tokens`: the same, presenting 10,000 cached tokens in turn;
//! - `authorize`: `POST /latchkey/v1/authorize` for a permission the token holds.
//!
//! Each request is built and sent with `oneshot`, as in the integration tests; the
//! difference between `verify` and `bare` is what `scripts/bench`'s ratio pays for.
//!
//! The `… on 2 threads` variants send the same request from two threads at once, each on its
//! own runtime, and report the time per request of the pair (wall time / requests). A write
//! every request makes to memory shared by all requests (a counter, a lock, a reference
//! count) costs little on one thread and a cache-line transfer between cores on two: this is
//! where such costs show, as they do under `scripts/bench`'s load.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_core::{
    AuditAction, AuditEvent, Clock, Owner, Secret, SecretKind, SystemClock, Token,
};
use latchkey_server::admin::create_admin;
use latchkey_server::{router, AppState, Limits};
use tower::ServiceExt;

fn request(method: &str, path: &str, secret: &str, body: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {secret}"))
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .expect("a valid request");
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    request
}

/// Tokens of the rotating variants, as in `scripts/bench`.
const ROTATING: usize = 10_000;

/// A request of one case: method, path, body, and the secrets presented in turn.
struct Case<'a> {
    name: &'static str,
    app: &'a Router,
    method: &'static str,
    path: &'static str,
    body: Option<&'a str>,
    secrets: &'a [String],
}

impl Case<'_> {
    /// Sends the case's request `count` times on `runtime`, starting at secret `first`.
    fn run(&self, runtime: &tokio::runtime::Runtime, first: usize, count: u64) {
        let mut next = first % self.secrets.len();
        for _ in 0..count {
            let secret = &self.secrets[next];
            next = (next + 1) % self.secrets.len();
            send(
                runtime,
                self.app,
                request(self.method, self.path, secret, self.body),
            );
        }
    }
}

fn request_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (app, admin, rotating) = runtime.block_on(async {
        let store = latchkey_store::open(&url).await.expect("the database");
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let now = clock.now();
        let admin = create_admin(store.as_ref(), "bench@example.com", "Bench", now)
            .await
            .expect("the first admin");
        let mut rotating = Vec::with_capacity(ROTATING);
        let mut tokens = Vec::with_capacity(ROTATING);
        for _ in 0..ROTATING {
            let secret = Secret::generate(SecretKind::User);
            tokens.push((
                Token::new(Owner::User(admin.user_id), "bench", now),
                secret.hash(),
            ));
            rotating.push(secret.expose().to_owned());
        }
        store
            .import_tokens(&tokens, &AuditEvent::new(AuditAction::TokensImport, now))
            .await
            .expect("the rotating tokens");
        let limits = Limits {
            rate_limit: u32::MAX,
            token_cache_size: 2 * ROTATING as u64,
            ..Limits::default()
        };
        (router(AppState::new(store, clock, limits)), admin, rotating)
    });
    let secret = [admin.secret.expose().to_owned()];
    let authorize = format!(
        r#"{{"permission_group":"Account API Tokens Read","resource":"com.cloudflare.api.account.{}"}}"#,
        admin.account_id
    );
    let bare = latchkey_bench::bare_router();
    let verify = "/client/v4/user/tokens/verify";
    let cases = [
        Case {
            name: "bare",
            app: &bare,
            method: "GET",
            path: verify,
            body: None,
            secrets: &secret,
        },
        Case {
            name: "verify",
            app: &app,
            method: "GET",
            path: verify,
            body: None,
            secrets: &secret,
        },
        Case {
            name: "verify over 10,000 tokens",
            app: &app,
            method: "GET",
            path: verify,
            body: None,
            secrets: &rotating,
        },
        Case {
            name: "authorize",
            app: &app,
            method: "POST",
            path: "/latchkey/v1/authorize",
            body: Some(&authorize),
            secrets: &secret,
        },
    ];

    let mut group = c.benchmark_group("request_path");
    for case in &cases {
        // Every token cached first, as in a service that has been running.
        case.run(&runtime, 0, case.secrets.len() as u64);
        group.bench_function(case.name, |b| {
            let mut first = 0;
            b.iter_custom(|iters| {
                let begun = Instant::now();
                case.run(&runtime, first, iters);
                first += iters as usize;
                begun.elapsed()
            })
        });
        group.bench_function(format!("{} on 2 threads", case.name), |b| {
            b.iter_custom(|iters| {
                let started = std::sync::Barrier::new(THREADS);
                let elapsed = std::thread::scope(|scope| {
                    let workers: Vec<_> = (0..THREADS)
                        .map(|thread| {
                            let started = &started;
                            scope.spawn(move || {
                                let runtime = tokio::runtime::Builder::new_current_thread()
                                    .enable_all()
                                    .build()
                                    .expect("a runtime");
                                started.wait();
                                let begun = Instant::now();
                                // Each thread starts at its own share of the secrets.
                                let first = thread * case.secrets.len() / THREADS;
                                case.run(&runtime, first, iters);
                                begun.elapsed()
                            })
                        })
                        .collect();
                    workers
                        .into_iter()
                        .map(|worker| worker.join().expect("a worker"))
                        .max()
                        .unwrap_or_default()
                });
                elapsed / THREADS as u32
            })
        });
    }
    group.finish();
}

/// Threads of the `… on 2 threads` variants: the cores of the machine the targets are for.
const THREADS: usize = 2;

fn send(runtime: &tokio::runtime::Runtime, app: &Router, request: Request<Body>) {
    let response = runtime
        .block_on(app.clone().oneshot(request))
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    black_box(response);
}

criterion_group!(benches, request_path);
criterion_main!(benches);
