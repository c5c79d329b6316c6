//! Over a real TCP listener on 127.0.0.1: the socket peer is the client address, unknown
//! routes and methods get envelopes.

use std::net::SocketAddr;

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

#[tokio::test]
async fn a_real_client_creates_verifies_rolls_and_is_fenced_by_address() {
    let app = TestApp::new().await;
    let base = serve(&app).await;
    let client = reqwest::Client::new();
    let admin = app.admin_token().to_owned();

    let create = |body: Value| {
        let client = client.clone();
        let url = format!("{base}/user/tokens");
        let admin = admin.clone();
        async move {
            let response = client
                .post(url)
                .bearer_auth(admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            (
                body["result"]["id"].as_str().unwrap().to_owned(),
                body["result"]["value"].as_str().unwrap().to_owned(),
            )
        }
    };
    let verify = |secret: String| {
        let client = client.clone();
        let url = format!("{base}/user/tokens/verify");
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

    let mut body = app.body_with(Family::User, API_TOKENS_READ);
    body["condition"] = json!({"request_ip": {"in": ["127.0.0.0/8"]}});
    let (id, secret) = create(body).await;
    assert_eq!(verify(secret.clone()).await, 200);

    let mut fenced = app.body_with(Family::User, API_TOKENS_READ);
    fenced["condition"] = json!({"request_ip": {"not_in": ["127.0.0.1/32"]}});
    let (_, fenced_secret) = create(fenced).await;
    assert_eq!(verify(fenced_secret.clone()).await, 401);
    let response = client
        .get(format!("{base}/user/tokens"))
        .bearer_auth(&fenced_secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["message"],
        "Cannot use the access token from location: 127.0.0.1"
    );

    // Roll with no body and no content type.
    let response = client
        .put(format!("{base}/user/tokens/{id}/value"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rolled: Value = response.json().await.unwrap();
    assert_eq!(verify(secret).await, 401);
    assert_eq!(
        verify(rolled["result"].as_str().unwrap().to_owned()).await,
        200
    );

    // Delete with no body.
    let response = client
        .delete(format!("{base}/user/tokens/{id}"))
        .bearer_auth(&admin)
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
    let outside = client
        .get(format!("{}/", base.trim_end_matches("/client/v4")))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 404);
}
