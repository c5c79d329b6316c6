//! Authorisation of token-API calls, and the bound on what a new token may grant.
//!
//! A call is allowed when the caller's policies allow the operation's permission on the
//! family's resource (`com.cloudflare.api.user.<id>` or `com.cloudflare.api.account.<id>`)
//! *and* the caller's owner holds that resource: a user token acts only for its own user and
//! on accounts its user is a member of; an account token only on its own account.

use latchkey_core::catalogue::permissions::*;
use latchkey_core::{
    evaluate_policies, Effect, Id, Owner, Policy, Request, ResourceId, ResourceKey, ResourceKind,
};

use crate::auth::Principal;
use crate::http::error::{pointer_segment, ApiError};
use crate::http::extract::Family;
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
    if !evaluate_policies(&principal.token.policies, &state.catalogue, &request).allowed
        || !owner_holds(state, principal.token.owner, &chain).await?
    {
        return Err(ApiError::unauthorized());
    }
    Ok(owner)
}

/// Whether `owner` holds every resource of `chain` that latchkey models: a user holds
/// itself and the accounts it is a member of (and their R2 buckets); an account holds
/// itself and its buckets. Zones are not modelled and count as held; their account, when
/// given as a parent, is checked. A wildcard key is never held.
pub async fn owner_holds(
    state: &AppState,
    owner: Owner,
    chain: &[ResourceKey],
) -> Result<bool, ApiError> {
    for key in chain {
        let Some(id) = key.specific_id() else {
            return Ok(false);
        };
        let account = match key.kind {
            ResourceKind::User => {
                if !matches!(owner, Owner::User(user) if user.to_string() == id) {
                    return Ok(false);
                }
                continue;
            }
            ResourceKind::Zone => continue,
            ResourceKind::Account => id,
            ResourceKind::R2Bucket => id.split('_').next().unwrap_or_default(),
        };
        let Ok(account) = account.parse::<Id>() else {
            return Ok(false);
        };
        let holds = match owner {
            Owner::Account(own) => own == account,
            Owner::User(user) => {
                state
                    .memberships
                    .is_member(state.store.as_ref(), account, user)
                    .await?
            }
        };
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks that every resource named by an allow policy is one `owner` holds (see
/// [`owner_holds`]). Wildcards are accepted; they are bounded by the owner's holdings when
/// evaluated. Deny policies may name anything.
pub async fn check_grantable(
    state: &AppState,
    owner: Owner,
    policies: &[Policy],
) -> Result<(), ApiError> {
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
                if key.id == ResourceId::Any {
                    continue;
                }
                if !owner_holds(state, owner, std::slice::from_ref(key)).await? {
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
