//! Property tests at the HTTP edge: arbitrary bytes and arbitrary JSON for every body,
//! arbitrary query strings, and arbitrary header values (Authorization, Content-Type,
//! X-Forwarded-For through a trusted proxy, the forward-auth headers). Whatever comes in,
//! the answer is never a 5xx or a panic, and always a JSON envelope: `success: false` with
//! at least one coded error for a 4xx.

use std::net::{IpAddr, Ipv4Addr};

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request};
use http_body_util::BodyExt;
use latchkey_server::Limits;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value};

use crate::kit::*;

const CASES: u32 = 400;
const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

/// Field names latchkey reads, so that generated objects reach deep validation.
const FIELDS: &[&str] = &[
    "name",
    "status",
    "policies",
    "effect",
    "permission_groups",
    "id",
    "resources",
    "condition",
    "request_ip",
    "request.ip",
    "in",
    "not_in",
    "not_before",
    "expires_on",
    "permission_group",
    "resource",
    "parents",
    "explain",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just("allow"),
            Just("deny"),
            Just("active"),
            Just("disabled"),
            Just("*"),
            Just("com.cloudflare.api.account.*"),
            Just("com.cloudflare.api.account.zone.*"),
            Just("0cc3a61731504c89b99ec1be78b77aa0"),
            Just("192.0.2.0/24"),
            Just("2026-01-01T00:00:00Z"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(FIELDS).prop_map(str::to_owned),
                        ".{0,12}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body: raw bytes, or JSON text.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// A header value, when the bytes make one.
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..80),
        "(Bearer |bearer |Basic )?[ -~]{0,60}".prop_map(String::into_bytes),
        "cfu?t_[A-Za-z0-9]{0,52}".prop_map(|s| format!("Bearer {s}").into_bytes()),
    ]
}

/// Sends `request` and checks the answer's contract.
async fn answer_is_sound(app: &TestApp, request: Request<Body>) -> Result<(), TestCaseError> {
    let what = format!("{} {}", request.method(), request.uri());
    let response = app.send_raw(request, PROXY).await;
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    prop_assert!(!status.is_server_error(), "{what}: {status} {bytes:?}");
    prop_assert_eq!(
        content_type,
        Some(HeaderValue::from_static("application/json")),
        "{}: not JSON",
        what
    );
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{what}: body is not JSON ({e})")))?;
    if status.is_client_error() {
        prop_assert_eq!(&body["success"], &Value::Bool(false), "{}", what);
        prop_assert!(
            body["errors"][0]["code"].is_u64(),
            "{what}: no error code in {body}"
        );
    } else {
        prop_assert!(body.get("success").is_some(), "{what}: no envelope: {body}");
    }
    Ok(())
}

struct Edge {
    runtime: tokio::runtime::Runtime,
    app: TestApp,
    target: String,
}

impl Edge {
    fn new() -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (app, target) = runtime.block_on(async {
            // Both rate limits off: they would answer most cases 429 before parsing.
            let mut app = TestApp::with_limits(Limits {
                rate_limit: 0,
                auth_failure_limit: 0,
                ..Limits::default()
            })
            .await;
            app.state = app
                .state
                .clone()
                .with_trusted_proxies(vec!["10.0.0.0/8".parse().unwrap()]);
            let (target, _) = app.create_with(Family::User, API_TOKENS_READ).await;
            (app, target)
        });
        Edge {
            runtime,
            app,
            target,
        }
    }

    fn run<S: Strategy>(
        &self,
        strategy: S,
        request: impl Fn(&Edge, S::Value) -> Option<Request<Body>>,
    ) {
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |input| match request(self, input) {
                Some(request) => self.runtime.block_on(answer_is_sound(&self.app, request)),
                None => Ok(()),
            })
            .unwrap();
    }

    fn with_admin(&self, method: Method, path: &str) -> axum::http::request::Builder {
        Request::builder().method(method).uri(path).header(
            "authorization",
            format!("Bearer {}", self.app.admin_token()),
        )
    }
}

