//! The token cache: every authenticated request looks its secret's hash up here first, so a
//! hit does no database I/O.
//!
//! - Two levels: secret hash -> token id, and token id -> the token with the hash it was
//!   read under. A hit needs both and the hashes to match (compared in constant time), so
//!   an entry left behind by a roll or an eviction can only miss, never answer wrongly.
//! - Bounded (least recently used out first) and re-read at least every [`TOKEN_TTL`], a
//!   bound on staleness should a change bypass this process.
//! - Unknown hashes are remembered for [`UNKNOWN_TTL`] (bounded), so a flood of garbage
//!   tokens does not reach the database at full rate. A secret is random and hashed, so no
//!   real token can be mistaken for one of these.
//! - Every write path (update, status change, roll, delete) calls [`TokenCache::forget`]
//!   after its commit. A read that started before an invalidation does not insert what it
//!   read (the epoch guard), so a stale token cannot slip back in behind a write.
//! - With several nodes on PostgreSQL, every node follows the database's change feed
//!   ([`crate::state::AppState::follow`]): a change on any node drops the token here too, and a lost
//!   feed connection drops everything.
//! - Expiry needs no invalidation: status, time window and address are judged per request.
//!
//! The maps are quick_cache's sharded caches: reads take no lock shared by all requests, and
//! an entry costs little beyond the token itself (see "Performance" in the README).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_core::{Id, SecretHash, Token};
use latchkey_store::{Store, StoreError};
use quick_cache::sync::Cache;

use crate::metrics::CacheResult;

/// Longest a cached token is used before it is read again.
pub const TOKEN_TTL: Duration = Duration::from_secs(30);
/// How long an unknown hash is remembered.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// How many unknown hashes are remembered at most.
pub const UNKNOWN_CAPACITY: usize = 100_000;

#[derive(Clone)]
struct Cached {
    hash: SecretHash,
    token: Arc<Token>,
    fetched: Instant,
}

/// Cached token lookups by secret hash.
pub struct TokenCache {
    /// `None` when caching is off (capacity 0).
    maps: Option<Maps>,
    epoch: AtomicU64,
}

