//! Lists: paging, order, result_info, expiry filtering and parameter validation.

use serde_json::{json, Value};
use time::Duration;

use crate::kit::*;

fn names(result: &Value) -> Vec<String> {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_in_issue_order_with_result_info() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, _) = groups(family);
        let path = app.tokens_path(family);
        // Several tokens per second: the order must still be the issue order.
        let mut expected = Vec::new();
        if family == Family::User {
            expected.push("latchkey admin".to_owned());
        }
        for i in 0..11 {
            let mut body = app.body_with(family, read);
            body["name"] = json!(format!("t{i:02}"));
            app.create(family, body).await;
            expected.push(format!("t{i:02}"));
            if i % 3 == 0 {
                app.clock.advance(Duration::seconds(1));
            }
        }
        let total = expected.len();
        let mut seen = Vec::new();
        for page in 1..=3 {
            let r = app
                .get(&format!("{path}?page={page}&per_page=5"), app.admin_token())
                .await;
            seen.extend(names(r.ok()));
            let info = &r.body["result_info"];
            assert_eq!(info["page"], page);
            assert_eq!(info["per_page"], 5);
            assert_eq!(info["total_count"], total);
            assert_eq!(info["total_pages"], total.div_ceil(5));
            assert_eq!(info["count"], r.ok().as_array().unwrap().len());
        }
        assert_eq!(seen, expected);

        let desc = app
            .get(
                &format!("{path}?direction=desc&per_page=50"),
                app.admin_token(),
            )
            .await;
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(names(desc.ok()), reversed);
        let asc = app
            .get(
                &format!("{path}?direction=asc&per_page=50.0"),
                app.admin_token(),
            )
            .await;
        assert_eq!(names(asc.ok()), expected);

        // A page past the end is 200 with [].
        let past = app
            .get(&format!("{path}?page=99&per_page=5"), app.admin_token())
            .await;
        assert_eq!(past.ok(), &json!([]));
        assert_eq!(past.body["result_info"]["count"], 0);
        assert_eq!(past.body["result_info"]["total_count"], total);

        // Defaults: page 1, per_page 20.
        let default = app.get(&path, app.admin_token()).await;
        assert_eq!(default.body["result_info"]["per_page"], 20);
        assert_eq!(default.body["result_info"]["page"], 1);
    }
}

#[tokio::test]
async fn expired_tokens_are_listed_only_on_request() {
    let app = TestApp::new().await;
    for family in FAMILIES {
        let (read, _) = groups(family);
        let path = app.tokens_path(family);
        let mut body = app.body_with(family, read);
        body["name"] = json!("short lived");
        body["expires_on"] = json!(latchkey_api::timestamp::format(
            app.clock.now() + Duration::minutes(1)
        ));
        app.create(family, body).await;
        let mut body = app.body_with(family, read);
        body["name"] = json!("disabled");
        body["status"] = json!("disabled");
        let (id, _) = app.create(family, app.body_with(family, read)).await;
        app.put(&format!("{path}/{id}"), app.admin_token(), body)
            .await
            .ok();

        let listed = |query: &'static str| {
            let app = &app;
            let path = path.clone();
            async move {
                names(
                    app.get(&format!("{path}{query}"), app.admin_token())
                        .await
                        .ok(),
                )
            }
        };
        assert!(listed("").await.contains(&"short lived".to_owned()));
        app.clock.advance(Duration::minutes(1));
        let default = listed("").await;
        assert!(!default.contains(&"short lived".to_owned()));
        assert!(
            default.contains(&"disabled".to_owned()),
            "disabled tokens are listed"
        );
        let all = app
            .get(&format!("{path}?include_expired=true"), app.admin_token())
            .await;
        let expired: Vec<_> = all
            .ok()
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["name"] == "short lived")
            .collect();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0]["status"], "expired");
        assert_eq!(all.body["result_info"]["total_count"], default.len() + 1);
        app.clock.advance(Duration::minutes(-1));
    }
}

#[tokio::test]
async fn invalid_list_parameters_are_400_naming_the_parameter() {
    let app = TestApp::new().await;
    for (query, name) in [
        ("per_page=4", "per_page"),
        ("per_page=51", "per_page"),
        ("per_page=5.5", "per_page"),
        ("per_page=ten", "per_page"),
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=1.5", "page"),
        ("direction=sideways", "direction"),
        ("include_expired=yes", "include_expired"),
    ] {
        let r = app
            .get(
                &format!("/client/v4/user/tokens?{query}"),
                app.admin_token(),
            )
            .await;
        r.assert_error(400, 1004);
        assert_eq!(r.pointer(), format!("/query/{name}"), "{query}");
    }
    for query in [
        "per_page=5",
        "per_page=50",
        "per_page=5.0",
        "page=2.0",
        "unknown=1",
    ] {
        app.get(
            &format!("/client/v4/user/tokens?{query}"),
            app.admin_token(),
        )
        .await
        .ok();
    }
}
