//! Query strings of the list calls. Absent fields are left out, so the server's defaults
//! apply; the server validates the values and names the offending parameter.

use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Query of a token list. `Default` is page 1 of 20, oldest first, without expired tokens.
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

/// Query of `GET /accounts`. `Default` is page 1 of 20, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccountQuery {
    /// Page, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// 5 to 50.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u64>,
    /// `asc` or `desc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
}

/// Query of `GET .../audit_logs`. `Default` is page 1 of 100, newest first, of all time.
///
/// ```
/// use latchkey_client::AuditQuery;
/// use time::macros::datetime;
///
/// let last_week = AuditQuery {
///     since: Some(datetime!(2026-01-01 00:00 UTC)),
///     before: Some(datetime!(2026-01-08 00:00 UTC)),
///     ..AuditQuery::default()
/// };
/// # let _ = last_week;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditQuery {
    /// Page, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// 1 to 1000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_page: Option<u64>,
    /// `desc` or `asc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Only entries at or after this time (sent as RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339")]
    pub since: Option<OffsetDateTime>,
    /// Only entries before this time (sent as RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "rfc3339")]
    pub before: Option<OffsetDateTime>,
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

/// Full precision, unlike `latchkey_api::timestamp` which rounds to the second: a bound
/// rounded down would move `before` earlier than asked.
fn rfc3339<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => t
            .format(&Rfc3339)
            .map_err(serde::ser::Error::custom)?
            .serialize(s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn query_string(query: &impl Serialize) -> String {
        let url = reqwest::Client::new()
            .get("http://localhost/")
            .query(query)
            .build()
            .unwrap()
            .url()
            .clone();
        url.query().unwrap_or("").to_owned()
    }

    #[test]
    fn absent_fields_are_left_out() {
        assert_eq!(query_string(&AuditQuery::default()), "");
        assert_eq!(query_string(&AccountQuery::default()), "");
    }

    #[test]
    fn audit_bounds_are_rfc3339() {
        let query = AuditQuery {
            per_page: Some(1000),
            since: Some(datetime!(2026-01-01 00:00 UTC)),
            before: Some(datetime!(2026-01-02 12:30:00.5 +02:00)),
            ..AuditQuery::default()
        };
        assert_eq!(
            query_string(&query),
            "per_page=1000&since=2026-01-01T00%3A00%3A00Z&before=2026-01-02T12%3A30%3A00.5%2B02%3A00"
        );
    }
}
