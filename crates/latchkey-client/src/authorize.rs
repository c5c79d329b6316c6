//! latchkey's own extension: asking whether the client's token may do something.

use latchkey_api::{AuthorizeRequest, AuthorizeResult};
use reqwest::Method;

use crate::retry::Replay;
use crate::{Client, Error};

impl Client {
    /// `POST /latchkey/v1/authorize`: whether the client's token may use a permission group
    /// on a resource. A refusal is a successful answer with `allowed: false`.
    ///
    /// This endpoint is latchkey's own, outside Cloudflare's `/client/v4` API: its URL is
    /// the base URL with a trailing `/client/v4` removed, followed by
    /// `/latchkey/v1/authorize` (`http://127.0.0.1:8787/client/v4` gives
    /// `http://127.0.0.1:8787/latchkey/v1/authorize`; a base URL not ending in
    /// `/client/v4` is used as it is). Cloudflare itself has no such endpoint.
    ///
    /// Although a `POST`, it changes nothing, so it is retried like a `GET`.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_api::AuthorizeRequest;
    ///
    /// let question = AuthorizeRequest {
    ///     permission_group: "DNS Read".into(),
    ///     resource: "com.cloudflare.api.account.zone.eb78d65290b24279ba6f44721b3ea3c4".into(),
    ///     parents: vec!["com.cloudflare.api.account.0123456789abcdef0123456789abcdef".into()],
    ///     explain: true,
    /// };
    /// let answer = client.authorize(&question).await?;
    /// println!("{}: {}", answer.allowed, answer.reason);
    /// # Ok(()) }
    /// ```
    pub async fn authorize(&self, question: &AuthorizeRequest) -> Result<AuthorizeResult, Error> {
        let url = format!("{}/latchkey/v1/authorize", self.latchkey_root());
        let request = self.request_to(Method::POST, url).json(question).build()?;
        Ok(self.send_replaying(request, Replay::Safe).await?.0)
    }
}
