//! A typed async client for Cloudflare's API v4 token endpoints: one method per operation,
//! for user tokens and account tokens alike, plus the identity, audit-log and authorize
//! endpoints of latchkey. It talks to latchkey or to Cloudflare itself (the default base
//! URL, [`CLOUDFLARE_BASE_URL`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), latchkey_client::Error> {
//! use latchkey_client::{Client, Family};
//!
//! let client = Client::new("cfut_...").with_base_url("http://127.0.0.1:8787/client/v4");
//! let me = client.verify(&Family::User).await?;
//! println!("token {} is {:?}", me.id, me.status);
//! # Ok(()) }
//! ```
//!
//! # Lists
//!
//! Every list has a method for one page ([`Client::list`], [`Client::accounts`],
//! [`Client::audit_logs`]) and two streams that fetch the following pages lazily, as they
//! are polled: one of items ([`Client::tokens`], [`Client::all_accounts`],
//! [`Client::all_audit_logs`], each an [`Items`]) and one of whole pages with their paging
//! information, for progress ([`Client::token_pages`], [`Client::account_pages`],
//! [`Client::audit_log_pages`], each a [`Pages`]). Consume them with
//! [`futures_util::StreamExt`] or [`futures_util::TryStreamExt`]:
//!
//! ```no_run
//! # async fn demo() -> Result<(), latchkey_client::Error> {
//! use futures_util::TryStreamExt;
//! use latchkey_client::{Client, Family, ListQuery};
//!
//! let client = Client::from_env().expect("LATCHKEY_URL and LATCHKEY_TOKEN");
//! let mut tokens = client.tokens(&Family::User, ListQuery::default());
//! while let Some(token) = tokens.try_next().await? {
//!     println!("{} {}", token.id, token.name);
//! }
//! # Ok(()) }
//! ```
//!
//! # Retries
//!
//! Answers 429 and 5xx, and connection failures, are retried according to the client's
//! [`RetryPolicy`] (by default 3 times, with exponential backoff and jitter, or after the
//! answer's `Retry-After`). Requests that may have been applied are not repeated: see
//! [`RetryPolicy`] for the rules.

#![warn(missing_docs)]

mod audit;
mod authorize;
mod client;
mod env;
mod error;
mod family;
mod identity;
mod page;
mod query;
mod retry;
mod tokens;
mod transport;

pub use client::Client;
pub use env::EnvError;
pub use error::Error;
pub use family::Family;
pub use page::{Items, Page, Pages};
pub use query::{AccountQuery, AuditQuery, GroupFilter, ListQuery};
pub use retry::RetryPolicy;

/// Cloudflare's API base URL, the default.
pub const CLOUDFLARE_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