#[test]
fn arbitrary_bodies_get_a_4xx_envelope_or_a_sound_answer() {
    let edge = Edge::new();
    let account = edge.app.account_id();
    let target = edge.target.clone();
    let routes = vec![
        (Method::POST, "/client/v4/user/tokens".to_owned()),
        (
            Method::POST,
            format!("/client/v4/accounts/{account}/tokens"),
        ),
        (Method::PUT, format!("/client/v4/user/tokens/{target}")),
        (
            Method::PUT,
            format!("/client/v4/user/tokens/{target}/value"),
        ),
        (Method::POST, "/latchkey/v1/authorize".to_owned()),
    ];
    let content_types = prop_oneof![
        Just(Some("application/json")),
        Just(Some("text/plain")),
        Just(Some("application/json; charset=utf-8")),
        Just(None),
    ];
    edge.run(
        (prop::sample::select(routes), body(), content_types),
        |edge, ((method, path), body, content_type)| {
            let mut builder = edge.with_admin(method, &path);
            if let Some(content_type) = content_type {
                builder = builder.header("content-type", content_type);
            }
            Some(builder.body(Body::from(body)).unwrap())
        },
    );
}

#[test]
fn arbitrary_query_strings_get_a_4xx_envelope_or_a_sound_answer() {
    let edge = Edge::new();
    let account = edge.app.account_id();
    let paths = vec![
        "/client/v4/user/tokens".to_owned(),
        format!("/client/v4/accounts/{account}/tokens"),
        "/client/v4/user/tokens/permission_groups".to_owned(),
        "/client/v4/accounts".to_owned(),
    ];
    let pair = (
        prop::sample::select(vec![
            "page",
            "per_page",
            "direction",
            "include_expired",
            "name",
            "scope",
        ]),
        prop_oneof![
            prop::sample::select(vec![
                "",
                "0",
                "1",
                "2",
                "5",
                "5.0",
                "50",
                "51",
                "asc",
                "desc",
                "true",
                "false",
                "DNS%20Read",
                "com.cloudflare.api.account",
            ])
            .prop_map(str::to_owned),
            "[ -~&&[^&#]]{0,12}",
        ],
    )
        .prop_map(|(key, value)| format!("{key}={value}"));
    let query = prop_oneof![
        "[ -~]{0,60}",
        prop::collection::vec(pair, 0..5).prop_map(|pairs| pairs.join("&")),
    ];
    edge.run(
        (prop::sample::select(paths), query),
        |edge, (path, query)| {
            let encoded: String = query
                .chars()
                .map(|c| match c {
                    ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}' | '#' => {
                        format!("%{:02X}", c as u32)
                    }
                    c => c.to_string(),
                })
                .collect();
            let uri = format!("{path}?{encoded}");
            uri.parse::<axum::http::Uri>().ok()?;
            Some(
                edge.with_admin(Method::GET, &uri)
                    .body(Body::empty())
                    .unwrap(),
            )
        },
    );
}

#[test]
fn arbitrary_headers_get_a_4xx_envelope_or_a_sound_answer() {
    let edge = Edge::new();
    let paths = vec![
        (Method::GET, "/client/v4/user/tokens"),
        (Method::GET, "/client/v4/user/tokens/verify"),
        (Method::GET, "/latchkey/v1/authorize"),
        (Method::GET, "/client/v4/user"),
    ];
    edge.run(
        (
            prop::sample::select(paths),
            header_bytes(),
            header_bytes(),
            prop::collection::vec(header_bytes(), 3),
        ),
        |edge, ((method, path), authorization, forwarded, questions)| {
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let headers = request.headers_mut();
            let mut put = |name: &'static str, bytes: &[u8]| {
                if let Ok(value) = HeaderValue::from_bytes(bytes) {
                    headers.insert(name, value);
                }
            };
            // Half the time the admin's real token, so the questions get asked.
            if authorization.len() % 2 == 0 {
                put("authorization", authorization.as_slice());
            } else {
                put(
                    "authorization",
                    format!("Bearer {}", edge.app.admin_token()).as_bytes(),
                );
            }
            put("x-forwarded-for", &forwarded);
            put("x-latchkey-permission", &questions[0]);
            put("x-latchkey-resource", &questions[1]);
            put("x-latchkey-parents", &questions[2]);
            Some(request)
        },
    );
}
