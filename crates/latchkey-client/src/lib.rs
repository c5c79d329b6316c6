//! A typed async client for Cloudflare's API v4 token endpoints: one method per operation,
//! for user tokens and account tokens alike. It talks to latchkey or to Cloudflare itself
//! (the default base URL).
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

use latchkey_api::{
    CreateTokenRequest, DeletedToken, Envelope, ErrorDetail, PermissionGroup, ResultInfo,
    SecretValue, Token, UpdateTokenRequest, VerifiedToken,
};
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Cloudflare's API base URL, the default.
pub const CLOUDFLARE_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// Which token family a call addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// `/user/tokens`: the calling user's tokens.
    User,
    /// `/accounts/{account_id}/tokens`: this account's tokens.
    Account(String),
}

impl Family {
    fn path(&self) -> String {
        match self {
            Family::User => "/user/tokens".to_owned(),
            Family::Account(id) => format!("/accounts/{id}/tokens"),
        }
    }
}

/// Query of a list call. `Default` is page 1 of 20, oldest first, without expired tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListQuery {
    /// Page, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// 5 to 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u64>,
    /// `asc` or `desc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Include expired tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_expired: Option<bool>,
}

/// Filters of the permission-group catalogue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupFilter {
    /// Exact group name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exact scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Paging information, when the server sent it.
    pub info: Option<ResultInfo>,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API answered with a failure envelope.
    #[error("HTTP {status}: {}", describe(errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// The envelope's errors, with Cloudflare codes.
        errors: Vec<ErrorDetail>,
    },
    /// The request could not be sent or its answer read.
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
}

fn describe(errors: &[ErrorDetail]) -> String {
    errors
        .iter()
        .map(|e| format!("{} {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A client bound to one bearer token. Its `Debug` output hides the token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    /// A client for Cloudflare's API with this API token.
    pub fn new(token: impl Into<String>) -> Self {
        Client {
            http: reqwest::Client::new(),
            base_url: CLOUDFLARE_BASE_URL.to_owned(),
            token: token.into(),
        }
    }

    /// Uses another base URL, such as `http://127.0.0.1:8787/client/v4` for latchkey.
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

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<(T, Option<ResultInfo>), Error> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await?;
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            status,
            detail: e.to_string(),
        })?;
        if !envelope.success || !(200..300).contains(&status) {
            return Err(Error::Api {
                status,
                errors: envelope.errors,
            });
        }
        let result = envelope.result.ok_or_else(|| Error::Decode {
            status,
            detail: "success without a result".into(),
        })?;
        Ok((result, envelope.result_info))
    }

    /// `GET .../tokens`: one page.
    pub async fn list(&self, family: &Family, query: &ListQuery) -> Result<Page<Token>, Error> {
        let (items, info) = self
            .send(self.request(Method::GET, &family.path()).query(query))
            .await?;
        Ok(Page { items, info })
    }

    /// `POST .../tokens`: the answer carries the secret in `value`.
    pub async fn create(&self, family: &Family, body: &CreateTokenRequest) -> Result<Token, Error> {
        let request = self.request(Method::POST, &family.path()).json(body);
        Ok(self.send(request).await?.0)
    }

    /// `GET .../tokens/{id}`
    pub async fn get(&self, family: &Family, id: &str) -> Result<Token, Error> {
        let path = format!("{}/{id}", family.path());
        Ok(self.send(self.request(Method::GET, &path)).await?.0)
    }

    /// `PUT .../tokens/{id}`: a full replacement.
    pub async fn update(
        &self,
        family: &Family,
        id: &str,
        body: &UpdateTokenRequest,
    ) -> Result<Token, Error> {
        let path = format!("{}/{id}", family.path());
        Ok(self
            .send(self.request(Method::PUT, &path).json(body))
            .await?
            .0)
    }

    /// `DELETE .../tokens/{id}`
    pub async fn delete(&self, family: &Family, id: &str) -> Result<DeletedToken, Error> {
        let path = format!("{}/{id}", family.path());
        Ok(self.send(self.request(Method::DELETE, &path)).await?.0)
    }

    /// `PUT .../tokens/{id}/value`: returns the new secret.
    pub async fn roll(&self, family: &Family, id: &str) -> Result<SecretValue, Error> {
        let path = format!("{}/{id}/value", family.path());
        let request = self
            .request(Method::PUT, &path)
            .json(&serde_json::json!({}));
        Ok(self.send(request).await?.0)
    }

    /// `GET .../tokens/verify`: the client's own token.
    pub async fn verify(&self, family: &Family) -> Result<VerifiedToken, Error> {
        let path = format!("{}/verify", family.path());
        Ok(self.send(self.request(Method::GET, &path)).await?.0)
    }

    /// `GET .../tokens/permission_groups`
    pub async fn permission_groups(
        &self,
        family: &Family,
        filter: &GroupFilter,
    ) -> Result<Vec<PermissionGroup>, Error> {
        let path = format!("{}/permission_groups", family.path());
        Ok(self
            .send(self.request(Method::GET, &path).query(filter))
            .await?
            .0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_token() {
        let client = Client::new("cfut_secretsecret");
        assert!(!format!("{client:?}").contains("secretsecret"));
    }

    #[test]
    fn paths_follow_the_family() {
        assert_eq!(Family::User.path(), "/user/tokens");
        assert_eq!(Family::Account("a1".into()).path(), "/accounts/a1/tokens");
    }
}
