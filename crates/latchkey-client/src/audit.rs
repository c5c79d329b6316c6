//! The audit log about a family's tokens: `GET .../audit_logs`.

use latchkey_api::AuditLogEntry;
use reqwest::Method;

use crate::{AuditQuery, Client, Error, Family, Items, Page, Pages};

impl Client {
    /// `GET /user/audit_logs` or `GET /accounts/{id}/audit_logs`: one page of the entries
    /// about the family's tokens, newest first by default.
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use latchkey_client::{AuditQuery, Family};
    ///
    /// let query = AuditQuery { per_page: Some(1000), ..AuditQuery::default() };
    /// for entry in client.audit_logs(&Family::User, &query).await?.items {
    ///     println!("{} {} {:?}", entry.when, entry.action.kind, entry.resource.id);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn audit_logs(
        &self,
        family: &Family,
        query: &AuditQuery,
    ) -> Result<Page<AuditLogEntry>, Error> {
        let request = self.request(Method::GET, &family.audit_path()).query(query);
        let (items, info) = self.send(request).await?;
        Ok(Page { items, info })
    }

    /// `GET .../audit_logs`, every page from `query.page` on, as a stream of entries; see
    /// [`Items`].
    ///
    /// ```no_run
    /// # async fn demo(client: latchkey_client::Client) -> Result<(), latchkey_client::Error> {
    /// use futures_util::TryStreamExt;
    /// use latchkey_client::{AuditQuery, Family};
    /// use time::{Duration, OffsetDateTime};
    ///
    /// let query = AuditQuery {
    ///     since: Some(OffsetDateTime::now_utc() - Duration::days(1)),
    ///     ..AuditQuery::default()
    /// };
    /// let mut entries = client.all_audit_logs(&Family::User, query);
    /// while let Some(entry) = entries.try_next().await? {
    ///     if let Some(info) = entries.info() {
    ///         eprint!("\rpage {} of {}", info.page, info.total_pages);
    ///     }
    ///     println!("{} {}", entry.chain.seq, entry.action.kind);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn all_audit_logs(&self, family: &Family, query: AuditQuery) -> Items<AuditLogEntry> {
        self.audit_log_pages(family, query).items()
    }

    /// `GET .../audit_logs`, every page from `query.page` on, as a stream of pages; see
    /// [`Pages`].
    pub fn audit_log_pages(&self, family: &Family, query: AuditQuery) -> Pages<AuditLogEntry> {
        let (client, family) = (self.clone(), family.clone());
        Pages::new(query.page.unwrap_or(1), query.per_page, move |page| {
            let (client, family) = (client.clone(), family.clone());
            let query = AuditQuery {
                page: Some(page),
                ..query.clone()
            };
            async move { client.audit_logs(&family, &query).await }
        })
    }
}
