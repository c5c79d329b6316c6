//! The envelope every response is wrapped in (docs/cloudflare-tokens.md §1.2).

use serde::{Deserialize, Serialize};

/// `{"success", "errors", "messages", "result", "result_info"?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Envelope<T> {
    /// `true` on success, `false` with a non-empty `errors` otherwise.
    pub success: bool,
    /// Why the request failed.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub errors: Vec<ErrorDetail>,
    /// Informational messages.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub messages: Vec<Message>,
    /// The payload; `null` on failure.
    pub result: Option<T>,
    /// Paging information, on list responses only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
}

impl<T> Envelope<T> {
    /// A successful envelope around `result`.
    pub fn ok(result: T) -> Self {
        Envelope {
            success: true,
            errors: Vec::new(),
            messages: Vec::new(),
            result: Some(result),
            result_info: None,
        }
    }

    /// A failed envelope with these errors and `result: null`.
    pub fn failure(errors: Vec<ErrorDetail>) -> Self {
        Envelope {
            success: false,
            errors,
            messages: Vec::new(),
            result: None,
            result_info: None,
        }
    }
}

/// One error: a Cloudflare code (>= 1000), a sentence, and optionally the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Cloudflare error code.
    pub code: u32,
    /// A sentence for people.
    pub message: String,
    /// The field at fault, as a JSON pointer into the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ErrorSource>,
    /// Underlying causes, as Cloudflare nests them (e.g. 6003 > 6111).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub error_chain: Vec<ErrorDetail>,
}

/// `{"pointer": "/policies/0/effect"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorSource {
    /// A JSON pointer (RFC 6901) into the body, or `/query/<name>`, `/header/<name>`.
    pub pointer: String,
}

/// An informational message, e.g. verify's "This API Token is valid and active".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Cloudflare message code.
    pub code: u32,
    /// The sentence.
    pub message: String,
    /// Always `null` in the responses latchkey writes, as Cloudflare's verify does.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// Paging information of a list response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultInfo {
    /// The page returned (from 1).
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items on this page.
    pub count: u64,
    /// Items on all pages.
    pub total_count: u64,
    /// Number of pages (at least 1).
    #[serde(default)]
    pub total_pages: u64,
}
