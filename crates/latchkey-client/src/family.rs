//! Which token family a call addresses, and the paths that follow from it.

use crate::transport::segment;

/// Which token family a call addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// `/user/tokens`: the calling user's tokens.
    User,
    /// `/accounts/{account_id}/tokens`: this account's tokens.
    Account(String),
}

impl Family {
    /// `/user` or `/accounts/{account_id}`.
    fn owner_path(&self) -> String {
        match self {
            Family::User => "/user".to_owned(),
            Family::Account(id) => format!("/accounts/{}", segment(id)),
        }
    }

    /// The family's token collection.
    pub(crate) fn path(&self) -> String {
        format!("{}/tokens", self.owner_path())
    }

    /// One token of the family.
    pub(crate) fn token_path(&self, id: &str) -> String {
        format!("{}/{}", self.path(), segment(id))
    }

    /// The audit log about the family's tokens.
    pub(crate) fn audit_path(&self) -> String {
        format!("{}/audit_logs", self.owner_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_family() {
        assert_eq!(Family::User.path(), "/user/tokens");
        assert_eq!(Family::Account("a1".into()).path(), "/accounts/a1/tokens");
        assert_eq!(Family::User.audit_path(), "/user/audit_logs");
        assert_eq!(
            Family::Account("a1".into()).audit_path(),
            "/accounts/a1/audit_logs"
        );
    }

    #[test]
    fn ids_cannot_leave_their_path_segment() {
        assert_eq!(
            Family::Account("a/b?c".into()).token_path("x#y"),
            "/accounts/a%2Fb%3Fc/tokens/x%23y"
        );
    }
}
