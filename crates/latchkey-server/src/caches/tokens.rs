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
//! an entry costs little beyond the token itself (see docs/performance.md).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use latchkey_core::{Id, SecretHash, Token};
use latchkey_store::{RowId, Store, StoreError, StoredToken};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, UnitWeighter};
use std::future::Future;
use time::OffsetDateTime;

use crate::metrics::CacheResult;

/// What the cache reads on a miss: the one store method it needs, so its tests need no
/// whole [`Store`].
pub trait TokenSource: Sync {
    /// The token whose secret hashes to `hash`, and its row.
    fn token_by_hash(
        &self,
        hash: &SecretHash,
    ) -> impl Future<Output = Result<Option<StoredToken>, StoreError>> + Send;
}

impl TokenSource for dyn Store + '_ {
    async fn token_by_hash(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        Store::token_by_hash(self, hash).await
    }
}

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
    /// Set when the entry is put in the map: tells it from another entry of the same key.
    serial: u64,
    /// The Unix second of the last use handed to [`crate::caches::last_used::LastUsed`], so a token
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
            serial: 0,
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

/// Which entry of the map the index names: its key and the serial number its insert was
/// given. An entry is told apart from another under the same key by its serial, so an entry
/// leaving the map (evicted, or replaced by a newer read of the same secret) removes the
/// index line only if the line still names that very entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    key: Key,
    serial: u64,
}

/// Token id -> the entry it is cached as.
type Index = HashMap<Id, Slot>;

/// Collects the entries an insert pushes out of the map, for the inserter to drop from the
/// index (it holds the index's lock, so map and index change together). quick_cache reports
/// here both the entries it evicts to make room and the entry an insert replaces under the
/// same key.
#[derive(Clone, Default)]
struct Evictions;

impl Lifecycle<Key, Arc<CachedToken>> for Evictions {
    type RequestState = Vec<(Id, Slot)>;

    fn begin_request(&self) -> Self::RequestState {
        Vec::new()
    }

    fn on_evict(&self, evicted: &mut Self::RequestState, key: Key, entry: Arc<CachedToken>) {
        let slot = Slot {
            key,
            serial: entry.serial,
        };
        evicted.push((entry.id, slot));
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
    /// The serial of the last insert (changed under the index's lock).
    serial: AtomicU64,
}

impl Maps {
    fn lock(&self) -> parking_lot::MutexGuard<'_, Index> {
        self.index.lock()
    }

