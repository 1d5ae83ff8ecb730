//! Background fill of one object version into the disk cache, behind a handle that reads it
//! at random.
//!
//! A random reader waits one round trip per read it cannot find in the cache: at 20 ms per
//! request that is 50 reads a second, however small. When a handle keeps reading at random
//! (`fill_after` random reads in a row, each waiting at least `fill_min_wait` for the store) and
//! the object fits the cache comfortably (at most half of `cache_size`), a [`Fill`] fetches the
//! rest of the object with `parallel` ranged GETs at a time, in parts of `part_size` (smaller
//! for an object too small to keep them all busy, down to [`MIN_PART`]), straight
//! into the disk cache: each body is written a block at a time as it arrives, so a GET holds one
//! block of memory, not its part, and many can be in flight to cover the round trip. The random
//! reads then find their blocks there.
//!
//! Brakes: every GET holds a block and a quarter of memory from the shared budget (asked
//! politely, and only up to three quarters of it: a fill waits while the budget is spent,
//! readers never wait for a fill; a budget too small for one GET starts no fill); each block
//! is written before the next is read, so the disk paces the GETs, and a block the cache
//! cannot write (disk full) stops the fill; the fill pauses when no random read touched it for [`IDLE`] (the pattern stopped) and
//! resumes where it was at the next one; it stops when every handle reading the version is
//! closed (the last [`Fill`] dropped aborts its GETs). One fill per version is shared by all
//! handles of the mount.

use super::blocks::{BlockSource, ObjectRef};
use super::budget::MemoryBudget;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The smallest part a fill splits an object into.
pub const MIN_PART: u64 = 4 << 20;

/// A fill pauses when no random read touched it for this long.
pub const IDLE: Duration = Duration::from_secs(2);

/// How long a fill waits before asking the memory budget again.
const BUDGET_RETRY: Duration = Duration::from_millis(5);

/// How a fill runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillConfig {
    /// GETs in flight at once.
    pub parallel: usize,
    /// Most bytes per GET (rounded to whole blocks); an object that would not keep `parallel`
    /// GETs busy is split into smaller parts, of at least [`MIN_PART`].
    pub part_size: u64,
}

struct Shared {
    src: Arc<BlockSource>,
    budget: Arc<MemoryBudget>,
    obj: ObjectRef,
    part_blocks: u64,
    /// Next block not yet claimed by a worker.
    next: AtomicU64,
    /// Every block claimed, or a GET failed: nothing more to do.
    finished: AtomicBool,
    touched: Mutex<Instant>,
}

/// Blocks per GET of a fill of `size` bytes: enough parts for `cfg.parallel` GETs, each between
/// [`MIN_PART`] and `cfg.part_size`.
fn part_blocks(size: u64, cfg: FillConfig, block: u64) -> u64 {
    let even = size.div_ceil(cfg.parallel.max(1) as u64);
    let part = even.clamp(MIN_PART.min(cfg.part_size), cfg.part_size.max(1));
    part.div_ceil(block.max(1)).max(1)
}

