//! Authorisation of token-API calls, and the bound on what a new token may grant.
//!
//! A call is allowed when the caller's policies allow the operation's permission on the
//! family's resource (`com.cloudflare.api.user.<id>` or `com.cloudflare.api.account.<id>`)
//! *and* the caller's owner holds that resource: a user token acts only for its own user and
//! on accounts its user is a member of; an account token only on its own account.

use latchkey_core::catalogue::permissions::*;
use latchkey_core::{
    evaluate_policies, Effect, Id, Owner, Policy, Request, ResourceId, ResourceKind,
};

use crate::auth::Principal;
use crate::error::{pointer_segment, ApiError};
use crate::extract::Family;
use crate::state::AppState;

/// A token-API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// List tokens.
    List,
    /// Read one token or the permission-group catalogue.
    Read,
    /// Create a token.
    Create,
    /// Update or roll a token.
    Update,
    /// Delete a token.
    Delete,
}

fn permission(family: Family, op: Op) -> &'static str {
    match (family, op) {
        (Family::User, Op::List) => USER_TOKEN_LIST,
        (Family::User, Op::Read) => USER_TOKEN_READ,
        (Family::User, Op::Create) => USER_TOKEN_CREATE,
        (Family::User, Op::Update) => USER_TOKEN_UPDATE,
        (Family::User, Op::Delete) => USER_TOKEN_DELETE,
        (Family::Account(_), Op::List) => ACCOUNT_TOKEN_LIST,
        (Family::Account(_), Op::Read) => ACCOUNT_TOKEN_READ,
        (Family::Account(_), Op::Create) => ACCOUNT_TOKEN_CREATE,
        (Family::Account(_), Op::Update) => ACCOUNT_TOKEN_UPDATE,
        (Family::Account(_), Op::Delete) => ACCOUNT_TOKEN_DELETE,
    }
}

/// Checks that `principal` may perform `op` in `family`; returns the owner of the tokens
/// the operation acts on. Refusals are 403 9109 whether or not the account exists.
pub async fn authorize(
    state: &AppState,
    principal: &Principal,
    family: Family,
    op: Op,
) -> Result<Owner, ApiError> {
    let owner = match family {
        Family::User => Owner::User(principal.user().ok_or_else(ApiError::unauthorized)?),
        Family::Account(account) => Owner::Account(account),
    };
    let chain = [owner.resource()];
    let request = Request {
        permission: permission(family, op),
        chain: &chain,
    };
    if !evaluate_policies(&principal.token.policies, &state.catalogue, &request).allowed {
        return Err(ApiError::unauthorized());
    }
    let holds = match (principal.token.owner, owner) {
        (Owner::User(caller), Owner::User(target)) => caller == target,
        (Owner::User(user), Owner::Account(account)) => {
            state.store.is_member(account, user).await?
        }
        (Owner::Account(caller), Owner::Account(target)) => caller == target,
        (Owner::Account(_), Owner::User(_)) => false,
    };
    if !holds {
        return Err(ApiError::unauthorized());
    }
    Ok(owner)
}

/// Checks that every resource named by an allow policy is one `owner` holds: its own user,
/// accounts it is a member of (or, for an account, itself), R2 buckets of those accounts.
/// Wildcards are accepted; they are bounded by the owner's holdings when evaluated. Zones
/// are not modelled by latchkey, so zone keys are accepted as given.
pub async fn check_grantable(
    state: &AppState,
    owner: Owner,
    policies: &[Policy],
) -> Result<(), ApiError> {
    let accounts: Vec<Id> = match owner {
        Owner::User(user) => state.store.accounts_of(user).await?,
        Owner::Account(account) => vec![account],
    };
    let holds_account = |id: &str| accounts.iter().any(|a| a.to_string() == id);
    for (index, policy) in policies.iter().enumerate() {
        if policy.effect == Effect::Deny {
            continue;
        }
        for (outer, value) in &policy.resources.0 {
            let inner: &[_] = match value {
                latchkey_core::ResourceValue::All => &[],
                latchkey_core::ResourceValue::Nested(inner) => inner,
            };
            for key in std::iter::once(outer).chain(inner) {
                let ResourceId::Specific(id) = &key.id else {
                    continue;
                };
                let held = match (key.kind, owner) {
                    (ResourceKind::User, Owner::User(user)) => user.to_string() == *id,
                    (ResourceKind::User, Owner::Account(_)) => false,
                    (ResourceKind::Account, _) => holds_account(id),
                    (ResourceKind::R2Bucket, _) => id.split('_').next().is_some_and(holds_account),
                    (ResourceKind::Zone, _) => true,
                };
                if !held {
                    return Err(ApiError::unauthorized_grant(format!(
                        "/policies/{index}/resources/{}",
                        pointer_segment(&outer.to_string())
                    )));
                }
            }
        }
    }
    Ok(())
}
