//! The client against a mock server on 127.0.0.1: pagination, retries, error mapping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{StreamExt, TryStreamExt};
use latchkey_api::{AuthorizeRequest, CreateTokenRequest};
use latchkey_client::{AccountQuery, AuditQuery, Client, Error, Family, ListQuery, RetryPolicy};
use serde_json::{json, Value};

const TOKEN: &str = "cfut_mocksecretmocksecret";

/// Serves `router` under `/client/v4` (and latchkey's own paths at the root).
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/client/v4")
}

fn client(base: &str) -> Client {
    Client::new(TOKEN).with_base_url(base)
}

/// Quick retries, so that tests do not wait.
fn fast(base: &str, max_retries: u32) -> Client {
    client(base).with_retry_policy(RetryPolicy {
        max_retries,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(50),
    })
}

#[derive(Clone, Default)]
struct Calls(Arc<AtomicUsize>);

impl Calls {
    /// Counts a call and returns its number, from 1.
    fn next(&self) -> usize {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

fn token(n: u64) -> Value {
    json!({
        "id": format!("{n:032x}"),
        "name": format!("token {n}"),
        "status": "active",
        "issued_on": "2026-01-01T00:00:00Z",
        "modified_on": "2026-01-01T00:00:00Z",
        "policies": [],
    })
}

fn account(n: u64) -> Value {
    json!({"id": format!("{n:032x}"), "name": format!("account {n}"), "created_on": "2026-01-01T00:00:00Z"})
}

fn audit_entry(n: u64) -> Value {
    json!({
        "id": format!("{n:032x}"),
        "action": {"type": "token_create", "result": true},
        "actor": {"id": null, "type": "system", "ip": null},
        "interface": "API",
        "metadata": {},
        "owner": {"id": null, "type": "user"},
        "resource": {"id": null, "type": "token"},
        "when": "2026-01-01T00:00:00Z",
        "chain": {"seq": n, "prev_hash": "00", "hash": "11"},
    })
}

fn ok(result: Value) -> Response {
    Json(json!({"success": true, "errors": [], "messages": [], "result": result})).into_response()
}

fn failure(status: StatusCode, code: u32, message: &str) -> Response {
    let body = json!({"success": false, "errors": [{"code": code, "message": message}], "messages": [], "result": null});
    (status, Json(body)).into_response()
}

fn verified() -> Response {
    ok(json!({"id": format!("{:032x}", 7), "status": "active"}))
}

/// `page` of `per_page` items out of `total`, made by `item`, with or without `result_info`.
fn paged(
    query: &HashMap<String, String>,
    total: u64,
    with_info: bool,
    item: fn(u64) -> Value,
) -> Response {
    let number = |name: &str, default: u64| query.get(name).map_or(default, |v| v.parse().unwrap());
    let (page, per_page) = (number("page", 1), number("per_page", 20));
    let first = (page - 1) * per_page;
    let items: Vec<Value> = (first..total.min(first + per_page)).map(item).collect();
    let mut body = json!({"success": true, "errors": [], "messages": [], "result": items});
    if with_info {
        body["result_info"] = json!({
            "page": page, "per_page": per_page, "count": items.len(),
            "total_count": total, "total_pages": total.div_ceil(per_page).max(1),
        });
    }
    Json(body).into_response()
}

#[tokio::test]
async fn token_stream_yields_every_item_once_in_order_and_stops() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens",
        get(
            move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| async move {
                seen.next();
                assert_eq!(headers["authorization"], format!("Bearer {TOKEN}"));
                assert_eq!(q.get("include_expired").map(String::as_str), Some("true"));
                paged(&q, 12, true, token)
            },
        ),
    ))
    .await;
    let query = ListQuery {
        per_page: Some(5),
        include_expired: Some(true),
        ..ListQuery::default()
    };

    let stream = client(&base).tokens(&Family::User, query.clone());
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        calls.count(),
        0,
        "nothing is fetched before the stream is polled"
    );

    let names: Vec<String> = stream.map_ok(|t| t.name).try_collect().await.unwrap();
    let expected: Vec<String> = (0..12).map(|n| format!("token {n}")).collect();
    assert_eq!(names, expected);
    assert_eq!(calls.count(), 3);

    let mut pages = client(&base).token_pages(&Family::User, query);
    let mut progress = Vec::new();
    while let Some(page) = pages.try_next().await.unwrap() {
        let info = page.info.unwrap();
        progress.push((info.page, info.total_pages, page.items.len()));
    }
    assert_eq!(progress, [(1, 3, 5), (2, 3, 5), (3, 3, 2)]);
    assert!(pages.next().await.is_none(), "an ended stream stays ended");
    assert_eq!(calls.count(), 6);
}

