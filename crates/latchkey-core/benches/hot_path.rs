//! Micro-benchmarks of the per-request work in latchkey-core: parsing and hashing a
//! presented secret, and evaluating a token. `cargo bench -p latchkey-core`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use latchkey_core::catalogue::permissions::ACCOUNT_TOKEN_READ;
use latchkey_core::{
    evaluate, Catalogue, Id, Request, ResourceKey, ResourceKind, Secret, SecretKind, Token,
};
use time::OffsetDateTime;

fn token(policies: serde_json::Value, condition: serde_json::Value) -> Token {
    let now = OffsetDateTime::now_utc();
    Token {
        id: Id::random(),
        owner: latchkey_core::Owner::Account(Id::random()),
        name: "bench".into(),
        status: latchkey_core::Status::Active,
        issued_on: now,
        modified_on: now,
        last_used_on: None,
        not_before: None,
        expires_on: None,
        policies: serde_json::from_value(policies).unwrap(),
        condition: serde_json::from_value(condition).unwrap(),
        revision: 0,
        exposure: None,
    }
}

fn secrets(c: &mut Criterion) {
    let secret = Secret::generate(SecretKind::User);
    let text = secret.expose().to_owned();
    c.bench_function("secret parse + sha256", |b| {
        b.iter(|| Secret::parse(black_box(&text)).unwrap().0.hash())
    });
    c.bench_function("secret parse (malformed checksum)", |b| {
        let broken = format!("{}0", &text[..text.len() - 1]);
        b.iter(|| Secret::parse(black_box(&broken)).is_err())
    });
}

fn evaluator(c: &mut Criterion) {
    let catalogue = Catalogue::builtin();
    let account = "023e105f4ecef8ad9ca31a8372d0c353";
    let simple = token(
        serde_json::json!([{"id": Id::random(), "effect": "allow",
            "permission_groups": [{"id": "eb56a6953c034b9d97dd838155666f06"}],
            "resources": {format!("com.cloudflare.api.account.{account}"): "*"}}]),
        serde_json::json!({}),
    );
    // Ten policies, nested resources, a deny and an address condition: a heavy token.
    let mut policies: Vec<serde_json::Value> = (0..8)
        .map(|i| serde_json::json!({"id": Id::random(), "effect": "allow",
            "permission_groups": [{"id": "82e64a83756745bbbb1c9c2701bf816b"}, {"id": "c8fed203ed3043cba015a93ad1616f1f"}],
            "resources": {format!("com.cloudflare.api.account.zone.z{i}"): "*",
                          format!("com.cloudflare.api.account.a{i}"): {"com.cloudflare.api.account.zone.*": "*"}}}))
        .collect();
    policies.push(serde_json::json!({"id": Id::random(), "effect": "deny",
        "permission_groups": [{"id": "eb56a6953c034b9d97dd838155666f06"}],
        "resources": {"com.cloudflare.api.account.blocked": "*"}}));
    policies.push(serde_json::json!({"id": Id::random(), "effect": "allow",
        "permission_groups": [{"id": "eb56a6953c034b9d97dd838155666f06"}],
        "resources": {"com.cloudflare.api.account.*": "*"}}));
    let heavy = token(
        serde_json::Value::Array(policies),
        serde_json::json!({"request_ip": {"in": ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"], "not_in": ["10.9.0.0/16"]}}),
    );
    let chain = [ResourceKey::specific(ResourceKind::Account, account)];
    let request = Request {
        permission: ACCOUNT_TOKEN_READ,
        chain: &chain,
    };
    let ip = "10.1.2.3".parse().unwrap();
    let now = OffsetDateTime::now_utc();
    c.bench_function("evaluate: one policy", |b| {
        b.iter(|| evaluate(&catalogue, black_box(&simple), &request, ip, now))
    });
    c.bench_function(
        "evaluate: ten policies, nested, deny, address condition",
        |b| b.iter(|| evaluate(&catalogue, black_box(&heavy), &request, ip, now)),
    );
}

criterion_group!(benches, secrets, evaluator);
criterion_main!(benches);
