//! The memory budget shared by every open file of a mount: bytes of prefetched and in-flight
//! parts. Optional prefetching asks with [`MemoryBudget::try_reserve`] and backs off (its window
//! shrinks) when the budget is spent; the bytes a read needs right now are taken with
//! [`MemoryBudget::reserve`], which may overdraw by at most that read's part, so reads always
//! make progress. Streamed blocks wait for room with [`MemoryBudget::released`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bytes in use against a limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
    peak: AtomicU64,
    /// Woken whenever a reservation is released.
    released: tokio::sync::Notify,
}

/// Bytes held until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            released: tokio::sync::Notify::new(),
        })
    }

    /// Bytes in use now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Most bytes ever in use at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Completes at the next release of a reservation. `enable()` it before checking for room,
    /// or a release in between is missed.
    pub fn released(&self) -> tokio::sync::futures::Notified<'_> {
        self.released.notified()
    }

    /// `bytes` if they fit under the limit, else `None`.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Option<Reservation> {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            let next = cur.checked_add(bytes)?;
            if next > self.limit {
                return None;
            }
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::Relaxed);
                    return Some(Reservation {
                        budget: self.clone(),
                        bytes,
                    });
                }
                Err(actual) => cur = actual,
            }
        }
    }

    /// `bytes` now, even over the limit (for data a reader is waiting for).
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Reservation {
        let next = self.used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.peak.fetch_max(next, Ordering::Relaxed);
        Reservation {
            budget: self.clone(),
            bytes,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_respect_the_limit_and_release_on_drop() {
        let b = MemoryBudget::new(100);
        let r1 = b.try_reserve(60).unwrap();
        assert!(b.try_reserve(50).is_none());
        let forced = b.reserve(50);
        assert_eq!(b.used(), 110);
        drop(r1);
        drop(forced);
        assert_eq!(b.used(), 0);
        assert_eq!(b.peak(), 110);
    }
}