#[tokio::test]
async fn item_stream_reports_the_page_it_is_on() {
    let base = serve(Router::new().route(
        "/client/v4/accounts/abc/tokens",
        get(|Query(q): Query<HashMap<String, String>>| async move { paged(&q, 7, true, token) }),
    ))
    .await;
    let query = ListQuery {
        page: Some(2),
        per_page: Some(3),
        ..ListQuery::default()
    };
    let mut tokens = client(&base).tokens(&Family::Account("abc".into()), query);
    assert!(tokens.info().is_none());
    let mut seen = Vec::new();
    while let Some(token) = tokens.try_next().await.unwrap() {
        let info = tokens.info().unwrap();
        seen.push((token.name, info.page, info.total_pages));
    }
    let expected: Vec<(String, u64, u64)> = [(3, 2), (4, 2), (5, 2), (6, 3)]
        .into_iter()
        .map(|(n, page)| (format!("token {n}"), page, 3))
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn without_result_info_a_short_page_is_the_last() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/accounts",
        get(move |Query(q): Query<HashMap<String, String>>| async move {
            seen.next();
            paged(&q, 5, false, account)
        }),
    ))
    .await;
    let query = AccountQuery {
        per_page: Some(2),
        ..AccountQuery::default()
    };
    let accounts: Vec<_> = client(&base)
        .all_accounts(query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(accounts.len(), 5);
    assert_eq!(accounts[4].name, "account 4");
    assert_eq!(calls.count(), 3);
}

#[tokio::test]
async fn without_result_info_an_empty_page_is_the_last() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/accounts/abc/audit_logs",
        get(move |Query(q): Query<HashMap<String, String>>| async move {
            seen.next();
            assert_eq!(q["since"], "2026-01-01T00:00:00Z");
            assert_eq!(q["before"], "2026-02-01T00:00:00Z");
            assert_eq!(q["direction"], "asc");
            paged(&q, 4, false, audit_entry)
        }),
    ))
    .await;
    let query = AuditQuery {
        per_page: Some(2),
        direction: Some("asc".into()),
        since: Some(time::macros::datetime!(2026-01-01 00:00 UTC)),
        before: Some(time::macros::datetime!(2026-02-01 00:00 UTC)),
        ..AuditQuery::default()
    };
    let family = Family::Account("abc".into());
    let entries: Vec<_> = client(&base)
        .all_audit_logs(&family, query.clone())
        .try_collect()
        .await
        .unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.chain.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(calls.count(), 3);

    let page = client(&base).audit_logs(&family, &query).await.unwrap();
    assert_eq!((page.items.len(), page.info), (2, None));
}

#[tokio::test]
async fn a_failed_page_ends_the_stream() {
    let base = serve(Router::new().route(
        "/client/v4/user/tokens",
        get(|Query(q): Query<HashMap<String, String>>| async move {
            match q.get("page").map(String::as_str) {
                Some("2") => failure(StatusCode::FORBIDDEN, 9109, "Unauthorized"),
                _ => paged(&q, 10, true, token),
            }
        }),
    ))
    .await;
    let query = ListQuery {
        per_page: Some(5),
        ..ListQuery::default()
    };
    let results: Vec<_> = client(&base).tokens(&Family::User, query).collect().await;
    assert_eq!(results.len(), 6);
    assert!(results[..5].iter().all(Result::is_ok));
    assert_eq!(results[5].as_ref().unwrap_err().code(), Some(9109));
}

