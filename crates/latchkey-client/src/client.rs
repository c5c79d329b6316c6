//! The client: where it sends requests, with which token, and how it retries.

use crate::{RetryPolicy, CLOUDFLARE_BASE_URL};

/// A client bound to one bearer token. Its `Debug` output hides the token.
///
/// Cloning is cheap and clones share one connection pool.
///
/// ```
/// use latchkey_client::Client;
///
/// let client = Client::new("cfut_secret").with_base_url("http://127.0.0.1:8787/client/v4/");
/// assert_eq!(client.base_url(), "http://127.0.0.1:8787/client/v4");
/// assert!(!format!("{client:?}").contains("cfut_secret"));
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) base_url: String,
    pub(crate) token: String,
    pub(crate) retry: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("token", &"[REDACTED]")
            .field("retry", &self.retry)
            .finish()
    }
}

impl Client {
    /// A client for Cloudflare's API with this API token and the default [`RetryPolicy`].
    pub fn new(token: impl Into<String>) -> Self {
        Client {
            http: reqwest::Client::new(),
            base_url: CLOUDFLARE_BASE_URL.to_owned(),
            token: token.into(),
            retry: RetryPolicy::default(),
        }
    }

    /// Uses another base URL, such as `http://127.0.0.1:8787/client/v4` for latchkey. A
    /// trailing `/` is ignored.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The same client authenticating with another token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Client {
            token: token.into(),
            ..self.clone()
        }
    }

    /// Retries failed requests according to `policy` ([`RetryPolicy::none`] never does).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sends requests with this `reqwest` client, e.g. one with timeouts or a proxy.
    ///
    /// ```
    /// use std::time::Duration;
    /// use latchkey_client::Client;
    ///
    /// let http = reqwest::Client::builder()
    ///     .timeout(Duration::from_secs(10))
    ///     .build()
    ///     .expect("a TLS backend");
    /// let client = Client::new("cfut_...").with_http_client(http);
    /// # let _ = client;
    /// ```
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The retry policy.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Where latchkey's own endpoints live: the base URL without its trailing `/client/v4`.
    pub(crate) fn latchkey_root(&self) -> &str {
        self.base_url
            .strip_suffix("/client/v4")
            .unwrap_or(&self.base_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let client = Client::new("cfut_secretsecret");
        assert!(!format!("{client:?}").contains("secretsecret"));
        assert!(!format!("{:?}", client.with_token("other_secret")).contains("other_secret"));
    }

    #[test]
    fn latchkey_root_strips_the_v4_prefix() {
        let client = Client::new("t").with_base_url("http://h:1/client/v4/");
        assert_eq!(client.latchkey_root(), "http://h:1");
        let client = client.with_base_url("http://h:1/behind/proxy/client/v4");
        assert_eq!(client.latchkey_root(), "http://h:1/behind/proxy");
        let client = client.with_base_url("http://h:1");
        assert_eq!(client.latchkey_root(), "http://h:1");
    }
}
