//! Names recently found missing, so repeated lookups of them (shells and loaders probe a lot of
//! names) do not each cost a request. Bounded in size; entries expire after a TTL.

use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most names remembered at once; the least recently missed ones go first.
const CAPACITY: usize = 65_536;

/// A bounded, time-limited set of (parent inode, name) pairs known not to exist.
#[derive(Debug)]
pub struct NegativeCache {
    ttl: Duration,
    map: Mutex<LruCache<(u64, String), Instant>>,
}

impl NegativeCache {
    /// A cache whose entries last `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> Self {
        let cap = NonZeroUsize::new(CAPACITY).unwrap_or(NonZeroUsize::MIN);
        NegativeCache {
            ttl,
            map: Mutex::new(LruCache::new(cap)),
        }
    }

    /// Remember that `name` does not exist in `parent`.
    pub fn insert(&self, parent: u64, name: &str) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut m) = self.map.lock() {
            m.put((parent, name.to_string()), Instant::now() + self.ttl);
        }
    }

    /// Whether `name` in `parent` is known missing right now.
    pub fn contains(&self, parent: u64, name: &str) -> bool {
        let Ok(mut m) = self.map.lock() else {
            return false;
        };
        let key = (parent, name.to_string());
        match m.get(&key) {
            Some(&until) if Instant::now() < until => true,
            Some(_) => {
                m.pop(&key);
                false
            }
            None => false,
        }
    }

    /// Forget every missing name.
    pub fn clear(&self) {
        if let Ok(mut m) = self.map.lock() {
            m.clear();
        }
    }

    /// Forget that `name` was missing (it was just created or seen).
    pub fn remove(&self, parent: u64, name: &str) {
        if let Ok(mut m) = self.map.lock() {
            m.pop(&(parent, name.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let c = NegativeCache::new(Duration::from_millis(50));
        c.insert(1, "x");
        assert!(c.contains(1, "x"));
        assert!(!c.contains(2, "x"));
        std::thread::sleep(Duration::from_millis(80));
        assert!(!c.contains(1, "x"));
    }

    #[test]
    fn zero_ttl_disables() {
        let c = NegativeCache::new(Duration::ZERO);
        c.insert(1, "x");
        assert!(!c.contains(1, "x"));
    }
}
