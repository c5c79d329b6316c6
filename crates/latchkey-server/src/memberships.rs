//! Cached answers to "is user U a member of account A?", asked whenever a user token acts on
//! an account (token calls on the account, authorize questions naming it). A hit does no
//! database I/O.
//!
//! Both answers are cached, for at most [`MEMBERSHIP_TTL`], bounded in number. Membership
//! changes come from the CLI (`latchkey accounts add-member / remove-member`), another
//! process, so the store's change feed invalidates them: on PostgreSQL each change is
//! announced; on SQLite a change counter is polled (see `Store::watch`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_core::Id;
use latchkey_store::{Store, StoreError};
use quick_cache::sync::Cache;

/// Longest a cached answer is used before it is asked again.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(30);

/// Cached membership answers, keyed by (account, user).
pub struct MembershipCache {
    /// `None` when caching is off (capacity 0).
    answers: Option<Cache<(Id, Id), (bool, Instant)>>,
    epoch: AtomicU64,
}

impl std::fmt::Debug for MembershipCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MembershipCache")
            .field("answers", &self.answers.as_ref().map_or(0, Cache::len))
            .finish()
    }
}

impl MembershipCache {
    /// A cache of at most `capacity` answers (0 turns caching off).
    pub fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        MembershipCache {
            answers: (capacity > 0).then(|| Cache::new(capacity)),
            epoch: AtomicU64::new(0),
        }
    }

    /// Whether `user` is a member of `account`, from the cache or else from `store`.
    pub async fn is_member(
        &self,
        store: &dyn Store,
        account: Id,
        user: Id,
    ) -> Result<bool, StoreError> {
        let Some(answers) = &self.answers else {
            return store.is_member(account, user).await;
        };
        if let Some((member, at)) = answers.get(&(account, user)) {
            if at.elapsed() < MEMBERSHIP_TTL {
                return Ok(member);
            }
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let asked = Instant::now();
        let member = store.is_member(account, user).await?;
        // Only an answer read after the last invalidation may be kept.
        if self.epoch.load(Ordering::Acquire) == epoch {
            answers.insert((account, user), (member, asked));
        }
        Ok(member)
    }

    /// Drops the answer for one membership.
    pub fn forget(&self, account: Id, user: Id) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(answers) = &self.answers {
            answers.remove(&(account, user));
        }
    }

    /// Drops every answer.
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(answers) = &self.answers {
            answers.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::cache::tests::{token, OneToken};

    #[tokio::test]
    async fn answers_are_cached_until_forgotten() {
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: None,
            distinct: false,
        };
        let cache = MembershipCache::new(10);
        let (account, user) = (Id::random(), Id::random());
        for _ in 0..3 {
            assert!(cache.is_member(&store, account, user).await.unwrap());
        }
        assert_eq!(
            store.lookups.load(Ordering::SeqCst),
            1,
            "hits do not reach the store"
        );
        cache.forget(account, user);
        cache.is_member(&store, account, user).await.unwrap();
        cache.clear();
        cache.is_member(&store, account, user).await.unwrap();
        assert_eq!(store.lookups.load(Ordering::SeqCst), 3);
        let off = MembershipCache::new(0);
        off.is_member(&store, account, user).await.unwrap();
        off.is_member(&store, account, user).await.unwrap();
        assert_eq!(
            store.lookups.load(Ordering::SeqCst),
            5,
            "capacity 0 turns caching off"
        );
    }
}
