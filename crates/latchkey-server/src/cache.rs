//! The token cache: every authenticated request looks its secret's hash up here first, so a
//! hit does no database I/O.
//!
//! - One map, secret hash -> token: a hit is one lookup. A secret is random and its hash is
//!   SHA-256, so the map's key comparison leaks nothing a caller could use.
//! - A side index, token id -> its secret hash, lets a write drop a token by id. It is touched only
//!   by misses and invalidations, never by a hit, and kept exact: every change to which
//!   tokens the map holds (insert and what it evicts, removal, clearing) is made under the
//!   index's lock.
//! - Bounded (least recently used out first) and re-read at least every `ttl`, a bound on
//!   staleness should a change bypass this process. Each entry is re-read after a random
//!   time between half the `ttl` and all of it, so that tokens first read together (as after
//!   a restart) are not all read again in the same instant.
//! - Unknown hashes are remembered for [`UNKNOWN_TTL`] (bounded), so a flood of garbage
//!   tokens does not reach the database at full rate. A secret is random and hashed, so no
//!   real token can be mistaken for one of these.
//! - Every write path (update, status change, roll, delete) calls [`TokenCache::forget`]
//!   after its commit. A read that started before an invalidation does not keep what it
//!   read (the epoch guard, checked under the index's lock that invalidations take too), so
//!   a stale token cannot slip back in behind a write.
//! - With several nodes on PostgreSQL, every node follows the database's change feed
//!   ([`crate::state::AppState::follow`]): a change on any node drops the token here too, and a lost
//!   feed connection drops everything.
//! - Expiry needs no invalidation: status, time window and address are judged per request.
//!
//! The map is quick_cache's sharded cache: reads take no lock shared by all requests, and
//! an entry costs little beyond the token itself (see "Performance" in the README).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use latchkey_core::{Id, SecretHash, Token};
use latchkey_store::{RowId, Store, StoreError, StoredToken};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};
use time::OffsetDateTime;

use crate::metrics::CacheResult;

/// How long an unknown hash is remembered.
pub const UNKNOWN_TTL: Duration = Duration::from_secs(5);
/// How many unknown hashes are remembered at most.
pub const UNKNOWN_CAPACITY: usize = 100_000;

/// A token as authentication found it, read from the store at one moment. Dereferences to
/// the [`Token`].
#[derive(Debug)]
pub struct CachedToken {
    token: Token,
    /// Where the store keeps it, for the last-use flush.
    pub row: RowId,
    /// When it must be read again.
    stale_at: Instant,
    /// The Unix second of the last use handed to [`crate::last_used::LastUsed`], so a token
    /// used many times a second is recorded once (the clock has whole seconds).
    noted: AtomicI64,
}

impl CachedToken {
    fn new(found: StoredToken, fetched: Instant, ttl: Duration) -> Self {
        let ttl = ttl.mul_f64(rand::random_range(0.5..=1.0));
        CachedToken {
            token: found.token,
            row: found.row,
            stale_at: fetched + ttl,
            noted: AtomicI64::new(i64::MIN),
        }
    }

    /// Whether `at` is a second in which no use of this token was noted yet; notes it.
    pub fn first_use_in_second(&self, at: OffsetDateTime) -> bool {
        let second = at.unix_timestamp();
        // The load keeps repeated uses to a read of a line no other core writes.
        self.noted.load(Ordering::Relaxed) != second
            && self.noted.swap(second, Ordering::Relaxed) != second
    }
}

impl Deref for CachedToken {
    type Target = Token;

    fn deref(&self) -> &Token {
        &self.token
    }
}

/// A secret hash, the cache's key.
type Key = [u8; 32];

/// Token id -> the key it is cached under.
type Index = HashMap<Id, Key>;

/// Collects what an insert evicts, for the inserter to drop from the index (it holds the
/// index's lock, so map and index change together).
#[derive(Clone, Default)]
struct Evictions;

impl Lifecycle<Key, Arc<CachedToken>> for Evictions {
    type RequestState = Vec<(Key, Id)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, evicted: &mut Self::RequestState, key: Key, entry: Arc<CachedToken>) {
        evicted.push((key, entry.id));
    }
}

/// Cached token lookups by secret hash.
pub struct TokenCache {
    /// `None` when caching is off (capacity 0).
    maps: Option<Maps>,
    ttl: Duration,
}

