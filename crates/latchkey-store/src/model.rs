//! Plain records the store reads and writes besides tokens.

use latchkey_core::{Id, SecretHash, Token};
use time::OffsetDateTime;

/// A person who owns user tokens and is a member of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// 32 lowercase hex.
    pub id: Id,
    /// Unique email address.
    pub email: String,
    /// Creation time.
    pub created_on: OffsetDateTime,
}

/// An account, owner of account tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// 32 lowercase hex.
    pub id: Id,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_on: OffsetDateTime,
}

/// Where a store keeps a token: its row's number, fixed for as long as the token exists and
/// never given to another. A write that names it finds the row directly instead of through
/// the id index (on SQLite, with 1,000,000 tokens stored, that made the last-use flush about
/// three times cheaper: README, "Performance").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowId(pub i64);

/// A token as [`crate::Store::token_by_hash`] finds it: the token and where it is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// The token.
    pub token: Token,
    /// Its row, for [`LastUse`].
    pub row: RowId,
}

/// A token's latest use, for [`crate::Store::record_last_used`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastUse {
    /// The token's row, as read with it.
    pub row: RowId,
    /// The token's id: a use is recorded only on the row that still holds this token.
    pub id: Id,
    /// When it was used.
    pub at: OffsetDateTime,
}

impl LastUse {
    /// `uses` as a batch is written: in row order, and one per token, its latest. Sorts in
    /// place.
    pub fn latest_per_token(mut uses: Vec<LastUse>) -> Vec<LastUse> {
        uses.sort_unstable_by_key(|used| (used.row, used.id, std::cmp::Reverse(used.at)));
        uses.dedup_by_key(|used| (used.row, used.id));
        uses
    }

    /// Whether `uses` already is as [`LastUse::latest_per_token`] makes it.
    pub fn is_latest_per_token(uses: &[LastUse]) -> bool {
        uses.windows(2)
            .all(|pair| (pair[0].row, pair[0].id) < (pair[1].row, pair[1].id))
    }
}

/// Sort direction of a token list (by issue time, then issue order).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first (the default).
    #[default]
    Asc,
    /// Newest first: exactly the reverse of `Asc`.
    Desc,
}

/// Which page of a token list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    /// From 1.
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Sort direction.
    pub direction: Direction,
    /// Whether expired tokens are listed.
    pub include_expired: bool,
    /// The instant that decides which tokens are expired.
    pub now: OffsetDateTime,
}

/// Which page of an owner's audit entries to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditQuery {
    /// From 1.
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// `Desc` (newest first) or `Asc`.
    pub direction: Direction,
    /// Only entries at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only entries before this instant.
    pub before: Option<OffsetDateTime>,
}

/// One page of results and the total across pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// This page's items.
    pub items: Vec<T>,
    /// Matching items on all pages.
    pub total: u64,
}

/// Everything `create_admin` writes at once.
#[derive(Debug, Clone)]
pub struct NewAdmin {
    /// The new user.
    pub user: User,
    /// The new account (the user becomes its member).
    pub account: Account,
    /// The admin token, owned by the user.
    pub token: Token,
    /// Hash of the admin token's secret.
    pub hash: SecretHash,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_keeps_each_tokens_latest_use_in_row_order() {
        let (a, b) = (Id::random(), Id::random());
        let at = |seconds| OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(seconds);
        let used = |row, id, seconds| LastUse {
            row: RowId(row),
            id,
            at: at(seconds),
        };
        let uses = vec![used(9, b, 5), used(2, a, 1), used(9, b, 7), used(2, a, 3)];
        assert!(!LastUse::is_latest_per_token(&uses));
        let batch = LastUse::latest_per_token(uses);
        assert_eq!(batch, vec![used(2, a, 3), used(9, b, 7)]);
        assert!(LastUse::is_latest_per_token(&batch));
    }
}
