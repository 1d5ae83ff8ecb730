//! Complete directory listings kept for `dir_cache_timeout`, so `ls` of a directory a second time
//! and lookups of names in it need no request. Bounded by the total number of entries held;
//! the least recently used listings go first.
//!
//! A listing takes time (a page per 1,000 names): a file created or removed through the mount
//! while a listing of its directory is in flight may be missing from (or still in) that
//! listing. So the cache remembers when each directory was last invalidated, and refuses a
//! listing that started before then: the next lookup or `ls` lists again.

use super::listing::Listed;
use lru::LruCache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One complete listing of a directory.
#[derive(Debug)]
pub struct Listing {
    /// Entries in listing order.
    pub entries: Vec<Listed>,
    index: HashMap<String, usize>,
    at: Instant,
}

impl Listing {
    /// The entry named `name`, if the directory has one.
    pub fn get(&self, name: &str) -> Option<&Listed> {
        self.index.get(name).and_then(|&i| self.entries.get(i))
    }
}

/// Invalidation instants older than this are forgotten (no listing runs that long).
const INVALIDATION_MEMORY: Duration = Duration::from_secs(600);

/// Invalidation instants remembered before old ones are pruned.
const INVALIDATIONS_KEPT: usize = 4096;

#[derive(Debug)]
struct Inner {
    lru: LruCache<String, Arc<Listing>>,
    /// Entries held in all listings.
    total: usize,
    /// When each directory's content last changed through the mount.
    invalidated: HashMap<String, Instant>,
    /// When every listing was last dropped at once.
    cleared: Option<Instant>,
}

/// Listings by directory key.
#[derive(Debug)]
pub struct DirCache {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<Inner>,
}

impl DirCache {
    /// A cache keeping listings for `ttl`, holding at most `max_entries` entries in all.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        DirCache {
            ttl,
            max_entries,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                total: 0,
                invalidated: HashMap::new(),
                cleared: None,
            }),
        }
    }

    /// Whether a directory with `n` entries may be cached at all.
    pub fn accepts(&self, n: usize) -> bool {
        !self.ttl.is_zero() && n <= self.max_entries
    }

    /// The fresh listing of directory `key`, if cached. One whose TTL ran out stays (within
    /// the bound) for [`DirCache::get_stale`].
    pub fn get(&self, key: &str) -> Option<Arc<Listing>> {
        let mut g = self.inner.lock().ok()?;
        let listing = g.lru.get(key)?;
        (listing.at.elapsed() < self.ttl).then(|| listing.clone())
    }

    /// The last listing of directory `key`, however old (while the store does not answer).
    pub fn get_stale(&self, key: &str) -> Option<Arc<Listing>> {
        self.inner.lock().ok()?.lru.get(key).cloned()
    }

    /// Store the complete listing of directory `key`, whose first page was asked for at
    /// `started`; refused when the directory changed through the mount since then.
    pub fn put(&self, key: &str, entries: Vec<Listed>, started: Instant) {
        if !self.accepts(entries.len()) {
            return;
        }
        let index = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        let listing = Arc::new(Listing {
            entries,
            index,
            at: started,
        });
        let Ok(mut g) = self.inner.lock() else { return };
        let changed = g.cleared.is_some_and(|c| c >= started)
            || g.invalidated.get(key).is_some_and(|&i| i >= started);
        if changed {
            tracing::debug!(
                dir = key,
                "a listing older than a change of its directory is not cached"
            );
            return;
        }
        g.total += listing.entries.len();
        if let Some(old) = g.lru.put(key.to_string(), listing) {
            g.total -= old.entries.len();
        }
        while g.total > self.max_entries {
            match g.lru.pop_lru() {
                Some((_, old)) => g.total -= old.entries.len(),
                None => break,
            }
        }
    }

    /// Drop every listing.
    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.lru.clear();
            g.total = 0;
            g.invalidated.clear();
            g.cleared = Some(Instant::now());
        }
    }

    /// Drop the listing of directory `key` (its content changed).
    pub fn invalidate(&self, key: &str) {
        let Ok(mut g) = self.inner.lock() else { return };
        if let Some(old) = g.lru.pop(key) {
            g.total -= old.entries.len();
        }
        let now = Instant::now();
        if g.invalidated.len() >= INVALIDATIONS_KEPT {
            g.invalidated
                .retain(|_, at| now.duration_since(*at) < INVALIDATION_MEMORY);
            if g.invalidated.len() >= INVALIDATIONS_KEPT {
                // Too many recent changes to remember one by one: refuse every listing in
                // flight instead.
                g.invalidated.clear();
                g.cleared = Some(now);
            }
        }
        g.invalidated.insert(key.to_string(), now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::attr::{Kind, Stat};
    use std::time::SystemTime;

    fn entries(n: usize) -> Vec<Listed> {
        (0..n)
            .map(|i| Listed {
                name: format!("f{i}"),
                key: format!("f{i}"),
                kind: Kind::File,
                stat: Stat {
                    size_unknown: false,
                    size: 1,
                    mtime: SystemTime::UNIX_EPOCH,
                    etag: None,
                    meta: Default::default(),
                },
            })
            .collect()
    }

    #[test]
    fn bounded_by_total_entries_and_ttl() {
        let c = DirCache::new(Duration::from_millis(100), 10);
        c.put("a/", entries(6), Instant::now());
        c.put("b/", entries(6), Instant::now());
        assert!(c.get("a/").is_none(), "evicted to stay under 10 entries");
        assert_eq!(c.get("b/").map(|l| l.get("f3").is_some()), Some(true));
        c.put("huge/", entries(11), Instant::now());
        assert!(c.get("huge/").is_none(), "too big to cache");
        std::thread::sleep(Duration::from_millis(150));
        assert!(c.get("b/").is_none(), "expired");
        assert!(
            c.get_stale("b/").is_some(),
            "kept for when the store does not answer"
        );
    }

    #[test]
    fn a_listing_that_started_before_a_change_is_not_kept() {
        let c = DirCache::new(Duration::from_secs(60), 100);
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        c.invalidate("d/");
        c.put("d/", entries(3), started);
        assert!(c.get("d/").is_none(), "the listing may miss the change");
        c.put("d/", entries(3), Instant::now());
        assert!(
            c.get("d/").is_some(),
            "a listing started after the change is kept"
        );
        c.put("e/", entries(3), started);
        assert!(c.get("e/").is_some(), "other directories are not affected");
        let before_clear = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        c.clear();
        c.put("e/", entries(3), before_clear);
        assert!(
            c.get("e/").is_none(),
            "a clear refuses every listing in flight"
        );
    }

    #[test]
    fn invalidations_stay_bounded_and_keep_refusing() {
        let c = DirCache::new(Duration::from_secs(60), 100);
        let started = Instant::now();
        std::thread::sleep(Duration::from_millis(2));
        for i in 0..INVALIDATIONS_KEPT + 10 {
            c.invalidate(&format!("d{i}/"));
        }
        let g = c.inner.lock().unwrap();
        assert!(g.invalidated.len() <= INVALIDATIONS_KEPT);
        drop(g);
        c.put("d1/", entries(1), started);
        assert!(c.get("d1/").is_none(), "still refused after pruning");
    }
}