/// The maps of a [`TokenCache`]. Every change to which tokens `tokens` holds (an insert and
/// what it evicts, a removal, clearing) is made under `index`'s lock, so the two always
/// agree; hits only read `tokens`.
struct Maps {
    tokens: Cache<Key, Arc<CachedToken>, UnitWeighter, DefaultHashBuilder, Evictions>,
    index: Mutex<Index>,
    unknown: Cache<Key, Instant>,
    /// Bumped by every invalidation: a read that started in an older epoch is not kept.
    epoch: AtomicU64,
}

impl Maps {
    fn lock(&self) -> MutexGuard<'_, Index> {
        // A panic while it was held left a map of valid lines: keep using it.
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Caches `entry` under `key`, unless an invalidation came after `epoch`, when it was
    /// read.
    fn insert(&self, key: Key, entry: Arc<CachedToken>, epoch: u64) {
        let mut index = self.lock();
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if let Some(old) = index.insert(entry.id, key) {
            if old != key {
                // The token under a secret it no longer has (a roll this node missed).
                self.tokens.remove(&old);
            }
        }
        for (gone, id) in self.tokens.insert_with_lifecycle(key, entry) {
            if index.get(&id) == Some(&gone) {
                index.remove(&id);
            }
        }
    }

    /// Drops token `id`, under whatever secret it is cached.
    fn remove(&self, id: Id) {
        let mut index = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(key) = index.remove(&id) {
            self.tokens.remove(&key);
        }
    }

