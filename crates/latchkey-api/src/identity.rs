//! Who a token acts for: `GET /user` and `GET /accounts`, in Cloudflare's shape where
//! latchkey has the data (it keeps no names, settings or roles beyond these).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::timestamp;

/// `GET /client/v4/user`: the user a user token belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// 32 lowercase hex.
    pub id: String,
    /// The user's email address.
    pub email: String,
    /// When the user was created.
    #[serde(with = "timestamp")]
    pub created_on: OffsetDateTime,
}

/// One item of `GET /client/v4/accounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    /// 32 lowercase hex.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Always `standard`: latchkey has no account types.
    #[serde(rename = "type", default = "standard")]
    pub kind: String,
    /// When the account was created.
    #[serde(with = "timestamp")]
    pub created_on: OffsetDateTime,
}

fn standard() -> String {
    "standard".to_owned()
}
