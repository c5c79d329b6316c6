//! The token endpoints, `.../tokens`, of either family.

use latchkey_api::{
    CreateTokenRequest, DeletedToken, PermissionGroup, SecretValue, Token, UpdateTokenRequest,
    VerifiedToken,
};
use reqwest::Method;

use crate::{Client, Error, Family, GroupFilter, Items, ListQuery, Page, Pages};

impl Client {
    /// `GET .../tokens`: one page.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::{Family, ListQuery};
    ///
    /// let query = ListQuery { per_page: Some(50), include_expired: Some(true), ..ListQuery::default() };
    /// let page = client.list(&Family::User, &query).await?;
    /// println!("{} of {:?}", page.items.len(), page.info.map(|i| i.total_count));
    /// # Ok(()) }
    /// ```
    pub async fn list(&self, family: &Family, query: &ListQuery) -> Result<Page<Token>, Error> {
        let (items, info) = self
            .send(self.request(Method::GET, &family.path()).query(query))
            .await?;
        Ok(Page { items, info })
    }

    /// `GET .../tokens`, every page from `query.page` on, as a stream of tokens; see
    /// [`Items`]. Nothing is fetched until the stream is polled.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use futures_util::TryStreamExt;
    /// use latchkey_client::{Family, ListQuery};
    ///
    /// let mut tokens = client.tokens(&Family::User, ListQuery::default());
    /// while let Some(token) = tokens.try_next().await? {
    ///     println!("{} {:?}", token.name, token.status);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn tokens(&self, family: &Family, query: ListQuery) -> Items<Token> {
        self.token_pages(family, query).items()
    }

    /// `GET .../tokens`, every page from `query.page` on, as a stream of pages; see
    /// [`Pages`].
    pub fn token_pages(&self, family: &Family, query: ListQuery) -> Pages<Token> {
        let (client, family) = (self.clone(), family.clone());
        Pages::new(query.page.unwrap_or(1), query.per_page, move |page| {
            let (client, family) = (client.clone(), family.clone());
            let query = ListQuery {
                page: Some(page),
                ..query.clone()
            };
            async move { client.list(&family, &query).await }
        })
    }

    /// `POST .../tokens`: the answer carries the secret in `value`.
    ///
    /// Not retried after a transport error or a 5xx other than 503, since the token may
    /// have been created; see [`RetryPolicy`](crate::RetryPolicy).
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_api::CreateTokenRequest;
    /// use latchkey_client::Family;
    ///
    /// let body: CreateTokenRequest = serde_json::from_value(serde_json::json!({
    ///     "name": "readonly token",
    ///     "policies": [{
    ///         "effect": "allow",
    ///         "permission_groups": [{"id": "c8fed203ed3043cba015a93ad1616f1f"}],
    ///         "resources": {"com.cloudflare.api.account.zone.*": "*"}
    ///     }]
    /// }))
    /// .expect("a valid body");
    /// let token = client.create(&Family::User, &body).await?;
    /// let secret = token.value.expect("create returns the secret");
    /// println!("{} {}", token.id, secret.expose());
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, family: &Family, body: &CreateTokenRequest) -> Result<Token, Error> {
        let request = self.request(Method::POST, &family.path()).json(body);
        Ok(self.send(request).await?.0)
    }

    /// `GET .../tokens/{id}`
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::Family;
    ///
    /// match client.get(&Family::User, "ed17574386854bf78a67040be0a770b0").await {
    ///     Ok(token) => println!("{:?}", token.status),
    ///     Err(e) if e.status() == Some(404) => println!("no such token"),
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get(&self, family: &Family, id: &str) -> Result<Token, Error> {
        let request = self.request(Method::GET, &family.token_path(id));
        Ok(self.send(request).await?.0)
    }

    /// `PUT .../tokens/{id}`: a full replacement.
    pub async fn update(
        &self,
        family: &Family,
        id: &str,
        body: &UpdateTokenRequest,
    ) -> Result<Token, Error> {
        let request = self.request(Method::PUT, &family.token_path(id)).json(body);
        Ok(self.send(request).await?.0)
    }

    /// `DELETE .../tokens/{id}`
    pub async fn delete(&self, family: &Family, id: &str) -> Result<DeletedToken, Error> {
        let request = self.request(Method::DELETE, &family.token_path(id));
        Ok(self.send(request).await?.0)
    }

    /// `PUT .../tokens/{id}/value`: returns the new secret.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::Family;
    ///
    /// let secret = client.roll(&Family::User, "ed17574386854bf78a67040be0a770b0").await?;
    /// let rolled = client.with_token(secret.expose());
    /// # let _ = rolled;
    /// # Ok(()) }
    /// ```
    pub async fn roll(&self, family: &Family, id: &str) -> Result<SecretValue, Error> {
        let path = format!("{}/value", family.token_path(id));
        let request = self
            .request(Method::PUT, &path)
            .json(&serde_json::json!({}));
        Ok(self.send(request).await?.0)
    }

    /// `GET .../tokens/verify`: the client's own token.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::Family;
    ///
    /// let me = client.verify(&Family::User).await?;
    /// println!("{} expires {:?}", me.id, me.expires_on);
    /// # Ok(()) }
    /// ```
    pub async fn verify(&self, family: &Family) -> Result<VerifiedToken, Error> {
        let path = format!("{}/verify", family.path());
        Ok(self.send(self.request(Method::GET, &path)).await?.0)
    }

    /// `GET .../tokens/permission_groups`
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::{Family, GroupFilter};
    ///
    /// let filter = GroupFilter { name: Some("DNS Read".into()), ..GroupFilter::default() };
    /// for group in client.permission_groups(&Family::User, &filter).await? {
    ///     println!("{} {}", group.id, group.name);
    /// }
    /// # Ok(()) }
    /// ```
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
