//! Cached answers to "is user U a member of account A?", asked whenever a user token acts on
//! an account (token calls on the account, authorize questions naming it). A hit does no
//! database I/O.
//!
//! Both answers are cached, for at most [`MEMBERSHIP_TTL`], bounded in number. Membership
//! changes come from the CLI (`latchkey accounts add-member / remove-member`), another
//! process, so the store's change feed invalidates them: on PostgreSQL each change is
//! announced; on SQLite a change counter is polled (see `Store::watch`).

use parking_lot::{Mutex, MutexGuard};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use latchkey_core::Id;
use latchkey_store::{Store, StoreError};
use quick_cache::sync::Cache;

/// What the cache asks on a miss: the one store method it needs.
pub trait MembershipSource: Sync {
    /// Whether `user` is a member of `account`.
    fn is_member(
        &self,
        account: Id,
        user: Id,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl MembershipSource for dyn Store + '_ {
    async fn is_member(&self, account: Id, user: Id) -> Result<bool, StoreError> {
        Store::is_member(self, account, user).await
    }
}

/// Longest a cached answer is used before it is asked again.
pub const MEMBERSHIP_TTL: Duration = Duration::from_secs(30);

/// Cached membership answers, keyed by (account, user).
pub struct MembershipCache {
    /// `None` when caching is off (capacity 0).
    answers: Option<Cache<(Id, Id), (bool, Instant)>>,
    /// Bumped by every invalidation: an answer asked in an older epoch is not kept.
    epoch: AtomicU64,
    /// Held while an answer is checked against the epoch and kept, and while an invalidation
    /// bumps it and drops answers, so no answer asked before an invalidation lands after it.
    changes: Mutex<()>,
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
            changes: Mutex::new(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.changes.lock()
    }

    /// Whether `user` is a member of `account`, from the cache or else from `store`.
    pub async fn is_member<S: MembershipSource + ?Sized>(
        &self,
        store: &S,
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
        let _changes = self.lock();
        if self.epoch.load(Ordering::Acquire) == epoch {
            answers.insert((account, user), (member, asked));
        }
        Ok(member)
    }

    /// Drops the answer for one membership.
    pub fn forget(&self, account: Id, user: Id) {
        let _changes = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(answers) = &self.answers {
            answers.remove(&(account, user));
        }
    }

    /// Drops every answer.
    pub fn clear(&self) {
        let _changes = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(answers) = &self.answers {
            answers.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    use super::*;

    /// Every user is a member of every account, or of none; counts the questions, and can
    /// run an invalidation while a question is being answered.
    #[derive(Default)]
    struct Members {
        member: std::sync::atomic::AtomicBool,
        asked: AtomicUsize,
        during: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    }

    impl MembershipSource for Members {
        async fn is_member(&self, _: Id, _: Id) -> Result<bool, StoreError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let member = self.member.load(Ordering::SeqCst);
            let during = self.during.lock().take();
            if let Some(during) = during {
                during();
            }
            Ok(member)
        }
    }

    #[tokio::test]
    async fn answers_are_cached_until_forgotten() {
        let store = Members::default();
        store.member.store(true, Ordering::SeqCst);
        let cache = MembershipCache::new(10);
        let (account, user) = (Id::random(), Id::random());
        for _ in 0..3 {
            assert!(cache.is_member(&store, account, user).await.unwrap());
        }
        assert_eq!(
            store.asked.load(Ordering::SeqCst),
            1,
            "hits do not reach the store"
        );
        cache.forget(account, user);
        cache.is_member(&store, account, user).await.unwrap();
        cache.clear();
        cache.is_member(&store, account, user).await.unwrap();
        assert_eq!(store.asked.load(Ordering::SeqCst), 3);
        let off = MembershipCache::new(0);
        off.is_member(&store, account, user).await.unwrap();
        off.is_member(&store, account, user).await.unwrap();
        assert_eq!(
            store.asked.load(Ordering::SeqCst),
            5,
            "capacity 0 turns caching off"
        );
    }

    #[tokio::test]
    async fn an_answer_asked_before_a_removal_is_not_kept() {
        let store = Arc::new(Members::default());
        store.member.store(true, Ordering::SeqCst);
        let cache = Arc::new(MembershipCache::new(10));
        let (account, user) = (Id::random(), Id::random());
        let (removing, forgetting) = (Arc::clone(&store), Arc::clone(&cache));
        *store.during.lock() = Some(Box::new(move || {
            removing.member.store(false, Ordering::SeqCst);
            forgetting.forget(account, user);
        }));
        assert!(
            cache.is_member(&*store, account, user).await.unwrap(),
            "asked before"
        );
        assert!(
            !cache.is_member(&*store, account, user).await.unwrap(),
            "removed"
        );
    }
}
