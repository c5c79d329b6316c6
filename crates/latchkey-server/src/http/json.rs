//! [`Json`], the type of every JSON answer.

use axum::http::header::CONTENT_TYPE;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::http::error::ApiError;

/// Room reserved for an answer before serialising it: a verify or authorize envelope fits, so
/// the hot paths serialise without growing the buffer (axum's `Json` starts at 128 bytes,
/// and growing it measured about 3% of verify's time).
const INITIAL_CAPACITY: usize = 512;

/// A JSON answer, `application/json`; a value that cannot be serialised (none of latchkey's
/// can) becomes a Cloudflare-style 500 rather than axum's plain-text one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(INITIAL_CAPACITY);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                body,
            )
                .into_response(),
            Err(error) => ApiError::internal(error).into_response(),
        }
    }
}
