//! `last_used_on`, recorded in memory on every authenticated request and written to the
//! database in one batch per interval (at most [`FLUSH_INTERVAL`] stale), never once per
//! request. A final flush runs at shutdown. The pending times are kept per thread
//! ([`PerThread`]), so recording touches no memory another core writes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use latchkey_core::Id;
use latchkey_store::{LastUse, Store};
use time::OffsetDateTime;

use crate::caches::tokens::CachedToken;
use crate::per_thread::PerThread;

/// Each token's latest use not yet written.
type Pending = HashMap<Id, LastUse>;

/// Keeps the later of `used` and what `times` holds for its token.
fn keep_latest(times: &mut Pending, used: LastUse) {
    times
        .entry(used.id)
        .and_modify(|pending| {
            if used.at > pending.at {
                *pending = used;
            }
        })
        .or_insert(used);
}

/// Milliseconds since the first call, plus one (so that 0 can mean "none").
fn since_epoch() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1) + 1
}

/// How often pending last-use times are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Last-use times not yet written.
#[derive(Debug, Default)]
pub struct LastUsed {
    pending: PerThread<Mutex<Pending>>,
    /// When the oldest time now pending was recorded, as [`since_epoch`] gives it; 0 when
    /// nothing is pending. Written once per flush: `record` only reads it.
    oldest: AtomicU64,
}

impl LastUsed {
    /// Notes that `token` was used at `at`: once per token and second, which is all the
    /// clock resolves, so repeated uses only read the token's own mark.
    pub fn record(&self, token: &CachedToken, at: OffsetDateTime) {
        if token.first_use_in_second(at) {
            self.record_use(LastUse {
                row: token.row,
                id: token.id,
                at,
            });
        }
    }

    /// Notes a use to write.
    fn record_use(&self, used: LastUse) {
        keep_latest(&mut self.pending.local().lock(), used);
        if self.oldest.load(Ordering::Relaxed) == 0 {
            let _ = self.oldest.compare_exchange(
                0,
                since_epoch(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// How many times are pending, and how long the oldest of them has waited.
    pub fn backlog(&self) -> (usize, Duration) {
        let oldest = self.oldest.load(Ordering::Relaxed);
        let lag = match oldest {
            0 => 0,
            at => since_epoch().saturating_sub(at),
        };
        let mut ids = HashSet::new();
        for slot in self.pending.iter() {
            ids.extend(slot.lock().keys().copied());
        }
        (ids.len(), Duration::from_millis(lag))
    }

    /// The pending time for `id`, newer than what the database holds.
    pub fn pending(&self, id: Id) -> Option<OffsetDateTime> {
        self.pending
            .iter()
            .filter_map(|slot| slot.lock().get(&id).map(|used| used.at))
            .max()
    }

    /// Writes every pending time in one batch. On failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn Store) {
        let started = self.oldest.swap(0, Ordering::Relaxed);
        let mut batch = Vec::new();
        for slot in self.pending.iter() {
            batch.extend(std::mem::take(&mut *slot.lock()).into_values());
        }
        let batch = LastUse::latest_per_token(batch);
        if batch.is_empty() {
            return;
        }
        if let Err(error) = store.record_last_used(&batch).await {
            tracing::warn!(%error, count = batch.len(), "could not record last use; will retry");
            for used in batch {
                self.record_use(used);
            }
            // The retried times are as old as they were.
            if started != 0 {
                let _ = self
                    .oldest
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |now| {
                        Some(if now == 0 { started } else { now.min(started) })
                    });
            }
        }
    }

    /// Flushes every [`FLUSH_INTERVAL`] until the task is dropped.
    pub fn spawn_flusher(self: &Arc<Self>, store: Arc<dyn Store>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FLUSH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                this.flush(store.as_ref()).await;
            }
        })
    }
}
