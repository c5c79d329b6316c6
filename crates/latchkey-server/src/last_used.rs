//! `last_used_on`, recorded in memory on every authenticated request and written to the
//! database in one batch per interval (at most [`FLUSH_INTERVAL`] stale), never once per
//! request. A final flush runs at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey_core::Id;
use latchkey_store::Store;
use time::OffsetDateTime;

/// How often pending last-use times are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Last-use times not yet written.
#[derive(Debug, Default)]
pub struct LastUsed {
    pending: Mutex<HashMap<Id, OffsetDateTime>>,
}

impl LastUsed {
    /// Notes that token `id` was used at `at`.
    pub fn record(&self, id: Id, at: OffsetDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let entry = pending.entry(id).or_insert(at);
        *entry = (*entry).max(at);
    }

    /// The pending time for `id`, newer than what the database holds.
    pub fn pending(&self, id: Id) -> Option<OffsetDateTime> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.get(&id).copied()
    }

    /// Writes every pending time in one batch. On failure they are kept for the next try.
    pub async fn flush(&self, store: &dyn Store) {
        let batch: Vec<(Id, OffsetDateTime)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.drain().collect()
        };
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
