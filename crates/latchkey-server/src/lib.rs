//! latchkey's HTTP service: Cloudflare's API v4 token endpoints on axum.
//!
//! Request path: router ([`app`]) -> [`auth::Principal`] extractor (header, secret format,
//! SHA-256, store, status/time/address) -> handler -> [`authz`] (the evaluator in
//! latchkey-core) -> store -> envelope JSON. Every failure is an [`error::ApiError`].

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod cache;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod convert;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod http;
pub mod last_used;
pub mod logs;
pub mod memberships;
pub mod metrics;
pub mod observe;
pub mod openapi;
pub mod per_thread;
pub mod permission_groups_file;
pub mod rate_limit;
pub mod remote;
pub mod reply;
pub mod request_id;
pub mod serve;
pub mod state;
pub mod transfer;

pub use app::router;
pub use state::{AppState, Limits};
