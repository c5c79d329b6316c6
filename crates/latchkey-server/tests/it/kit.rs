//! Test kit: a latchkey router on a temporary database, a movable clock, a first admin,
//! and helpers to call it as a client at a given address would.
//!
//! The database is a SQLite file, or with `LATCHKEY_TEST_BACKEND=postgres` a fresh database
//! on the server named by `LATCHKEY_TEST_POSTGRES` (scripts/test runs these tests both ways).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
pub use latchkey_core::Clock;
use latchkey_core::ManualClock;
use latchkey_server::admin::{create_admin, CreatedAdmin};
use latchkey_server::{router, AppState, Limits};
use serde_json::{json, Value};
use time::macros::datetime;
use tower::ServiceExt;

pub const API_TOKENS_READ: &str = "0cc3a61731504c89b99ec1be78b77aa0";
pub const API_TOKENS_WRITE: &str = "686d18d5ac6c441c867cbf6771e58a0a";
pub const ACCOUNT_API_TOKENS_READ: &str = "eb56a6953c034b9d97dd838155666f06";
pub const ACCOUNT_API_TOKENS_WRITE: &str = "5bc3f8b21c554832afc660159ab75fa4";
pub const DNS_READ: &str = "82e64a83756745bbbb1c9c2701bf816b";

/// A latchkey instance for one test.
pub struct TestApp {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub admin: CreatedAdmin,
    /// Keeps the database's directory alive for the test.
    pub _dir: tempfile::TempDir,
}

/// A response: status and JSON body (every latchkey response is JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub body: Value,
}

impl Resp {
    /// The first error's code.
    pub fn code(&self) -> u64 {
        self.body["errors"][0]["code"].as_u64().unwrap_or(0)
    }

    /// The first error's field pointer.
    pub fn pointer(&self) -> &str {
        self.body["errors"][0]["source"]["pointer"]
            .as_str()
            .unwrap_or("")
    }

    /// Asserts a failure envelope with this status and first code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: u64) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.code(), code, "{:#}", self.body);
        assert_eq!(self.body["success"], false);
        assert_eq!(self.body["result"], Value::Null);
        assert!(self.body["messages"].is_array());
        self
    }

    /// Asserts success and returns `result`.
    #[track_caller]
    pub fn ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{:#}", self.body);
        assert_eq!(self.body["success"], true, "{:#}", self.body);
        assert_eq!(self.body["errors"], json!([]));
        &self.body["result"]
    }
}

pub const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Environment variable choosing the backend of every [`TestApp`].
pub const BACKEND_ENV: &str = "LATCHKEY_TEST_BACKEND";

