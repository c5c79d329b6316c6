//! `POST /latchkey/v1/secret-scanning/github` (GitHub's secret scanning partner program) and
//! `POST /latchkey/v1/leaks` (your own scanners). What a report does is
//! [`crate::leaks::report`].

use axum::extract::State;
use axum::http::HeaderMap;
use latchkey_api::{Envelope, GithubFeedback, GithubMatch, LeakReceipt, LeakReport};
use latchkey_core::Reporter;

use crate::http::codes;
use crate::http::error::ApiError;
use crate::http::extract::{parse_json, ClientIp, JsonBody, RawBody};
use crate::http::json::Json;
use crate::http::openapi::FailureResponse;
use crate::leaks::github::SignatureError;
use crate::leaks::{self, Report};
use crate::state::AppState;

/// Matches GitHub may send in one alert.
const MAX_GITHUB_MATCHES: usize = 1000;
/// Secrets one report may hold.
const MAX_REPORTED_SECRETS: usize = 100;
/// `source` of a report, in characters.
const MAX_SOURCE: usize = 200;
/// `url` of a report, in characters.
const MAX_URL: usize = 2000;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::invalid_signature(format!("The {name} header is required")))
}

/// `POST /latchkey/v1/secret-scanning/github`: a GitHub secret scanning alert.
#[utoipa::path(
    post,
    path = "/latchkey/v1/secret-scanning/github",
    operation_id = "latchkey-github-secret-scanning",
    summary = "GitHub secret scanning alert",
    description = "GitHub's secret scanning partner program calls this with the secrets it found, signed with one of GitHub's keys (`GITHUB-PUBLIC-KEY-IDENTIFIER`, `GITHUB-PUBLIC-KEY-SIGNATURE`: ECDSA P-256 / SHA-256, base64 DER, over the exact body). Each latchkey secret's token is disabled and marked exposed. The answer is GitHub's feedback array, not an envelope.",
    tag = "Leak response",
    params(
        ("GITHUB-PUBLIC-KEY-IDENTIFIER" = String, Header, description = "The id of the GitHub key that signed the body."),
        ("GITHUB-PUBLIC-KEY-SIGNATURE" = String, Header, description = "The signature: base64 of an ECDSA P-256 / SHA-256 signature in DER."),
    ),
    request_body = Vec<GithubMatch>,
    responses(
        (status = 200, description = "Feedback on each match", body = Vec<GithubFeedback>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn github(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Vec<GithubFeedback>>, ApiError> {
    let key_id = header(&headers, "GITHUB-PUBLIC-KEY-IDENTIFIER")?;
    let signature = header(&headers, "GITHUB-PUBLIC-KEY-SIGNATURE")?;
    state
        .github_keys
        .verify(key_id, signature, &body)
        .await
        .map_err(|e| match e {
            SignatureError::KeysUnavailable { .. } => {
                ApiError::upstream_unavailable(format!("{e}; nothing was changed, retry later"))
            }
            other => ApiError::invalid_signature(format!(
                "The alert's signature cannot be accepted: {other}; nothing was changed"
            )),
        })?;
    let matches: Vec<GithubMatch> = parse_json(&body)?;
    if matches.len() > MAX_GITHUB_MATCHES {
        return Err(ApiError::invalid(
            codes::OVER_LIMIT,
            format!("An alert holds at most {MAX_GITHUB_MATCHES} matches"),
            "",
        ));
    }
    let mut feedback = Vec::with_capacity(matches.len());
    for found in matches {
        let report = Report {
            reporter: Reporter::Github,
            source: found.source.clone(),
            url: found.url.clone(),
            client_ip,
        };
        let verdict = leaks::report(&state, &found.token, &report).await?;
        let label = if verdict.is_ours() {
            "true_positive"
        } else {
            "false_positive"
        };
        crate::metrics::leak_reported("github", label);
        feedback.push(GithubFeedback {
            token_raw: found.token,
            token_type: found.kind,
            label: label.to_owned(),
        });
    }
    Ok(Json(feedback))
}

/// `POST /latchkey/v1/leaks`: secrets found in the open, reported by whoever found them.
#[utoipa::path(
    post,
    path = "/latchkey/v1/leaks",
    operation_id = "latchkey-report-leaks",
    summary = "Report leaked secrets",
    description = "Holding a secret is the proof, so this needs no other credential: each latchkey secret's token is disabled and marked exposed. The answer is the same whether or not any secret was latchkey's, and each request counts against the failed-authentication limit of the caller's address.",
    tag = "Leak response",
    request_body = LeakReport,
    responses(
        (status = 200, description = "The report was received", body = Envelope<LeakReceipt>),
        (status = "4XX", response = inline(FailureResponse)),
    ),
)]
pub async fn report(
    State(state): State<AppState>,
    ClientIp(client_ip): ClientIp,
    JsonBody(body): JsonBody<LeakReport>,
) -> Result<Json<Envelope<LeakReceipt>>, ApiError> {
    state.rates.refuse_if_blocked(client_ip)?;
    if body.secrets.len() > MAX_REPORTED_SECRETS {
        return Err(ApiError::invalid(
            codes::OVER_LIMIT,
            format!("A report holds at most {MAX_REPORTED_SECRETS} secrets"),
            "/secrets",
        ));
    }
    for (field, text, limit) in [
        ("source", &body.source, MAX_SOURCE),
        ("url", &body.url, MAX_URL),
    ] {
        if text.chars().count() > limit || text.chars().any(char::is_control) {
            return Err(ApiError::invalid(
                codes::OVER_LIMIT,
                format!("{field} is at most {limit} characters, without control characters"),
                format!("/{field}"),
            ));
        }
    }
    // Counted before the work, so that a refused address learns nothing from timing either.
    state.rates.record_failure(client_ip)?;
    let report = Report {
        reporter: Reporter::Report,
        source: body.source,
        url: body.url,
        client_ip,
    };
    for secret in &body.secrets {
        let verdict = leaks::report(&state, secret, &report).await?;
        let label = if verdict.is_ours() {
            "true_positive"
        } else {
            "false_positive"
        };
        crate::metrics::leak_reported("report", label);
    }
    Ok(Json(Envelope::ok(LeakReceipt {
        received: body.secrets.len() as u64,
    })))
}
