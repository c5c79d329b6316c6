//! One handler per operation; each serves both families (the path says which).

pub mod audit_logs;
pub mod authorize;
pub mod health;
pub mod identity;
pub mod leaks;
pub mod permission_groups;
pub mod tokens;
pub mod verify;

use crate::http::error::ApiError;

/// 404 for any path no route matches.
pub async fn no_route() -> ApiError {
    ApiError::no_route()
}

/// 405 for a known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}