struct Maps {
    ids: Cache<[u8; 32], Id>,
    tokens: Cache<Id, Cached>,
    unknown: Cache<[u8; 32], Instant>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("tokens", &self.len())
            .finish()
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0 turns caching off).
    pub fn new(capacity: u64) -> Self {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        TokenCache {
            maps: (capacity > 0).then(|| Maps {
                ids: Cache::new(capacity),
                tokens: Cache::new(capacity),
                unknown: Cache::new(UNKNOWN_CAPACITY),
            }),
            epoch: AtomicU64::new(0),
        }
    }

    /// The token whose secret hashes to `hash`, from the cache or else from `store`.
    pub async fn lookup(
        &self,
        store: &dyn Store,
        hash: &SecretHash,
    ) -> Result<Option<Arc<Token>>, StoreError> {
        let Some(maps) = &self.maps else {
            crate::metrics::cache_lookup(CacheResult::Miss);
            return Ok(store.token_by_hash(hash).await?.map(Arc::new));
        };
        let key = *hash.as_bytes();
        let cached = maps.ids.get(&key).and_then(|id| maps.tokens.get(&id));
        if let Some(cached) = cached {
            if cached.hash == *hash && cached.fetched.elapsed() < TOKEN_TTL {
                crate::metrics::cache_lookup(CacheResult::Hit);
                return Ok(Some(cached.token));
            }
        }
        if maps
            .unknown
            .get(&key)
            .is_some_and(|at| at.elapsed() < UNKNOWN_TTL)
        {
            crate::metrics::cache_lookup(CacheResult::KnownUnknown);
            return Ok(None);
        }
        crate::metrics::cache_lookup(CacheResult::Miss);
        let epoch = self.epoch.load(Ordering::Acquire);
        let fetched = Instant::now();
        let found = store.token_by_hash(hash).await?.map(Arc::new);
        // Only what was read after the last invalidation may be kept.
        if self.epoch.load(Ordering::Acquire) == epoch {
            match &found {
                Some(token) => {
                    maps.ids.insert(key, token.id);
                    maps.tokens.insert(
                        token.id,
                        Cached {
                            hash: *hash,
                            token: Arc::clone(token),
                            fetched,
                        },
                    );
                }
                None => maps.unknown.insert(key, fetched),
            }
        }
        Ok(found)
    }

    /// Drops token `id`, under whatever secret it was cached; call after its change is
    /// committed.
    pub fn forget(&self, id: Id) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(maps) = &self.maps {
            maps.tokens.remove(&id);
        }
    }

    /// Drops everything cached (changes may have been missed).
    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(maps) = &self.maps {
            maps.ids.clear();
            maps.tokens.clear();
            maps.unknown.clear();
        }
    }

    /// How many tokens are cached.
    pub fn len(&self) -> usize {
        self.maps.as_ref().map_or(0, |maps| maps.tokens.len())
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use latchkey_core::{AuditEntry, AuditEvent, Owner, Secret, SecretKind};
    use latchkey_store::{Account, AuditQuery, ListQuery, NewAdmin, Page, User};
    use std::sync::atomic::AtomicUsize;
    use time::OffsetDateTime;

    /// A store holding one token (whose owner is a member of every account), counting
    /// lookups, and able to run a write "concurrently" with a lookup (between the read and
    /// the cache insert).
    pub(crate) struct OneToken {
        pub token: Token,
        pub lookups: AtomicUsize,
        pub during_lookup: Option<Arc<TokenCache>>,
    }

    #[async_trait::async_trait]
    impl Store for OneToken {
        async fn token_by_hash(&self, _: &SecretHash) -> Result<Option<Token>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if let Some(cache) = &self.during_lookup {
                cache.forget(self.token.id);
            }
            Ok(Some(self.token.clone()))
        }
        async fn create_user(&self, _: &User) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn list_users(&self) -> Result<Vec<User>, StoreError> {
            unreachable!()
        }
        async fn count_users(&self) -> Result<u64, StoreError> {
            unreachable!()
        }
        async fn create_account(&self, _: &Account) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn list_accounts(&self) -> Result<Vec<Account>, StoreError> {
            unreachable!()
        }
        async fn user(&self, _: Id) -> Result<Option<User>, StoreError> {
            unreachable!()
        }
        async fn account(&self, _: Id) -> Result<Option<Account>, StoreError> {
            unreachable!()
        }
        async fn add_member(&self, _: Id, _: Id, _: OffsetDateTime) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn remove_member(&self, _: Id, _: Id) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn list_members(&self, _: Id) -> Result<Vec<User>, StoreError> {
            unreachable!()
        }
        async fn accounts_of(&self, _: Id) -> Result<Vec<Account>, StoreError> {
            unreachable!()
        }
        async fn is_member(&self, _: Id, _: Id) -> Result<bool, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            Ok(true)
        }
        async fn insert_token(
            &self,
            _: &Token,
            _: &SecretHash,
            _: u64,
            _: &AuditEvent,
        ) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn get_token(&self, _: Owner, _: Id) -> Result<Option<Token>, StoreError> {
            unreachable!()
        }
        async fn list_tokens(&self, _: Owner, _: &ListQuery) -> Result<Page<Token>, StoreError> {
            unreachable!()
        }
        async fn update_token(&self, _: &Token, _: &AuditEvent) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn roll_token(
            &self,
            _: Owner,
            _: Id,
            _: u64,
            _: &SecretHash,
            _: &AuditEvent,
        ) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn export_tokens(
            &self,
            _: u64,
            _: u64,
        ) -> Result<Vec<(u64, Token, SecretHash)>, StoreError> {
            unreachable!()
        }
        async fn delete_token(&self, _: Owner, _: Id, _: &AuditEvent) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn import_tokens(
            &self,
            _: &[(Token, SecretHash)],
            _: &AuditEvent,
        ) -> Result<u64, StoreError> {
            unreachable!()
        }
        async fn record_last_used(&self, _: &[(Id, OffsetDateTime)]) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn create_admin(&self, _: &NewAdmin, _: &AuditEvent) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn append_audit(&self, _: &AuditEvent) -> Result<(), StoreError> {
            unreachable!()
        }
        async fn list_audit(
            &self,
            _: Owner,
            _: &AuditQuery,
        ) -> Result<Page<AuditEntry>, StoreError> {
            unreachable!()
        }
        async fn audit_entries(&self, _: u64, _: u64) -> Result<Vec<AuditEntry>, StoreError> {
            unreachable!()
        }
        async fn ping(&self) -> Result<(), StoreError> {
            unreachable!()
        }
    }

    pub(crate) fn token() -> Token {
        Token::new(Owner::User(Id::random()), "t", OffsetDateTime::now_utc())
    }

    #[tokio::test]
    async fn hits_do_not_reach_the_store() {
        let cache = TokenCache::new(10);
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: None,
        };
        let hash = Secret::generate(SecretKind::User).hash();
        for _ in 0..5 {
            assert!(cache.lookup(&store, &hash).await.unwrap().is_some());
        }
        assert_eq!(store.lookups.load(Ordering::SeqCst), 1);
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_read_racing_an_invalidation_is_not_kept() {
        let cache = Arc::new(TokenCache::new(10));
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: Some(Arc::clone(&cache)),
        };
        let hash = Secret::generate(SecretKind::User).hash();
        cache.lookup(&store, &hash).await.unwrap();
        cache.lookup(&store, &hash).await.unwrap();
        assert_eq!(
            store.lookups.load(Ordering::SeqCst),
            2,
            "the raced read was not cached"
        );
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn capacity_zero_turns_caching_off() {
        let cache = TokenCache::new(0);
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: None,
        };
        let hash = Secret::generate(SecretKind::User).hash();
        cache.lookup(&store, &hash).await.unwrap();
        cache.lookup(&store, &hash).await.unwrap();
        assert_eq!(store.lookups.load(Ordering::SeqCst), 2);
    }
}