    /// Caches `entry` under `key`, unless an invalidation came after `epoch`, when it was
    /// read.
    fn insert(&self, key: Key, mut entry: CachedToken, epoch: u64) -> Arc<CachedToken> {
        let mut index = self.lock();
        entry.serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let entry = Arc::new(entry);
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return entry;
        }
        let slot = Slot {
            key,
            serial: entry.serial,
        };
        if let Some(old) = index.insert(entry.id, slot) {
            if old.key != key {
                // The token under a secret it no longer has (a roll this node missed).
                self.tokens.remove(&old.key);
            }
        }
        for (id, gone) in self.tokens.insert_with_lifecycle(key, Arc::clone(&entry)) {
            if index.get(&id) == Some(&gone) {
                index.remove(&id);
            }
        }
        entry
    }

    /// Drops token `id`, under whatever secret it is cached.
    fn remove(&self, id: Id) {
        let mut index = self.lock();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(slot) = index.remove(&id) {
            self.tokens.remove(&slot.key);
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
                serial: AtomicU64::new(0),
            }
        });
        TokenCache { maps, ttl }
    }

    /// The token whose secret hashes to `hash`, from the cache or else from `store`; `now`
    /// is the monotonic time of the request (a parameter, so tests can move it).
    pub async fn lookup<S: TokenSource + ?Sized>(
        &self,
        store: &S,
        hash: &SecretHash,
        now: Instant,
    ) -> Result<Option<Arc<CachedToken>>, StoreError> {
        let Some(maps) = &self.maps else {
            crate::metrics::cache_lookup(CacheResult::Miss);
            let found = store.token_by_hash(hash).await?;
            return Ok(found.map(|token| Arc::new(CachedToken::new(token, now, self.ttl))));
        };
        let key = *hash.as_bytes();
        if let Some(entry) = maps.tokens.get(&key) {
            if now < entry.stale_at {
                crate::metrics::cache_lookup(CacheResult::Hit);
                return Ok(Some(entry));
            }
        }
        if maps
            .unknown
            .get(&key)
            .is_some_and(|at| now.saturating_duration_since(at) < UNKNOWN_TTL)
        {
            crate::metrics::cache_lookup(CacheResult::KnownUnknown);
            return Ok(None);
        }
        crate::metrics::cache_lookup(CacheResult::Miss);
        let epoch = maps.epoch.load(Ordering::SeqCst);
        let Some(token) = store.token_by_hash(hash).await? else {
            if maps.epoch.load(Ordering::SeqCst) == epoch {
                maps.unknown.insert(key, now);
            }
            return Ok(None);
        };
        let entry = CachedToken::new(token, now, self.ttl);
        Ok(Some(maps.insert(key, entry, epoch)))
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
    use latchkey_core::{Owner, Secret, SecretKind, Status};
    use proptest::prelude::*;
    use std::sync::atomic::AtomicUsize;
    use time::OffsetDateTime;

    /// A write slipped in between a read of [`Tokens`] and the cache's insert.
    type Write = Box<dyn FnOnce() + Send>;

    /// Tokens by secret hash, counting reads. A write can run between a read and the
    /// cache's insert of what it read (`during_read`), and reads can yield once, so that
    /// two lookups of one secret are in flight together.
    #[derive(Default)]
    pub(crate) struct Tokens {
        rows: Mutex<HashMap<Key, StoredToken>>,
        pub lookups: AtomicUsize,
        yield_once: bool,
        during_read: Mutex<Option<Write>>,
    }

    impl Tokens {
        fn rows(&self) -> parking_lot::MutexGuard<'_, HashMap<Key, StoredToken>> {
            self.rows.lock()
        }

        fn put(&self, hash: &SecretHash, token: Token) {
            let stored = StoredToken {
                token,
                row: RowId(1),
            };
            self.rows().insert(*hash.as_bytes(), stored);
        }

        fn current(&self, hash: &SecretHash) -> Option<Token> {
            self.rows().get(hash.as_bytes()).map(|s| s.token.clone())
        }
    }

    impl TokenSource for Tokens {
        fn token_by_hash(
            &self,
            hash: &SecretHash,
        ) -> impl Future<Output = Result<Option<StoredToken>, StoreError>> + Send {
            let key = *hash.as_bytes();
            async move {
                self.lookups.fetch_add(1, Ordering::SeqCst);
                let found = self.rows().get(&key).cloned();
                if self.yield_once {
                    tokio::task::yield_now().await;
                }
                let write = self.during_read.lock().take();
                if let Some(write) = write {
                    write();
                }
                Ok(found)
            }
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

    fn new_hash() -> SecretHash {
        Secret::generate(SecretKind::User).hash()
    }

    /// A store holding one new token under a new secret.
    fn one_token() -> (Tokens, SecretHash, Token) {
        let (store, hash, token) = (Tokens::default(), new_hash(), token());
        store.put(&hash, token.clone());
        (store, hash, token)
    }

    fn lookups(store: &Tokens) -> usize {
        store.lookups.load(Ordering::SeqCst)
    }

    /// Every token the map holds has the index line naming it, and no other line exists.
    fn assert_index_exact(cache: &TokenCache) {
        let maps = cache.maps.as_ref().unwrap();
        let index = maps.lock();
        let mut held = 0;
        for (key, entry) in maps.tokens.iter() {
            held += 1;
            let slot = Slot {
                key,
                serial: entry.serial,
            };
            assert_eq!(
                index.get(&entry.id),
                Some(&slot),
                "index line of a cached token"
            );
        }
        assert_eq!(index.len(), held, "one index line per cached token");
    }

    #[tokio::test]
    async fn hits_do_not_reach_the_store() {
        let cache = TokenCache::new(10, TTL);
        let (store, hash, _) = one_token();
        let now = Instant::now();
        for _ in 0..5 {
            assert!(cache.lookup(&store, &hash, now).await.unwrap().is_some());
        }
        assert_eq!(lookups(&store), 1);
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn a_read_racing_an_invalidation_is_not_kept() {
        let cache = Arc::new(TokenCache::new(10, TTL));
        let (store, hash, token) = one_token();
        let forgetting = Arc::clone(&cache);
        *store.during_read.lock() = Some(Box::new(move || forgetting.forget(token.id)));
        let now = Instant::now();
        cache.lookup(&store, &hash, now).await.unwrap();
        assert!(cache.is_empty(), "the raced read was not cached");
        cache.lookup(&store, &hash, now).await.unwrap();
        assert_eq!(lookups(&store), 2);
    }

    #[tokio::test]
    async fn capacity_zero_turns_caching_off() {
        let cache = TokenCache::new(0, TTL);
        let (store, hash, _) = one_token();
        cache.lookup(&store, &hash, Instant::now()).await.unwrap();
        cache.lookup(&store, &hash, Instant::now()).await.unwrap();
        assert_eq!(lookups(&store), 2);
    }

    #[tokio::test]
    async fn forget_drops_a_token_by_id() {
        let cache = TokenCache::new(10, TTL);
        let (store, hash, token) = one_token();
        let now = Instant::now();
        cache.lookup(&store, &hash, now).await.unwrap();
        cache.forget(token.id);
        assert!(cache.is_empty());
        cache.lookup(&store, &hash, now).await.unwrap();
        assert_eq!(lookups(&store), 2);
    }

    /// A stale entry read again, and two first uses at once, both insert a key the map
    /// already holds; quick_cache reports the replaced entry as evicted. The index must still
    /// name the new entry, so that a write drops it.
    #[tokio::test]
    async fn replacing_an_entry_keeps_its_index_line() {
        let cache = TokenCache::new(10, TTL);
        let (store, hash, token) = one_token();
        let start = Instant::now();
        cache.lookup(&store, &hash, start).await.unwrap();
        let later = start + TTL;
        cache.lookup(&store, &hash, later).await.unwrap();
        assert_eq!(lookups(&store), 2, "the stale entry was read again");
        assert_index_exact(&cache);
        store.rows().clear();
        cache.forget(token.id);
        assert!(cache.is_empty(), "the re-read entry was dropped by id");
        assert!(cache.lookup(&store, &hash, later).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn two_first_uses_at_once_leave_one_droppable_entry() {
        let cache = TokenCache::new(10, TTL);
        let (mut store, hash, token) = one_token();
        store.yield_once = true;
        let now = Instant::now();
        let (a, b) = tokio::join!(
            cache.lookup(&store, &hash, now),
            cache.lookup(&store, &hash, now)
        );
        assert!(a.unwrap().is_some() && b.unwrap().is_some());
        assert_eq!(lookups(&store), 2, "both were misses");
        assert_index_exact(&cache);
        cache.forget(token.id);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_token_read_under_a_new_secret_is_no_longer_cached_under_the_old() {
        let cache = TokenCache::new(10, TTL);
        let (store, old, token) = one_token();
        let new = new_hash();
        store.put(&new, token);
        let now = Instant::now();
        cache.lookup(&store, &old, now).await.unwrap();
        cache.lookup(&store, &new, now).await.unwrap();
        assert_eq!(cache.len(), 1);
        cache.lookup(&store, &old, now).await.unwrap();
        assert_eq!(lookups(&store), 3, "the old secret missed");
    }

    #[tokio::test]
    async fn evictions_keep_the_index_exact() {
        let capacity = 64;
        let cache = TokenCache::new(capacity, TTL);
        let store = Tokens::default();
        let now = Instant::now();
        let mut cached = Vec::new();
        for _ in 0..capacity * 20 {
            let (hash, token) = (new_hash(), token());
            store.put(&hash, token.clone());
            cache.lookup(&store, &hash, now).await.unwrap().unwrap();
            cached.push(token.id);
        }
        assert!(cache.len() <= capacity as usize, "{} cached", cache.len());
        assert_index_exact(&cache);
        for id in &cached {
            cache.forget(*id);
        }
        assert!(cache.is_empty());
        assert!(cache.maps.as_ref().unwrap().lock().is_empty());
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

    /// A write to a token, as the API makes them: committed, then the cache told.
    #[derive(Debug, Clone, Copy)]
    enum Change {
        Update,
        Disable,
        Roll,
        Delete,
    }

    /// One step of the model-based test. Secrets and tokens are named by an index into
    /// the ones made so far (modulo their number).
    #[derive(Debug, Clone)]
    enum Step {
        /// A new token under a new secret.
        Create,
        /// One lookup.
        Get(usize),
        /// Two lookups of one secret in flight together (two first uses at once).
        GetTwice(usize),
        /// A lookup during whose store read a write commits and drops the token.
        GetDuring(usize, usize, Change),
        /// A write, then `forget`.
        Write(usize, Change),
        /// Time moves by less than half the TTL (no entry goes stale).
        Wait,
        /// Time moves by the TTL (every entry goes stale: the next use reads again).
        Stale,
        /// The change feed was lost.
        Clear,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            Just(Change::Update),
            Just(Change::Disable),
            Just(Change::Roll),
            Just(Change::Delete)
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        let n = 0..64usize;
        prop_oneof![
            2 => Just(Step::Create),
            6 => n.clone().prop_map(Step::Get),
            2 => n.clone().prop_map(Step::GetTwice),
            1 => (n.clone(), n.clone(), change()).prop_map(|(s, t, c)| Step::GetDuring(s, t, c)),
            3 => (n, change()).prop_map(|(t, c)| Step::Write(t, c)),
            1 => Just(Step::Wait),
            2 => Just(Step::Stale),
            1 => Just(Step::Clear),
        ]
    }

    /// The plain model: which secrets were ever issued, and which token ids exist.
    struct Model {
        store: Arc<Tokens>,
        cache: Arc<TokenCache>,
        secrets: Vec<SecretHash>,
        /// Live token ids and the secret each is under now.
        tokens: Arc<Mutex<Vec<(Id, SecretHash)>>>,
        now: Instant,
    }

    /// Applies `change` to the `pick`th live token in `store`, then tells `cache`, as a
    /// handler does after its commit. Returns the new secret of a roll.
    fn write(
        store: &Tokens,
        cache: &TokenCache,
        tokens: &Mutex<Vec<(Id, SecretHash)>>,
        pick: usize,
        change: Change,
    ) -> Option<SecretHash> {
        let mut tokens = tokens.lock();
        if tokens.is_empty() {
            return None;
        }
        let at = pick % tokens.len();
        let (id, hash) = tokens[at];
        let mut token = store.current(&hash).expect("a live token is stored");
        let mut rolled = None;
        match change {
            Change::Update => {
                token.name = format!("renamed {}", Id::random());
                store.put(&hash, token);
            }
            Change::Disable => {
                token.status = Status::Disabled;
                store.put(&hash, token);
            }
            Change::Roll => {
                let new = new_hash();
                store.rows().remove(hash.as_bytes());
                store.put(&new, token);
                tokens[at].1 = new;
                rolled = Some(new);
            }
            Change::Delete => {
                store.rows().remove(hash.as_bytes());
                tokens.remove(at);
            }
        }
        cache.forget(id);
        rolled
    }

    impl Model {
        fn new(capacity: u64, yield_once: bool) -> Self {
            Model {
                store: Arc::new(Tokens {
                    yield_once,
                    ..Tokens::default()
                }),
                cache: Arc::new(TokenCache::new(capacity, TTL)),
                secrets: Vec::new(),
                tokens: Arc::new(Mutex::new(Vec::new())),
                now: Instant::now(),
            }
        }

        fn secret(&self, pick: usize) -> Option<SecretHash> {
            (!self.secrets.is_empty()).then(|| self.secrets[pick % self.secrets.len()])
        }

        /// What a lookup answered must be what the store holds now, exactly.
        fn check(&self, hash: &SecretHash, found: Option<Arc<CachedToken>>) {
            let expected = self.store.current(hash);
            let found = found.map(|entry| entry.token.clone());
            assert_eq!(
                found, expected,
                "the cache answered what the store no longer holds"
            );
        }

        async fn run(&mut self, step: Step) {
            match step {
                Step::Create => {
                    let (hash, token) = (new_hash(), token());
                    self.store.put(&hash, token.clone());
                    self.tokens.lock().push((token.id, hash));
                    self.secrets.push(hash);
                }
                Step::Get(pick) => {
                    let Some(hash) = self.secret(pick) else {
                        return;
                    };
                    let found = self
                        .cache
                        .lookup(&*self.store, &hash, self.now)
                        .await
                        .unwrap();
                    self.check(&hash, found);
                }
                Step::GetTwice(pick) => {
                    let Some(hash) = self.secret(pick) else {
                        return;
                    };
                    let (a, b) = tokio::join!(
                        self.cache.lookup(&*self.store, &hash, self.now),
                        self.cache.lookup(&*self.store, &hash, self.now)
                    );
                    self.check(&hash, a.unwrap());
                    self.check(&hash, b.unwrap());
                }
                Step::GetDuring(pick, target, change) => {
                    let Some(hash) = self.secret(pick) else {
                        return;
                    };
                    let (store, cache, tokens) = (
                        Arc::clone(&self.store),
                        Arc::clone(&self.cache),
                        Arc::clone(&self.tokens),
                    );
                    let rolled = Arc::new(Mutex::new(None));
                    let rolled_to = Arc::clone(&rolled);
                    *self.store.during_read.lock() = Some(Box::new(move || {
                        *rolled_to.lock() = write(&store, &cache, &tokens, target, change);
                    }));
                    let before = self.store.current(&hash);
                    let found = self
                        .cache
                        .lookup(&*self.store, &hash, self.now)
                        .await
                        .unwrap();
                    self.store.during_read.lock().take();
                    // The lookup read before the write committed: it may answer the old
                    // token (its request was in flight), but must not keep it.
                    let found = found.map(|entry| entry.token.clone());
                    let after = self.store.current(&hash);
                    assert!(found == before || found == after, "{found:?}");
                    self.secrets.extend(rolled.lock().take());
                }
                Step::Write(target, change) => {
                    let rolled = write(&self.store, &self.cache, &self.tokens, target, change);
                    self.secrets.extend(rolled);
                }
                Step::Wait => self.now += TTL / 3,
                Step::Stale => self.now += TTL,
                Step::Clear => self.cache.clear(),
            }
            if self.cache.maps.is_some() {
                assert_index_exact(&self.cache);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the sequence of first uses, re-reads, races, evictions under a small
        /// capacity and writes, a lookup never answers a token (or a version of one) that a
        /// write has replaced or removed.
        #[test]
        fn the_cache_never_serves_what_a_write_replaced(
            capacity in prop_oneof![Just(0u64), 1u64..8, Just(1000)],
            yield_once in any::<bool>(),
            steps in proptest::collection::vec(step(), 1..80),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut model = Model::new(capacity, yield_once);
                for step in steps {
                    model.run(step).await;
                }
            });
        }
    }
}
