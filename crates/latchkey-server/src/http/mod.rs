//! The HTTP service: routes, handlers, what they extract from a request and how they answer.

pub(crate) mod authz;
pub mod codes;
pub(crate) mod dashboard;
pub mod error;
pub(crate) mod extract;
pub(crate) mod handlers;
pub(crate) mod json;
pub(crate) mod observe;
pub mod openapi;
pub(crate) mod request_id;
pub mod routes;
pub(crate) mod wire;