    /// Drops everything.
    fn clear(&self) {
        let mut index = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.tokens.clear();
        index.clear();
        self.unknown.clear();
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("tokens", &self.len())
            .finish()
    }
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0 turns caching off), each used for at most
    /// `ttl` before it is read again.
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        let maps = (capacity > 0).then(|| {
            let items = usize::try_from(capacity).unwrap_or(usize::MAX);
            Maps {
                tokens: Cache::with(
                    items,
                    capacity,
                    UnitWeighter,
                    DefaultHashBuilder::default(),
                    Evictions,
                ),
                index: Mutex::new(Index::new()),
                unknown: Cache::new(UNKNOWN_CAPACITY),
                epoch: AtomicU64::new(0),
            }
        });
        TokenCache { maps, ttl }
    }

    /// The token whose secret hashes to `hash`, from the cache or else from `store`.
    pub async fn lookup(
        &self,
        store: &dyn Store,
        hash: &SecretHash,
    ) -> Result<Option<Arc<CachedToken>>, StoreError> {
        let Some(maps) = &self.maps else {
            crate::metrics::cache_lookup(CacheResult::Miss);
            let fetched = Instant::now();
            let found = store.token_by_hash(hash).await?;
            return Ok(found.map(|token| Arc::new(CachedToken::new(token, fetched, self.ttl))));
        };
        let key = *hash.as_bytes();
        if let Some(entry) = maps.tokens.get(&key) {
            if Instant::now() < entry.stale_at {
                crate::metrics::cache_lookup(CacheResult::Hit);
                return Ok(Some(entry));
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
        let epoch = maps.epoch.load(Ordering::SeqCst);
        let fetched = Instant::now();
        let Some(token) = store.token_by_hash(hash).await? else {
            if maps.epoch.load(Ordering::SeqCst) == epoch {
                maps.unknown.insert(key, fetched);
            }
            return Ok(None);
        };
        let entry = Arc::new(CachedToken::new(token, fetched, self.ttl));
        maps.insert(key, Arc::clone(&entry), epoch);
        Ok(Some(entry))
    }

    /// Drops token `id`, under whatever secret it was cached; call after its change is
    /// committed.
    pub fn forget(&self, id: Id) {
        if let Some(maps) = &self.maps {
            maps.remove(id);
        }
    }

    /// Drops everything cached (changes may have been missed).
    pub fn clear(&self) {
        if let Some(maps) = &self.maps {
            maps.clear();
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
    use latchkey_store::{Account, AuditQuery, LastUse, ListQuery, NewAdmin, Page, User};
    use std::sync::atomic::AtomicUsize;
    use time::OffsetDateTime;

    /// A store holding one token (whose owner is a member of every account), counting
    /// lookups, and able to run a write "concurrently" with a lookup (between the read and
    /// the cache insert).
    pub(crate) struct OneToken {
        pub token: Token,
        pub lookups: AtomicUsize,
        pub during_lookup: Option<Arc<TokenCache>>,
        /// Each lookup answers the token under a new id, as a store of many tokens would.
        pub distinct: bool,
    }

    #[async_trait::async_trait]
    impl Store for OneToken {
        async fn token_by_hash(&self, _: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            if let Some(cache) = &self.during_lookup {
                cache.forget(self.token.id);
            }
            let mut token = self.token.clone();
            if self.distinct {
                token.id = Id::random();
            }
            Ok(Some(stored(token)))
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
        async fn record_last_used(&self, _: &[LastUse]) -> Result<(), StoreError> {
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

    pub(crate) const TTL: Duration = Duration::from_secs(30);

    pub(crate) fn token() -> Token {
        Token::new(Owner::User(Id::random()), "t", OffsetDateTime::now_utc())
    }

    fn stored(token: Token) -> StoredToken {
        StoredToken {
            token,
            row: RowId(1),
        }
    }

    #[tokio::test]
    async fn hits_do_not_reach_the_store() {
        let cache = TokenCache::new(10, TTL);
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: None,
            distinct: false,
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
        let cache = Arc::new(TokenCache::new(10, TTL));
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: Some(Arc::clone(&cache)),
            distinct: false,
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
        let cache = TokenCache::new(0, TTL);
        let store = OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: None,
            distinct: false,
        };
        let hash = Secret::generate(SecretKind::User).hash();
        cache.lookup(&store, &hash).await.unwrap();
        cache.lookup(&store, &hash).await.unwrap();
        assert_eq!(store.lookups.load(Ordering::SeqCst), 2);
    }

    fn store(distinct: bool) -> OneToken {
        OneToken {
            token: token(),
            lookups: AtomicUsize::new(0),
            during_lookup: None,
            distinct,
        }
    }

    fn new_hash() -> SecretHash {
        Secret::generate(SecretKind::User).hash()
    }

    #[tokio::test]
    async fn forget_drops_a_token_by_id() {
        let cache = TokenCache::new(10, TTL);
        let store = store(false);
        let hash = new_hash();
        cache.lookup(&store, &hash).await.unwrap();
        cache.forget(store.token.id);
        assert!(cache.is_empty());
        cache.lookup(&store, &hash).await.unwrap();
        assert_eq!(store.lookups.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_token_read_under_a_new_secret_is_no_longer_cached_under_the_old() {
        let cache = TokenCache::new(10, TTL);
        let store = store(false);
        let (old, new) = (new_hash(), new_hash());
        cache.lookup(&store, &old).await.unwrap();
        cache.lookup(&store, &new).await.unwrap();
        assert_eq!(cache.len(), 1);
        cache.lookup(&store, &old).await.unwrap();
        assert_eq!(
            store.lookups.load(Ordering::SeqCst),
            3,
            "the old secret missed"
        );
    }

    #[tokio::test]
    async fn evictions_keep_the_index_exact() {
        let capacity = 64;
        let cache = TokenCache::new(capacity, TTL);
        let store = store(true);
        let mut cached = Vec::new();
        for _ in 0..capacity * 20 {
            let hash = new_hash();
            let entry = cache.lookup(&store, &hash).await.unwrap().unwrap();
            cached.push((entry.id, hash));
        }
        let maps = cache.maps.as_ref().unwrap();
        let indexed = maps.lock().len();
        assert!(cache.len() <= capacity as usize, "{} cached", cache.len());
        assert_eq!(indexed, cache.len(), "one index line per cached token");
        // Every token still cached is found by id: forgetting them all empties the cache.
        for (id, _) in &cached {
            cache.forget(*id);
        }
        assert!(cache.is_empty());
        assert!(maps.lock().is_empty());
    }

    #[test]
    fn entries_go_stale_between_half_the_ttl_and_the_ttl() {
        let fetched = Instant::now();
        let lives: Vec<Duration> = (0..1000)
            .map(|_| CachedToken::new(stored(token()), fetched, TTL).stale_at - fetched)
            .collect();
        assert!(lives.iter().all(|life| *life >= TTL / 2 && *life <= TTL));
        let (shortest, longest) = (lives.iter().min().unwrap(), lives.iter().max().unwrap());
        assert!(
            *longest - *shortest > TTL / 4,
            "spread out: {shortest:?}..{longest:?}"
        );
    }

    #[test]
    fn a_use_is_noted_once_per_second() {
        let entry = CachedToken::new(stored(token()), Instant::now(), TTL);
        let at = OffsetDateTime::now_utc();
        assert!(entry.first_use_in_second(at));
        assert!(!entry.first_use_in_second(at));
        assert!(entry.first_use_in_second(at + Duration::from_secs(1)));
        assert!(
            entry.first_use_in_second(at),
            "a clock set back is noted too"
        );
    }
}
