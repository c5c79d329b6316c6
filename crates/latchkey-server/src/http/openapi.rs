//! The OpenAPI 3.1 document served at `GET /client/v4/openapi.json`, generated from the
//! code: schemas from the wire types of `latchkey-api`, operations from the
//! `#[utoipa::path]` attributes on the handlers, collected by the route list
//! ([`crate::http::routes`]).
//!
//! The handlers of the token endpoints serve both families, and an attribute names one
//! path, so the attributes describe the user family (`/client/v4/user/tokens...`) and
//! [`account_family`] makes each into its account twin: the same operation under
//! `/client/v4/accounts/{account_id}/...`, with the `account_id` parameter and Cloudflare's
//! `account-api-tokens-*` operation ids.

use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use latchkey_api as api;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::openapi::{OpenApi as Document, Required};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use utoipa_axum::router::UtoipaMethodRouter;

/// The answer to any failed request: `success: false`, at least one error with a
/// Cloudflare code, and `result: null`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // only its schema is used
pub struct Failure {
    /// Always false.
    success: bool,
    /// Why it failed, e.g. `{"code": 1003, "message": "...", "source": {"pointer": "/name"}}`.
    errors: Vec<api::ErrorDetail>,
    /// Always empty.
    messages: Vec<api::Message>,
    /// Always null.
    #[schema(value_type = Option<Object>, required = true)]
    result: Option<()>,
}

/// The "4XX" answer every operation documents, written once:
/// `(status = "4XX", response = inline(FailureResponse))` in a `#[utoipa::path]`.
pub struct FailureResponse;

impl<'s> ToResponse<'s> for FailureResponse {
    fn response() -> (&'s str, RefOr<utoipa::openapi::Response>) {
        let content = ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Failure")))
            .build();
        let response = ResponseBuilder::new()
            .description(
                "Failure: a Cloudflare error code, a message and, for bad input, the field \
                 (`source.pointer`)",
            )
            .content("application/json", content)
            .build();
        ("Failure", response.into())
    }
}

/// `direction` of a list: oldest first or newest first.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)] // only its schema is used
pub enum Direction {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "latchkey",
        description = "API tokens the way Cloudflare's API v4 does them, self-hosted. \
            The token endpoints are Cloudflare's (user tokens under /client/v4/user/tokens, \
            account tokens under /client/v4/accounts/{account_id}/tokens); \
            /latchkey/v1/authorize, /healthz, /readyz and the audit logs are latchkey's own. \
            Every request but the health checks needs `Authorization: Bearer <token>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    components(schemas(Failure, Direction)),
    modifiers(&BearerAuth),
    tags(
        (name = "User API Tokens", description = "Tokens owned by the calling user."),
        (name = "Account API Tokens", description = "Tokens owned by an account."),
        (name = "Identity", description = "Who a token acts for."),
        (name = "Audit logs", description = "latchkey: the hash-chained record of token changes."),
        (name = "Authorization", description = "latchkey: ask whether a token may do something."),
        (name = "Health", description = "latchkey: liveness, readiness, metrics and this document, without a token."),
    ),
)]
pub(crate) struct Doc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A latchkey (or Cloudflare) API token."))
                    .build(),
            ),
        );
    }
}

const USER_PREFIX: &str = "/client/v4/user/";
const ACCOUNT_PREFIX: &str = "/client/v4/accounts/{account_id}/";

/// The finished document as JSON: `doc` (the route list's) with links from each create to
/// what can be done with the new token.
pub(crate) fn finish(doc: Document) -> Value {
    let mut json = serde_json::to_value(doc).expect("the document serializes");
    link_created_tokens(&mut json, "/client/v4/user/tokens", "user-api-tokens-");
    link_created_tokens(
        &mut json,
        "/client/v4/accounts/{account_id}/tokens",
        "account-api-tokens-",
    );
    json
}

/// Routes of the user family moved to the account family: the paths under
/// `/client/v4/accounts/{account_id}/`, and each operation made into its account twin.
pub(crate) fn account_family<S>(
    (schemas, paths, method_router): UtoipaMethodRouter<S>,
) -> UtoipaMethodRouter<S> {
    let mut moved = utoipa::openapi::path::Paths::new();
    for (path, item) in paths.paths {
        let path = path.replacen(USER_PREFIX, ACCOUNT_PREFIX, 1);
        moved.paths.insert(path, account_variant(item));
    }
    (schemas, moved, method_router)
}

/// OpenAPI links from a create's answer to the new token's get, update, roll and delete,
/// so that tools such as schemathesis can follow them. Written as JSON because utoipa 5
/// serializes its `Link` with snake_case keys (`operation_id`), which OpenAPI does not know.
fn link_created_tokens(doc: &mut Value, path: &str, prefix: &str) {
    let mut parameters = json!({"token_id": "$response.body#/result/id"});
    if path.contains("{account_id}") {
        parameters["account_id"] = json!("$request.path.account_id");
    }
    let links: serde_json::Map<String, Value> = [
        ("GetToken", "token-details"),
        ("UpdateToken", "update-token"),
        ("RollToken", "roll-token"),
        ("DeleteToken", "delete-token"),
    ]
    .into_iter()
    .map(|(name, operation)| {
        (
            name.to_owned(),
            json!({"operationId": format!("{prefix}{operation}"), "parameters": parameters}),
        )
    })
    .collect();
    doc["paths"][path]["post"]["responses"]["200"]["links"] = Value::Object(links);
}

/// An operation of the user family made into its account-family twin.
fn account_variant(mut item: PathItem) -> PathItem {
    let account_id = ParameterBuilder::new()
        .name("account_id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The account's id (32 lowercase hex)."))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9a-f]{32}$")),
        ))
        .build();
    for operation in operations(&mut item) {
        if let Some(id) = &operation.operation_id {
            operation.operation_id = Some(
                id.replacen("user-api-tokens-", "account-api-tokens-", 1)
                    .replacen("permission-groups-", "account-api-tokens-", 1)
                    .replacen("user-audit-logs-", "account-audit-logs-", 1),
            );
        }
        if let Some(tags) = &mut operation.tags {
            for tag in tags.iter_mut().filter(|t| *t == "User API Tokens") {
                *tag = "Account API Tokens".to_owned();
            }
        }
        let parameters = operation.parameters.get_or_insert_with(Vec::new);
        parameters.insert(0, account_id.clone());
    }
    item
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// `GET /client/v4/openapi.json`, serialized once.
#[utoipa::path(
    get,
    path = "/client/v4/openapi.json",
    operation_id = "latchkey-openapi",
    summary = "This document",
    tag = "Health",
    security(()),
    responses((status = 200, description = "latchkey's OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn serve() -> Response {
    let json = SERVED.get().map_or("{}", String::as_str);
    ([(CONTENT_TYPE, "application/json")], json).into_response()
}

/// The document [`serve`] answers with, set once by [`crate::http::routes::router`].
static SERVED: OnceLock<String> = OnceLock::new();

/// Makes `document` the one [`serve`] answers with (the first call wins; every router has the
/// same document).
pub(crate) fn publish(document: &Value) {
    SERVED.get_or_init(|| document.to_string());
}