#[tokio::test]
async fn waits_for_retry_after_on_429_then_succeeds() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens/verify",
        get(move || async move {
            if seen.next() == 1 {
                let mut refused = failure(StatusCode::TOO_MANY_REQUESTS, 971, "Please wait");
                refused
                    .headers_mut()
                    .insert("retry-after", "1".parse().unwrap());
                refused
            } else {
                verified()
            }
        }),
    ))
    .await;
    let started = Instant::now();
    let verified = client(&base).verify(&Family::User).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(verified.id, format!("{:032x}", 7));
    assert_eq!(calls.count(), 2);
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens/verify",
        get(move || async move {
            match seen.next() {
                1 | 2 => failure(StatusCode::SERVICE_UNAVAILABLE, 10000, "Try again"),
                _ => verified(),
            }
        }),
    ))
    .await;
    fast(&base, 3).verify(&Family::User).await.unwrap();
    assert_eq!(calls.count(), 3);
}

#[tokio::test]
async fn gives_up_after_max_retries_with_the_last_error() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens/verify",
        get(move || async move {
            seen.next();
            failure(StatusCode::SERVICE_UNAVAILABLE, 10000, "Try again")
        }),
    ))
    .await;
    let error = fast(&base, 2).verify(&Family::User).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(503), Some(10000)));
    assert_eq!(calls.count(), 3);

    let error = fast(&base, 0)
        .with_retry_policy(RetryPolicy::none())
        .verify(&Family::User)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(10000));
    assert_eq!(calls.count(), 4);
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_returned_at_once() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens/verify",
        get(move || async move {
            seen.next();
            let mut refused = failure(StatusCode::TOO_MANY_REQUESTS, 1016, "Too many failures");
            refused
                .headers_mut()
                .insert("retry-after", "60".parse().unwrap());
            refused
        }),
    ))
    .await;
    let error = client(&base).verify(&Family::User).await.unwrap_err();
    assert_eq!((error.status(), error.code()), (Some(429), Some(1016)));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(calls.count(), 1);
}

fn create_body() -> CreateTokenRequest {
    serde_json::from_value(json!({"name": "new", "policies": []})).unwrap()
}

#[tokio::test]
async fn post_is_retried_when_refused_but_not_after_a_500() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens",
        post(move |Json(body): Json<Value>| async move {
            assert_eq!(body["name"], "new");
            match seen.next() {
                1 => failure(StatusCode::SERVICE_UNAVAILABLE, 10000, "Refused"),
                2 => ok(token(2)),
                _ => failure(StatusCode::INTERNAL_SERVER_ERROR, 10000, "Broken"),
            }
        }),
    ))
    .await;
    let client = fast(&base, 3);
    let created = client.create(&Family::User, &create_body()).await.unwrap();
    assert_eq!(created.name, "token 2");
    assert_eq!(calls.count(), 2);

    let error = client
        .create(&Family::User, &create_body())
        .await
        .unwrap_err();
    assert_eq!(error.status(), Some(500));
    assert_eq!(calls.count(), 3);
}

/// A server that reads each request and hangs up without answering; counts connections.
async fn hang_up_server() -> (String, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let calls = Calls::default();
    let seen = calls.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            seen.next();
            let mut buffer = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buffer).await;
            drop(socket);
        }
    });
    (format!("http://{address}/client/v4"), calls)
}

#[tokio::test]
async fn post_is_not_retried_after_a_transport_error_but_get_is() {
    let (base, calls) = hang_up_server().await;
    let client = fast(&base, 2);

    let error = client
        .create(&Family::User, &create_body())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(calls.count(), 1);
    assert!(!error.to_string().contains(TOKEN));
    assert!(!format!("{error:?}").contains(TOKEN));

    let error = client.get(&Family::User, "abc").await.unwrap_err();
    assert!(matches!(error, Error::Transport(_)), "{error:?}");
    assert_eq!(calls.count(), 1 + 3);
}

