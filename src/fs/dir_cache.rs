//! Complete directory listings kept for `dir_cache_timeout`, so `ls` of a directory a second time
//! and lookups of names in it need no request. Bounded by the total number of entries held;
//! the least recently used listings go first.

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

/// Listings by directory key.
#[derive(Debug)]
pub struct DirCache {
    ttl: Duration,
    max_entries: usize,
    inner: Mutex<(LruCache<String, Arc<Listing>>, usize)>,
}

impl DirCache {
    /// A cache keeping listings for `ttl`, holding at most `max_entries` entries in all.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        DirCache {
            ttl,
            max_entries,
            inner: Mutex::new((LruCache::unbounded(), 0)),
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
        let listing = g.0.get(key)?;
        (listing.at.elapsed() < self.ttl).then(|| listing.clone())
    }

    /// The last listing of directory `key`, however old (while the store does not answer).
    pub fn get_stale(&self, key: &str) -> Option<Arc<Listing>> {
        self.inner.lock().ok()?.0.get(key).cloned()
    }

    /// Store the complete listing of directory `key`.
    pub fn put(&self, key: &str, entries: Vec<Listed>) {
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
            at: Instant::now(),
        });
        let Ok(mut g) = self.inner.lock() else { return };
        let (lru, total) = &mut *g;
        *total += listing.entries.len();
        if let Some(old) = lru.put(key.to_string(), listing) {
            *total -= old.entries.len();
        }
        while *total > self.max_entries {
            match lru.pop_lru() {
                Some((_, old)) => *total -= old.entries.len(),
                None => break,
            }
        }
    }

    /// Drop every listing.
    pub fn clear(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.0.clear();
            g.1 = 0;
        }
    }

    /// Drop the listing of directory `key` (its content changed).
    pub fn invalidate(&self, key: &str) {
        if let Ok(mut g) = self.inner.lock() {
            let (lru, total) = &mut *g;
            if let Some(old) = lru.pop(key) {
                *total -= old.entries.len();
            }
        }
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
        c.put("a/", entries(6));
        c.put("b/", entries(6));
        assert!(c.get("a/").is_none(), "evicted to stay under 10 entries");
        assert_eq!(c.get("b/").map(|l| l.get("f3").is_some()), Some(true));
        c.put("huge/", entries(11));
        assert!(c.get("huge/").is_none(), "too big to cache");
        std::thread::sleep(Duration::from_millis(150));
        assert!(c.get("b/").is_none(), "expired");
        assert!(
            c.get_stale("b/").is_some(),
            "kept for when the store does not answer"
        );
    }
}
