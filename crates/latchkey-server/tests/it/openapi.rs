//! The OpenAPI document: a snapshot (any change is a reviewed change), the served copy,
//! compatibility with Cloudflare's own document, and every documented operation routed.
//!
//! `cloudflare-tokens.openapi.json` beside this file is the subset of Cloudflare's
//! published OpenAPI document that latchkey implements; `docs/cloudflare-tokens.md` is the
//! protocol reference that goes with it.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{json, Value};

use crate::kit::*;

const CLOUDFLARE: &str = include_str!("cloudflare-tokens.openapi.json");

fn ours() -> Value {
    latchkey_server::http::routes::document()
}

#[test]
fn the_document_is_the_reviewed_one() {
    insta::assert_json_snapshot!("openapi", ours());
}

#[tokio::test]
async fn the_document_is_served_without_a_token() {
    let app = TestApp::new().await;
    let request = Request::get("/client/v4/openapi.json")
        .body(Body::empty())
        .unwrap();
    let served = app.send(request, LOCALHOST).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.body, ours());
}

/// A document and the `$ref`s in it.
struct Doc<'a> {
    root: &'a Value,
}

impl<'a> Doc<'a> {
    /// What a `$ref` points at (one step), or the schema itself.
    fn follow(&self, schema: &'a Value) -> &'a Value {
        match schema.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let pointer = reference.strip_prefix('#').expect("a local $ref");
                self.root.pointer(pointer).expect("the $ref resolves")
            }
            None => schema,
        }
    }

    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        while schema.get("$ref").is_some() {
            schema = self.follow(schema);
        }
        schema
    }

    /// The alternatives of a schema (`oneOf` / `anyOf` / `allOf` flattened), resolved. A
    /// `$ref` with sibling keywords (Cloudflare's `required` beside a `$ref`) counts as both.
    fn branches(&self, schema: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        if schema.get("$ref").is_some() {
            out.push(schema);
            out.extend(self.branches(self.follow(schema)));
            return out;
        }
        out.push(schema);
        for key in ["oneOf", "anyOf", "allOf"] {
            for branch in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.extend(self.branches(branch));
            }
        }
        out
    }

    /// The JSON types a schema admits, `integer` spelt `number` and `null` left out; empty
    /// when it says nothing (any value).
    fn types(&self, schema: &'a Value) -> BTreeSet<String> {
        let mut types = BTreeSet::new();
        for branch in self.branches(schema) {
            let named: Vec<&str> = match branch.get("type") {
                Some(Value::String(t)) => vec![t.as_str()],
                Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                _ if branch.get("properties").is_some() => vec!["object"],
                _ => vec![],
            };
            for t in named {
                match t {
                    "null" => {}
                    "integer" => {
                        types.insert("number".to_owned());
                    }
                    other => {
                        types.insert(other.to_owned());
                    }
                }
            }
        }
        types
    }

    /// Every named property of any branch, with its schema (first branch wins).
    fn properties(&self, schema: &'a Value) -> Vec<(&'a str, &'a Value)> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for branch in self.branches(schema) {
            for (name, property) in branch
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if seen.insert(name.as_str()) {
                    out.push((name.as_str(), property));
                }
            }
        }
        out
    }

    /// The required properties; for a request, less those marked `readOnly` (required in
    /// responses only, as OpenAPI defines it).
    fn required(&self, schema: &'a Value, flow: Flow) -> BTreeSet<&'a str> {
        let properties = self.properties(schema);
        let read_only = |name: &str| {
            properties
                .iter()
                .any(|(n, p)| *n == name && self.branches(p).iter().any(|b| b["readOnly"] == true))
        };
        self.branches(schema)
            .into_iter()
            .filter_map(|b| b.get("required").and_then(Value::as_array))
            .flatten()
            .filter_map(Value::as_str)
            .filter(|name| flow == Flow::Response || !read_only(name))
            .collect()
    }

    fn sub(&self, schema: &'a Value, key: &str) -> Vec<&'a Value> {
        self.branches(schema)
            .into_iter()
            .filter_map(|b| b.get(key))
            .filter(|s| s.is_object())
            .collect()
    }

    fn enumeration(&self, schema: &'a Value) -> Option<BTreeSet<String>> {
        self.branches(schema)
            .into_iter()
            .find_map(|b| b.get("enum").and_then(Value::as_array))
            .map(|values| values.iter().map(Value::to_string).collect())
    }
}

/// Which way compatibility runs: what latchkey answers must be something Cloudflare's
/// clients accept; what Cloudflare's clients send must be something latchkey accepts.
#[derive(Clone, Copy, PartialEq)]
enum Flow {
    Response,
    Request,
}

/// Optional fields of Cloudflare's errors and messages that latchkey never sends: it has
/// no documentation pages to link, and its messages concern no field.
const NOT_PRODUCED: [&str; 2] = ["documentation_url", "source"];

fn compatible(
    cf: &Doc,
    theirs: &Value,
    lk: &Doc,
    ours: &Value,
    flow: Flow,
    at: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let (t, o) = (cf.types(theirs), lk.types(ours));
    let (narrow, wide) = match flow {
        Flow::Response => (&o, &t),
        Flow::Request => (&t, &o),
    };
    if !narrow.is_empty() && !wide.is_empty() && !narrow.is_subset(wide) {
        problems.push(format!("{at}: types {narrow:?} do not fit {wide:?}"));
        return problems;
    }
    if let (Some(t_enum), Some(o_enum)) = (cf.enumeration(theirs), lk.enumeration(ours)) {
        let (narrow, wide) = match flow {
            Flow::Response => (&o_enum, &t_enum),
            Flow::Request => (&t_enum, &o_enum),
        };
        if !narrow.is_subset(wide) {
            problems.push(format!("{at}: values {narrow:?} do not fit {wide:?}"));
        }
    }
    let our_properties = lk.properties(ours);
    for (name, their_property) in cf.properties(theirs) {
        match our_properties.iter().find(|(n, _)| *n == name) {
            Some((_, our_property)) => problems.extend(compatible(
                cf,
                their_property,
                lk,
                our_property,
                flow,
                &format!("{at}.{name}"),
            )),
            // latchkey reads a body's unknown fields without complaint (and ignores them).
            None if flow == Flow::Request && ours["additionalProperties"] != false => {}
            None if flow == Flow::Response && NOT_PRODUCED.contains(&name) => {}
            None => problems.push(format!("{at}.{name}: missing")),
        }
    }
    let (t_required, o_required) = (cf.required(theirs, flow), lk.required(ours, flow));
    let missing: Vec<_> = match flow {
        Flow::Response => t_required.difference(&o_required).collect(),
        Flow::Request => o_required.difference(&t_required).collect(),
    };
    if !missing.is_empty() {
        problems.push(format!("{at}: required differs on {missing:?}"));
    }
    for key in ["items", "additionalProperties"] {
        let (t_subs, o_subs) = (cf.sub(theirs, key), lk.sub(ours, key));
        if let (Some(t_sub), Some(o_sub)) = (t_subs.first(), o_subs.first()) {
            if t_subs.len() == 1 {
                problems.extend(compatible(cf, t_sub, lk, o_sub, flow, &format!("{at}[]")));
            } else {
                // Alternatives (Cloudflare's two resource forms): our one schema must cover
                // the union of their types.
                let union: BTreeSet<String> = t_subs.iter().flat_map(|s| cf.types(s)).collect();
                if lk.types(o_sub) != union {
                    problems.push(format!("{at}[]: {:?} is not {union:?}", lk.types(o_sub)));
                }
            }
        }
    }
    problems
}

fn json_schema<'a>(doc: &Doc<'a>, holder: &'a Value) -> &'a Value {
    &doc.resolve(holder)["content"]["application/json"]["schema"]
}

/// Every operation of Cloudflare's document exists in latchkey's under `/client/v4`, with
/// the same parameters (place, requirement, compatible type), a request body where theirs
/// has one whose fields latchkey accepts, and responses a Cloudflare client can read.
#[test]
fn every_cloudflare_operation_is_in_ours_and_compatible() {
    let cf_root: Value = serde_json::from_str(CLOUDFLARE).unwrap();
    let lk_root = ours();
    let (cf, lk) = (Doc { root: &cf_root }, Doc { root: &lk_root });
    let mut problems = Vec::new();
    let mut checked = 0;
    for (path, item) in cf_root["paths"].as_object().unwrap() {
        for (method, theirs) in item.as_object().unwrap() {
            let at = format!("{} {path}", method.to_uppercase());
            let Some(ours) = lk_root["paths"][format!("/client/v4{path}")].get(method.as_str())
            else {
                problems.push(format!("{at}: no such operation"));
                continue;
            };
            checked += 1;
            if ours["operationId"] != theirs["operationId"] {
                problems.push(format!(
                    "{at}: operationId {} is not {}",
                    ours["operationId"], theirs["operationId"]
                ));
            }
            let our_parameters: Vec<&Value> = ours["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| lk.resolve(p))
                .collect();
            for parameter in theirs["parameters"].as_array().into_iter().flatten() {
                let parameter = cf.resolve(parameter);
                let name = parameter["name"].as_str().unwrap();
                let Some(mine) = our_parameters
                    .iter()
                    .find(|p| p["name"] == parameter["name"] && p["in"] == parameter["in"])
                else {
                    problems.push(format!("{at}: parameter {name} missing"));
                    continue;
                };
                let required = |p: &Value| p["required"].as_bool().unwrap_or(false);
                if required(parameter) != required(mine) {
                    problems.push(format!("{at}: parameter {name} required differs"));
                }
                problems.extend(compatible(
                    &cf,
                    &parameter["schema"],
                    &lk,
                    &mine["schema"],
                    Flow::Request,
                    &format!("{at} parameter {name}"),
                ));
            }
            if let Some(body) = theirs.get("requestBody") {
                match ours.get("requestBody") {
                    None => problems.push(format!("{at}: no request body")),
                    Some(mine) => problems.extend(compatible(
                        &cf,
                        json_schema(&cf, body),
                        &lk,
                        json_schema(&lk, mine),
                        Flow::Request,
                        &format!("{at} body"),
                    )),
                }
            }
            for (status, response) in theirs["responses"].as_object().unwrap() {
                match ours["responses"].get(status.as_str()) {
                    None => problems.push(format!("{at}: no {status} response")),
                    Some(mine) => problems.extend(compatible(
                        &cf,
                        json_schema(&cf, response),
                        &lk,
                        json_schema(&lk, mine),
                        Flow::Response,
                        &format!("{at} {status}"),
                    )),
                }
            }
        }
    }
    assert_eq!(checked, 16, "Cloudflare's document has 16 operations");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself finds what it is for: a missing field, a wrong type, a missing
/// parameter.
#[test]
fn the_compatibility_check_catches_differences() {
    let theirs = json!({"type": "object", "required": ["id"], "properties": {
        "id": {"type": "string"}, "count": {"type": "number"}, "tags": {"type": "array", "items": {"type": "string"}}}});
    let ours_ok = json!({"type": "object", "required": ["id", "count"], "properties": {
        "id": {"type": "string"}, "count": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}, "extra": {}}});
    let root = json!({});
    let doc = Doc { root: &root };
    assert!(compatible(&doc, &theirs, &doc, &ours_ok, Flow::Response, "").is_empty());
    let mut missing = ours_ok.clone();
    missing["properties"]
        .as_object_mut()
        .unwrap()
        .remove("count");
    assert!(!compatible(&doc, &theirs, &doc, &missing, Flow::Response, "").is_empty());
    let mut wrong = ours_ok.clone();
    wrong["properties"]["tags"]["items"] = json!({"type": "boolean"});
    assert!(!compatible(&doc, &theirs, &doc, &wrong, Flow::Response, "").is_empty());
    let mut optional = ours_ok.clone();
    optional["required"] = json!([]);
    assert!(!compatible(&doc, &theirs, &doc, &optional, Flow::Response, "").is_empty());
}

/// Each documented operation reaches a handler: called with the admin token and the
/// bootstrap account, none answers "no route" (7003) or "method not allowed" (7001).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = TestApp::new().await;
    let doc = ours();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let uri = path
                .replace("{account_id}", &app.account_id())
                .replace("{token_id}", &app.admin.token_id.to_string());
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let request = Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header("authorization", format!("Bearer {}", app.admin_token()))
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let response = app.send_raw(request, LOCALHOST).await;
            let status = response.status();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            // /metrics answers in Prometheus' text format; everything else in JSON.
            let code = serde_json::from_slice::<Value>(&bytes)
                .map_or(0, |body| body["errors"][0]["code"].as_u64().unwrap_or(0));
            assert!(
                ![7001, 7003].contains(&code) && status != 405,
                "{method} {uri}: {status} {}",
                String::from_utf8_lossy(&bytes)
            );
            count += 1;
        }
    }
    assert_eq!(count, 28);
}