#[tokio::test]
async fn a_failure_envelope_is_an_api_error_with_the_cloudflare_codes() {
    let calls = Calls::default();
    let seen = calls.clone();
    let base = serve(Router::new().route(
        "/client/v4/user/tokens/{id}",
        get(move || async move {
            seen.next();
            let body = json!({
                "success": false,
                "errors": [{"code": 6003, "message": "Invalid request headers",
                            "error_chain": [{"code": 6111, "message": "Invalid format for Authorization header"}]},
                           {"code": 9109, "message": "Unauthorized to access requested resource"}],
                "messages": [], "result": null,
            });
            (StatusCode::BAD_REQUEST, Json(body))
        }),
    ))
    .await;
    let error = client(&base).get(&Family::User, "x").await.unwrap_err();
    assert_eq!(calls.count(), 1, "a 4xx is not retried");
    assert_eq!((error.status(), error.code()), (Some(400), Some(6003)));
    match &error {
        Error::Api {
            status,
            errors,
            retry_after,
        } => {
            assert_eq!((*status, *retry_after), (400, None));
            let codes: Vec<u32> = errors.iter().map(|e| e.code).collect();
            assert_eq!(codes, [6003, 9109]);
            assert_eq!(errors[0].error_chain[0].code, 6111);
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("HTTP 400") && message.contains("6003 Invalid request headers"));
    assert!(!message.contains(TOKEN) && !format!("{error:?}").contains(TOKEN));
}

#[tokio::test]
async fn an_answer_that_is_no_envelope_is_a_decode_error() {
    let base = serve(Router::new().route(
        "/client/v4/user",
        get(|| async { (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>") }),
    ))
    .await;
    let error = fast(&base, 1).user().await.unwrap_err();
    assert!(
        matches!(error, Error::Decode { status: 502, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn user_and_accounts() {
    let base = serve(
        Router::new()
            .route(
                "/client/v4/user",
                get(|| async {
                    ok(json!({"id": "u1", "email": "a@example.com", "created_on": "2026-01-01T00:00:00Z"}))
                }),
            )
            .route(
                "/client/v4/accounts",
                get(|Query(q): Query<HashMap<String, String>>| async move {
                    assert_eq!(q["direction"], "desc");
                    paged(&q, 3, true, account)
                }),
            ),
    )
    .await;
    let client = client(&base);
    assert_eq!(client.user().await.unwrap().email, "a@example.com");
    let query = AccountQuery {
        direction: Some("desc".into()),
        ..AccountQuery::default()
    };
    let page = client.accounts(&query).await.unwrap();
    assert_eq!(page.items.len(), 3);
    assert_eq!(page.info.unwrap().total_count, 3);
}

#[tokio::test]
async fn authorize_is_outside_client_v4() {
    let base = serve(Router::new().route(
        "/latchkey/v1/authorize",
        post(|headers: HeaderMap, Json(body): Json<Value>| async move {
            assert_eq!(headers["authorization"], format!("Bearer {TOKEN}"));
            assert_eq!(body["permission_group"], "DNS Read");
            ok(json!({"allowed": false, "reason": "no allow matched"}))
        }),
    ))
    .await;
    let question = AuthorizeRequest {
        permission_group: "DNS Read".into(),
        resource: "com.cloudflare.api.account.zone.1".into(),
        parents: vec![],
        explain: false,
    };
    let answer = client(&base).authorize(&question).await.unwrap();
    assert!(!answer.allowed);
    assert_eq!(answer.reason, "no allow matched");
}

#[test]
fn debug_of_client_hides_the_token() {
    let client = Client::new(TOKEN).with_base_url("http://127.0.0.1:1/client/v4");
    let debug = format!("{client:?}");
    assert!(!debug.contains("mocksecret"), "{debug}");
    assert!(debug.contains("127.0.0.1:1") && debug.contains("REDACTED"));
}

#[test]
fn streams_and_calls_can_cross_threads() {
    fn send_static<T: Send + 'static>(_: T) {}
    let client = Client::new(TOKEN);
    send_static(client.tokens(&Family::User, ListQuery::default()));
    send_static(client.audit_log_pages(&Family::User, AuditQuery::default()));
    let client = Arc::new(client);
    send_static(async move { client.verify(&Family::User).await });
}