/// A new empty database for one test, on the backend [`BACKEND_ENV`] names.
pub async fn database_url(dir: &tempfile::TempDir) -> String {
    match std::env::var(BACKEND_ENV).as_deref() {
        Ok("postgres") => latchkey_store::testing::fresh_postgres_database("server tests")
            .await
            .unwrap_or_else(|| {
                panic!("{BACKEND_ENV}=postgres needs LATCHKEY_TEST_POSTGRES (a server URL)")
            }),
        Ok("sqlite") | Err(_) => format!("sqlite://{}", dir.path().join("test.db").display()),
        Ok(other) => panic!("{BACKEND_ENV} must be sqlite or postgres, not {other:?}"),
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_limits(Limits::default()).await
    }

    pub async fn with_limits(limits: Limits) -> Self {
        Self::build(limits, true).await
    }

    /// An app that does not follow the store's change feed: for tests of the cache alone,
    /// which change the database behind latchkey's back (the feed would see that).
    pub async fn without_change_feed() -> Self {
        Self::build(Limits::default(), false).await
    }

    /// [`TestApp::without_change_feed`] with these limits.
    pub async fn with_limits_without_change_feed(limits: Limits) -> Self {
        Self::build(limits, false).await
    }

    async fn build(limits: Limits, follow_changes: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = database_url(&dir).await;
        let store = latchkey_store::open(&url).await.unwrap();
        let clock = Arc::new(ManualClock::new(datetime!(2026-06-01 12:00 UTC)));
        let admin = create_admin(store.as_ref(), "admin@example.com", "Acme", clock.now())
            .await
            .unwrap();
        let state = AppState::new(store, clock.clone(), limits);
        // As `serve` does: follow the store's change feed.
        if follow_changes {
            if let Some(changes) = state.store.watch() {
                let state = state.clone();
                tokio::spawn(async move { state.follow(changes).await });
            }
        }
        TestApp {
            state,
            clock,
            admin,
            _dir: dir,
        }
    }

    pub fn admin_token(&self) -> &str {
        self.admin.secret.expose()
    }

    pub fn user_id(&self) -> String {
        self.admin.user_id.to_string()
    }

    pub fn account_id(&self) -> String {
        self.admin.account_id.to_string()
    }

    /// Sends a request from `from` and returns the response as it is.
    pub async fn send_raw(&self, request: Request<Body>, from: IpAddr) -> axum::response::Response {
        let mut request = request;
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(from, 40000)));
        router(self.state.clone()).oneshot(request).await.unwrap()
    }

    /// Sends a request from `from`; checks the answer is JSON and parses it.
    pub async fn send(&self, request: Request<Body>, from: IpAddr) -> Resp {
        let response = self.send_raw(request, from).await;
        let status = response.status();
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap()),
            Some("application/json"),
            "every response is JSON"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        Resp { status, body }
    }

    /// Calls `method path` with a bearer token and an optional JSON body, from localhost.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        self.call_from(LOCALHOST, method, path, token, body).await
    }

    pub async fn call_from(
        &self,
        from: IpAddr,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                builder = builder.header("content-type", "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        self.send(builder.body(body).unwrap(), from).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// The collection path of a family: `/client/v4/user/tokens` or the account's.
    pub fn tokens_path(&self, family: Family) -> String {
        match family {
            Family::User => "/client/v4/user/tokens".into(),
            Family::Account => format!("/client/v4/accounts/{}/tokens", self.account_id()),
        }
    }

    /// Creates a token with `body` through the admin; returns (id, secret).
    pub async fn create(&self, family: Family, body: Value) -> (String, String) {
        let response = self
            .post(&self.tokens_path(family), self.admin_token(), body)
            .await;
        let result = response.ok();
        (
            result["id"].as_str().unwrap().to_owned(),
            result["value"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a token holding one group on the family's own resource.
    pub async fn create_with(&self, family: Family, group: &str) -> (String, String) {
        self.create(family, self.body_with(family, group)).await
    }

    /// A create body granting `group` on the family's own resource.
    pub fn body_with(&self, family: Family, group: &str) -> Value {
        json!({
            "name": format!("{group} token"),
            "policies": [allow(group, &self.resource(family))],
        })
    }

    /// `com.cloudflare.api.user.<id>` or `com.cloudflare.api.account.<id>`.
    pub fn resource(&self, family: Family) -> String {
        match family {
            Family::User => format!("com.cloudflare.api.user.{}", self.user_id()),
            Family::Account => format!("com.cloudflare.api.account.{}", self.account_id()),
        }
    }

    /// Writes pending last-use times now.
    pub async fn flush_last_used(&self) {
        self.state.last_used.flush(self.state.store.as_ref()).await;
    }
}

/// Which family a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    User,
    Account,
}

pub const FAMILIES: [Family; 2] = [Family::User, Family::Account];

/// The Read and Write groups of a family's token API.
pub fn groups(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::User => (API_TOKENS_READ, API_TOKENS_WRITE),
        Family::Account => (ACCOUNT_API_TOKENS_READ, ACCOUNT_API_TOKENS_WRITE),
    }
}

/// An allow policy of one group on one resource key.
pub fn allow(group: &str, resource: &str) -> Value {
    json!({"effect": "allow", "permission_groups": [{"id": group}], "resources": {resource: "*"}})
}

/// A deny policy of one group on one resource key.
pub fn deny(group: &str, resource: &str) -> Value {
    json!({"effect": "deny", "permission_groups": [{"id": group}], "resources": {resource: "*"}})
}
