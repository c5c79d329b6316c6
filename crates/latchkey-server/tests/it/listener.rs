//! Over a real TCP listener on 127.0.0.1: the socket peer is the client address, unknown
//! routes and methods get envelopes.

use std::net::SocketAddr;

use latchkey_api::{CreateTokenRequest, UpdateTokenRequest};
use latchkey_client::{self as client, Client};
use serde_json::{json, Value};

use crate::kit::*;

async fn serve(app: &TestApp) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = latchkey_server::router(app.state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{address}/client/v4")
}

fn create_request(app: &TestApp, family: Family, name: &str) -> CreateTokenRequest {
    let mut body = app.body_with(family, groups(family).0);
    body["name"] = json!(name);
    body["condition"] = json!({"request_ip": {"in": ["127.0.0.0/8"]}});
    serde_json::from_value(body).unwrap()
}

fn client_family(app: &TestApp, family: Family) -> client::Family {
    match family {
        Family::User => client::Family::User,
        Family::Account => client::Family::Account(app.account_id()),
    }
}

#[tokio::test]
async fn the_typed_client_drives_every_operation_of_both_families() {
    let app = TestApp::new().await;
    let admin = Client::new(app.admin_token()).with_base_url(serve(&app).await);
    for family in FAMILIES {
        let f = client_family(&app, family);
        let created = admin
            .create(&f, &create_request(&app, family, "over tcp"))
            .await
            .unwrap();
        let secret = created.value.clone().unwrap().expose().to_owned();
        let own = admin.with_token(&secret);
        assert_eq!(own.verify(&f).await.unwrap().id, created.id);

        let page = admin
            .list(
                &f,
                &client::ListQuery {
                    per_page: Some(5),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(page.items.iter().any(|t| t.id == created.id));
        assert_eq!(page.info.unwrap().per_page, 5);
        let fetched = admin.get(&f, &created.id).await.unwrap();
        assert_eq!(fetched.value, None);
        assert_eq!(fetched.name, "over tcp");

        let mut update: UpdateTokenRequest = serde_json::from_value(
            serde_json::to_value(create_request(&app, family, "renamed")).unwrap(),
        )
        .unwrap();
        update.status = Some(latchkey_api::TokenStatus::Disabled);
        assert_eq!(
            admin.update(&f, &created.id, &update).await.unwrap().name,
            "renamed"
        );
        let refused = own.verify(&f).await.unwrap_err();
        assert_eq!((refused.status(), refused.code()), (Some(401), Some(1000)));
        update.status = Some(latchkey_api::TokenStatus::Active);
        admin.update(&f, &created.id, &update).await.unwrap();

        let rolled = admin.roll(&f, &created.id).await.unwrap();
        assert_eq!(own.verify(&f).await.unwrap_err().code(), Some(1000));
        assert_eq!(
            admin
                .with_token(rolled.expose())
                .verify(&f)
                .await
                .unwrap()
                .id,
            created.id
        );

        let groups = admin
            .permission_groups(
                &f,
                &client::GroupFilter {
                    name: Some("DNS Read".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(groups.len(), 1);

        assert_eq!(admin.delete(&f, &created.id).await.unwrap().id, created.id);
        let gone = admin.get(&f, &created.id).await.unwrap_err();
        assert_eq!((gone.status(), gone.code()), (Some(404), Some(7003)));
    }
}

/// The rest of the client against the real service: the user, accounts, audit logs and
/// authorize, and the paging streams over more than one page.
#[tokio::test]
async fn the_typed_client_pages_and_reaches_every_other_operation() {
    use futures_util::TryStreamExt;

    let app = TestApp::new().await;
    let admin = Client::new(app.admin_token()).with_base_url(serve(&app).await);
    for i in 0..12 {
        admin
            .create(
                &client::Family::User,
                &create_request(&app, Family::User, &format!("paged {i}")),
            )
            .await
            .unwrap();
    }
    let query = client::ListQuery {
        per_page: Some(5),
        ..Default::default()
    };
    // 13 tokens (the admin and 12) in pages of 5: every one once, in order.
    let streamed: Vec<_> = admin
        .tokens(&client::Family::User, query.clone())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(streamed.len(), 13);
    let mut names: Vec<&str> = streamed.iter().map(|t| t.name.as_str()).collect();
    names.retain(|n| n.starts_with("paged"));
    let expected: Vec<String> = (0..12).map(|i| format!("paged {i}")).collect();
    assert_eq!(names, expected);
    let pages: Vec<_> = admin
        .token_pages(&client::Family::User, query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    assert_eq!(pages[2].info.unwrap().total_pages, 3);

    assert_eq!(admin.user().await.unwrap().id, app.user_id());
    let accounts: Vec<_> = admin
        .all_accounts(client::AccountQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].id, app.account_id());

    let entries: Vec<_> = admin
        .all_audit_logs(
            &client::Family::User,
            client::AuditQuery {
                per_page: Some(5),
                ..Default::default()
            },
        )
        .try_collect()
        .await
        .unwrap();
    let creates = entries
        .iter()
        .filter(|e| e.action.kind == "token_create")
        .count();
    // The 12 above and the bootstrap admin's own, across pages of 5.
    assert_eq!(creates, 13);

    let decision = admin
        .authorize(&latchkey_api::AuthorizeRequest {
            permission_group: "API Tokens Write".into(),
            resource: format!("com.cloudflare.api.user.{}", app.user_id()),
            parents: Vec::new(),
            explain: false,
        })
        .await
        .unwrap();
    assert!(decision.allowed, "{decision:?}");
}

#[tokio::test]
async fn the_socket_peer_is_the_client_address() {
    let app = TestApp::new().await;
    let admin = Client::new(app.admin_token()).with_base_url(serve(&app).await);
    let mut fenced = create_request(&app, Family::User, "not from here");
    fenced.condition =
        serde_json::from_value(json!({"request_ip": {"not_in": ["127.0.0.1/32"]}})).unwrap();
    let secret = admin
        .create(&client::Family::User, &fenced)
        .await
        .unwrap()
        .value
        .unwrap();
    let fenced = admin.with_token(secret);
    assert_eq!(
        fenced
            .verify(&client::Family::User)
            .await
            .unwrap_err()
            .status(),
        Some(401)
    );
    let error = fenced
        .list(&client::Family::User, &Default::default())
        .await
        .unwrap_err();
    match error {
        client::Error::Api { status, errors, .. } => {
            assert_eq!(status, 403);
            assert_eq!(
                errors[0].message,
                "Cannot use the access token from location: 127.0.0.1"
            );
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn roll_and_delete_need_no_body_or_content_type() {
    let app = TestApp::new().await;
    let base = serve(&app).await;
    let (id, secret) = app.create_with(Family::User, API_TOKENS_READ).await;
    let http = reqwest::Client::new();
    let response = http
        .put(format!("{base}/user/tokens/{id}/value"))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rolled: Value = response.json().await.unwrap();
    let rolled = rolled["result"].as_str().unwrap();
    let user = client::Family::User;
    let client = Client::new(secret).with_base_url(&base);
    assert!(client.verify(&user).await.is_err());
    assert!(client.with_token(rolled).verify(&user).await.is_ok());
    let response = http
        .delete(format!("{base}/user/tokens/{id}"))
        .bearer_auth(app.admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_enveloped() {
    let app = TestApp::new().await;
    let base = serve(&app).await;
    let client = reqwest::Client::new();
    for (method, path, status, code) in [
        (reqwest::Method::GET, "/_stainless_unknown_path", 404, 7003),
        (reqwest::Method::GET, "/user/tokenz", 404, 7003),
        (
            reqwest::Method::GET,
            "/user/tokens/abc/value/extra",
            404,
            7003,
        ),
        (reqwest::Method::POST, "/user/tokens/verify", 405, 7001),
        (reqwest::Method::PATCH, "/user/tokens", 405, 7001),
    ] {
        let response = client
            .request(method.clone(), format!("{base}{path}"))
            .bearer_auth(app.admin_token())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{method} {path}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], code);
        assert_eq!(body["success"], false);
    }
    // Outside the API too (`/` itself is the dashboard).
    let outside = client
        .get(format!("{}/elsewhere", base.trim_end_matches("/client/v4")))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
    assert_eq!(outside.headers()["content-type"], "application/json");
}

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = TestApp::new().await;
    for (path, status) in [("/healthz", "ok"), ("/readyz", "ready")] {
        let answer = app.call(axum::http::Method::GET, path, None, None).await;
        assert_eq!(answer.ok()["status"], status, "{path}");
    }
}