/// The fill of one object version; dropping the last reference stops it.
pub struct Fill {
    shared: Arc<Shared>,
    parallel: usize,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Fill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fill")
            .field("key", &self.shared.obj.key)
            .field("next", &self.shared.next.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Fill {
    /// The fill of `obj` (shared with other handles filling it), started or resumed; `None`
    /// when the object cannot be filled: no disk cache, no entity tag, or more than half the
    /// cache's size.
    pub fn touch_or_start(
        src: &Arc<BlockSource>,
        budget: &Arc<MemoryBudget>,
        obj: &ObjectRef,
        cfg: FillConfig,
    ) -> Option<Arc<Fill>> {
        let cache = src.cache()?;
        let etag = obj.etag.clone()?;
        let too_big = obj.size > cache.limit() / 2;
        // A budget whose fill share cannot hold one GET would leave the workers waiting.
        let no_room = fill_ceiling(budget) < get_memory(src.block_size());
        if obj.size == 0 || too_big || no_room || cfg.parallel == 0 {
            return None;
        }
        let fill = src.fills.get_or_insert((obj.key.clone(), etag), || {
            Arc::new(Fill {
                shared: Arc::new(Shared {
                    src: src.clone(),
                    budget: budget.clone(),
                    obj: obj.clone(),
                    part_blocks: part_blocks(obj.size, cfg, src.block_size()),
                    next: AtomicU64::new(0),
                    finished: AtomicBool::new(false),
                    touched: Mutex::new(Instant::now()),
                }),
                parallel: cfg.parallel,
                workers: Mutex::new(Vec::new()),
            })
        });
        fill.touch();
        Some(fill)
    }

    /// A random read happened: note it, and (re)start workers that paused.
    pub fn touch(&self) {
        let s = &self.shared;
        *s.touched.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        if s.finished.load(Ordering::Relaxed) {
            return;
        }
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers.retain(|w| !w.is_finished());
        while workers.len() < self.parallel {
            workers.push(tokio::spawn(work(s.clone())));
        }
    }
}

impl Drop for Fill {
    fn drop(&mut self) {
        for w in self
            .workers
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            w.abort();
        }
    }
}

/// One worker: claim the next part, fetch it into the cache, until done or idle.
async fn work(s: Arc<Shared>) {
    let total = s.src.block_count(&s.obj);
    let bs = s.src.block_size();
    loop {
        let idle = s
            .touched
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
            > IDLE;
        if idle || s.finished.load(Ordering::Relaxed) {
            return;
        }
        let first = s.next.fetch_add(s.part_blocks, Ordering::Relaxed);
        if first >= total {
            s.finished.store(true, Ordering::Relaxed);
            return;
        }
        let end = (first + s.part_blocks).min(total);
        let (bytes, ceiling) = (get_memory(bs), fill_ceiling(&s.budget));
        let _held = loop {
            if s.budget.used() + bytes <= ceiling {
                if let Some(r) = s.budget.try_reserve(bytes) {
                    break r;
                }
            }
            tokio::time::sleep(BUDGET_RETRY).await;
        };
        if let Err(e) = s.src.stream_to_cache(&s.obj, first, end).await {
            tracing::debug!(key = %s.obj.key, error = %e, "background fill stopped");
            s.finished.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// Memory one streamed GET holds: the block being assembled, and the pieces arriving (tens
/// of KiB).
fn get_memory(block_size: u64) -> u64 {
    block_size + block_size / 4
}

/// The most of the budget fills take: a quarter is left to streams, which would otherwise find
/// it all taken by a fill whenever they start.
fn fill_ceiling(budget: &MemoryBudget) -> u64 {
    budget.limit() / 4 * 3
}

/// The fills running in a mount, one per object version.
#[derive(Debug, Default)]
pub struct FillRegistry {
    map: Mutex<HashMap<(String, String), Weak<Fill>>>,
}

impl FillRegistry {
    fn get_or_insert(&self, key: (String, String), make: impl FnOnce() -> Arc<Fill>) -> Arc<Fill> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = map.get(&key).and_then(Weak::upgrade) {
            return f;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let f = make();
        map.insert(key, Arc::downgrade(&f));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_keep_every_get_busy_between_the_bounds() {
        let cfg = FillConfig {
            parallel: 6,
            part_size: 32 << 20,
        };
        let mib = 1 << 20;
        assert_eq!(part_blocks(1 << 30, cfg, mib), 32, "big objects: the most");
        assert_eq!(
            part_blocks(100 << 20, cfg, mib),
            17,
            "six parts, rounded up to blocks"
        );
        assert_eq!(part_blocks(24 << 20, cfg, mib), 4, "never below 4 MiB");
        assert_eq!(part_blocks(1 << 20, cfg, mib), 4);
        let small = FillConfig {
            parallel: 2,
            part_size: 1 << 20,
        };
        assert_eq!(
            part_blocks(1 << 30, small, mib),
            1,
            "a smaller maximum wins"
        );
    }
}
