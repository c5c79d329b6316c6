//! `last_used_on`, recorded in memory on every authenticated request and written to the
//! database in one batch per interval (at most [`FLUSH_INTERVAL`] stale), never once per
//! request. A final flush runs at shutdown. The pending map is sharded, so recording takes
//! no lock shared by all requests.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use latchkey_core::Id;
use latchkey_store::Store;
use time::OffsetDateTime;

/// How often pending last-use times are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Last-use times not yet written.
#[derive(Debug, Default)]
pub struct LastUsed {
    pending: DashMap<Id, OffsetDateTime>,
}

impl LastUsed {
    /// Notes that token `id` was used at `at`.
    pub fn record(&self, id: Id, at: OffsetDateTime) {
        let mut entry = self.pending.entry(id).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// The pending time for `id`, newer than what the database holds.
    pub fn pending(&self, id: Id) -> Option<OffsetDateTime> {
        self.pending.get(&id).map(|at| *at)
    }

    /// Writes every pending time in one batch. On failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn Store) {
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
