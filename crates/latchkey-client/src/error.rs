//! What a call can fail with.

use std::time::Duration;

use latchkey_api::ErrorDetail;

/// What can go wrong. No variant's `Display` or `Debug` output contains the client's token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with a failure envelope (after any retries).
    #[error("HTTP {status}: {}", describe(errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// The envelope's errors, with Cloudflare codes.
        errors: Vec<ErrorDetail>,
        /// The answer's `Retry-After`, when it had one in seconds (on 429 and 503).
        retry_after: Option<Duration>,
    },
    /// The request could not be sent or its answer read (after any retries).
    #[error("transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The answer was not the envelope expected.
    #[error("unexpected response (HTTP {status}): {detail}")]
    Decode {
        /// HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
}

impl Error {
    /// The first Cloudflare error code, for API errors.
    ///
    /// ```
    /// use latchkey_api::ErrorDetail;
    /// use latchkey_client::Error;
    ///
    /// let error = Error::Api {
    ///     status: 404,
    ///     errors: vec![ErrorDetail {
    ///         code: 7003,
    ///         message: "Could not route".into(),
    ///         source: None,
    ///         error_chain: vec![],
    ///     }],
    ///     retry_after: None,
    /// };
    /// assert_eq!((error.status(), error.code()), (Some(404), Some(7003)));
    /// ```
    pub fn code(&self) -> Option<u32> {
        match self {
            Error::Api { errors, .. } => errors.first().map(|e| e.code),
            _ => None,
        }
    }

    /// The HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Decode { status, .. } => Some(*status),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
        }
    }

    /// How long the server asked to wait before trying again, for API errors that said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn describe(errors: &[ErrorDetail]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}
