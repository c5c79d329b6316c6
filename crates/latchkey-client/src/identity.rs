//! Who the token acts for: `GET /user` and `GET /accounts`.

use latchkey_api::{Account, User};
use reqwest::Method;

use crate::{AccountQuery, Client, Error, Items, Page, Pages};

impl Client {
    /// `GET /user`: the user a user token belongs to.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// let me = client.user().await?;
    /// println!("{} <{}>", me.id, me.email);
    /// # Ok(()) }
    /// ```
    pub async fn user(&self) -> Result<User, Error> {
        Ok(self.send(self.request(Method::GET, "/user")).await?.0)
    }

    /// `GET /accounts`: one page of the accounts the token may do something on.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::AccountQuery;
    ///
    /// let newest = AccountQuery { direction: Some("desc".into()), ..AccountQuery::default() };
    /// for account in client.accounts(&newest).await?.items {
    ///     println!("{} {}", account.id, account.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn accounts(&self, query: &AccountQuery) -> Result<Page<Account>, Error> {
        let request = self.request(Method::GET, "/accounts").query(query);
        let (items, info) = self.send(request).await?;
        Ok(Page { items, info })
    }

    /// `GET /accounts`, every page from `query.page` on, as a stream of accounts; see
    /// [`Items`].
    pub fn all_accounts(&self, query: AccountQuery) -> Items<Account> {
        self.account_pages(query).items()
    }

    /// `GET /accounts`, every page from `query.page` on, as a stream of pages; see
    /// [`Pages`].
    pub fn account_pages(&self, query: AccountQuery) -> Pages<Account> {
        let client = self.clone();
        Pages::new(query.page.unwrap_or(1), query.per_page, move |page| {
            let client = client.clone();
            let query = AccountQuery {
                page: Some(page),
                ..query.clone()
            };
            async move { client.accounts(&query).await }
        })
    }
}
