//! Leak response on the wire: GitHub's secret scanning alerts and feedback, and latchkey's
//! own report of leaked secrets.

use serde::{Deserialize, Serialize};

/// One match in a GitHub secret scanning alert (the body is an array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubMatch {
    /// The secret found.
    pub token: String,
    /// The secret type GitHub matched (the pattern's name).
    #[serde(rename = "type")]
    pub kind: String,
    /// A link to where it was found.
    #[serde(default)]
    pub url: String,
    /// Where it was found (`content`, `commit`, `pull_request_description`, ...).
    #[serde(default)]
    pub source: String,
}

/// GitHub's feedback on one match (the answer is an array of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GithubFeedback {
    /// The secret, as GitHub sent it.
    pub token_raw: String,
    /// The secret type, as GitHub sent it.
    pub token_type: String,
    /// `true_positive` for a latchkey secret (current or already revoked), else
    /// `false_positive`.
    pub label: String,
}

/// `POST /latchkey/v1/leaks`: secrets found in the open, by your own scanners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LeakReport {
    /// The secrets (at most 100).
    pub secrets: Vec<String>,
    /// Where they were found (a scanner's name, a file, ...), up to 200 characters.
    #[serde(default)]
    pub source: String,
    /// A link to where they were found, up to 2,000 characters.
    #[serde(default)]
    pub url: String,
}

/// The answer to a leak report: the same whether or not any secret was latchkey's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeakReceipt {
    /// How many secrets the report held.
    pub received: u64,
}
