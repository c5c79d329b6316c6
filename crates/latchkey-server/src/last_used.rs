//! `last_used_on`, recorded in memory on every authenticated request and written to the
//! database in one batch per interval (at most [`FLUSH_INTERVAL`] stale), never once per
//! request. A final flush runs at shutdown. The pending map is sharded, so recording takes
//! no lock shared by all requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use latchkey_core::Id;
use latchkey_store::Store;
use time::OffsetDateTime;

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
    pending: DashMap<Id, OffsetDateTime>,
    /// When the oldest time now pending was recorded, as [`since_epoch`] gives it; 0 when
    /// nothing is pending. An atomic, not a lock: `record` runs on every
    /// authenticated request.
    oldest: AtomicU64,
}

impl LastUsed {
    /// Notes that token `id` was used at `at`.
    pub fn record(&self, id: Id, at: OffsetDateTime) {
        let mut entry = self.pending.entry(id).or_insert(at);
        *entry = (*entry).max(at);
        drop(entry);
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
        (self.pending.len(), Duration::from_millis(lag))
    }

    /// The pending time for `id`, newer than what the database holds.
    pub fn pending(&self, id: Id) -> Option<OffsetDateTime> {
        self.pending.get(&id).map(|at| *at)
    }

    /// Writes every pending time in one batch. On failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn Store) {
        let started = self.oldest.swap(0, Ordering::Relaxed);
        let ids: Vec<Id> = self.pending.iter().map(|entry| *entry.key()).collect();
        let batch: Vec<(Id, OffsetDateTime)> = ids
            .iter()
            .filter_map(|id| self.pending.remove(id))
            .collect();
        if batch.is_empty() {
            return;
        }
        if let Err(error) = store.record_last_used(&batch).await {
            tracing::warn!(%error, count = batch.len(), "could not record last use; will retry");
            for (id, at) in batch {
                self.record(id, at);
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
