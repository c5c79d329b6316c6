//! latchkey's server: Cloudflare's API v4 token endpoints on axum, and the `latchkey` command.
//!
//! - [`http`]: the router (every route listed once, in [`http::routes`]), the handlers, the
//!   extractors, what a caller may do ([`http::authz`], against the evaluator in
//!   latchkey-core), the error envelope and the OpenAPI document.
//! - [`auth`]: who is calling (bearer authentication, the client's address) and rate limits.
//! - [`caches`]: the token cache, the membership cache and the batched last-use times.
//! - [`leaks`]: leak response (GitHub's secret scanning and reports of leaked secrets).
//! - [`mail`]: email to people (a token owner told of a leak), through SMTP.
//! - [`serve`]: `latchkey serve`: start-up, the connection loop, background tasks.
//! - [`cli`]: the other commands, their settings, export/import and the API client commands.
//!
//! Request path: connection loop ([`serve::connections`]) -> router -> [`auth::Principal`]
//! extractor -> handler -> [`http::authz`] -> store -> envelope JSON. Every failure is an
//! [`http::error::ApiError`]. ARCHITECTURE.md at the repository's root draws the whole map.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod caches;
pub mod cli;
pub mod http;
pub mod leaks;
pub mod logs;
pub mod mail;
pub(crate) mod metrics;
pub(crate) mod per_thread;
pub mod serve;
pub mod state;

pub use http::routes::router;
pub use state::{AppState, Limits};
