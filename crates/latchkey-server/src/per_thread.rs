//! Per-thread slots for what every request writes: a value shared by all requests (one
//! counter, one lock) is written from both cores in turn, and each write then waits for the
//! other core's copy of its cache line. With a slot per thread, each core writes its own
//! line, and the rare reader (a flush, a `/metrics` scrape) visits every slot.

use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// Slots of a [`PerThread`]: threads beyond this many share slots (still correct, only
/// slower). A server has a worker thread per core, a few blocking threads, and a few tasks.
pub const SLOTS: usize = 16;

/// This thread's slot: threads are given slots in the order they first ask.
fn slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS;
    }
    SLOT.with(|slot| *slot)
}

/// One `T` per thread slot, each on its own cache line.
#[derive(Debug)]
pub struct PerThread<T> {
    slots: Box<[CachePadded<T>]>,
}

impl<T: Default> Default for PerThread<T> {
    fn default() -> Self {
        PerThread {
            slots: (0..SLOTS).map(|_| CachePadded::new(T::default())).collect(),
        }
    }
}

impl<T> PerThread<T> {
    /// The calling thread's slot.
    pub fn local(&self) -> &T {
        &self.slots[slot()]
    }

    /// Every slot, for readers that combine them.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().map(|slot| &**slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_thread_counts_and_the_sum_sees_all() {
        let counts: PerThread<AtomicU64> = PerThread::default();
        std::thread::scope(|scope| {
            for _ in 0..(SLOTS + 3) {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        counts.local().fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        let total: u64 = counts.iter().map(|c| c.load(Ordering::Relaxed)).sum();
        assert_eq!(total, (SLOTS as u64 + 3) * 1000);
    }
}
