//! An in-memory [`Backend`] with S3 listing semantics, request counters and injectable delays.
//!
//! A test double for the core's unit tests and benchmarks, never a way to mount real data.
//! Keys ending in `/` are directory markers, exactly as in an S3 bucket.

use super::{Backend, BackendError, ListPage, ObjectInfo, PosixMeta};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone)]
struct Object {
    data: Bytes,
    mtime: SystemTime,
    etag: String,
    meta: PosixMeta,
}

/// Number of calls of each kind the backend has served.
#[derive(Debug, Default)]
pub struct Counters {
    /// `head` calls.
    pub head: AtomicU64,
    /// `list` calls.
    pub list: AtomicU64,
    /// `get_range` calls.
    pub get: AtomicU64,
}

/// An in-memory bucket.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    objects: Mutex<BTreeMap<String, Object>>,
    next_etag: AtomicU64,
    /// Calls served so far.
    pub counters: Counters,
    /// `get_range` of a key containing `.0` sleeps `.1` first.
    slow_get: Mutex<Option<(String, Duration)>>,
    /// Every `put` fails while set (a server that is down).
    failing_puts: std::sync::atomic::AtomicBool,
}

impl MemoryBackend {
    /// An empty bucket.
    pub fn new() -> Self {
        Self::default()
    }

    /// Store `data` under `key` (a key ending in `/` is a directory marker).
    pub fn insert(&self, key: &str, data: impl Into<Bytes>) {
        self.insert_with_meta(key, data, PosixMeta::default());
    }

    /// Store `data` under `key` with POSIX attributes `meta`.
    pub fn insert_with_meta(&self, key: &str, data: impl Into<Bytes>, meta: PosixMeta) {
        let etag = format!("\"{}\"", self.next_etag.fetch_add(1, Ordering::Relaxed));
        let obj = Object {
            data: data.into(),
            mtime: SystemTime::now(),
            etag,
            meta,
        };
        self.lock().insert(key.to_string(), obj);
    }

    /// Remove `key`.
    pub fn remove(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Make every `get_range` of a key containing `needle` take `delay` longer.
    pub fn slow_down_gets(&self, needle: &str, delay: Duration) {
        if let Ok(mut s) = self.slow_get.lock() {
            *s = Some((needle.to_string(), delay));
        }
    }

    /// Make every `put` fail (`true`) or work again.
    pub fn fail_puts(&self, fail: bool) {
        self.failing_puts.store(fail, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Object>> {
        // A poisoned lock only means another test thread panicked; the map is still usable.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn info(key: &str, o: &Object) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size: o.data.len() as u64,
            mtime: o.mtime,
            etag: Some(o.etag.clone()),
            meta: PosixMeta::default(),
        }
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn describe(&self) -> String {
        "memory://".to_string()
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        self.counters.head.fetch_add(1, Ordering::Relaxed);
        let map = self.lock();
        map.get(key)
            .map(|o| ObjectInfo {
                meta: o.meta.clone(),
                ..Self::info(key, o)
            })
            .ok_or_else(|| BackendError::NotFound(key.into()))
    }

    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        self.counters.list.fetch_add(1, Ordering::Relaxed);
        let map = self.lock();
        let mut page = ListPage::default();
        let mut count = 0;
        let mut last: Option<String> = None;
        // Resume after the token (a prefix ends in '/', so skip everything under it at once).
        let from = match token {
            Some(t) if t.ends_with('/') => format!("{t}\u{10ffff}"),
            Some(t) => format!("{t}\0"),
            None => prefix.to_string(),
        };
        for (key, obj) in map.range(from.max(prefix.to_string())..) {
            if !key.starts_with(prefix) {
                break;
            }
            let rest = &key[prefix.len()..];
            // The item this key contributes: a sub-prefix or an object directly under `prefix`.
            let item = match rest.find('/') {
                Some(i) => key[..prefix.len() + i + 1].to_string(),
                None => key.clone(),
            };
            if rest.is_empty() {
                page.marker = true;
                continue;
            }
            if token.is_some_and(|t| item.as_str() <= t) {
                continue;
            }
            if last.as_deref() == Some(item.as_str()) {
                continue;
            }
            if count == max_keys.max(1) {
                page.next_token = last.clone();
                break;
            }
            count += 1;
            if item.ends_with('/') {
                page.prefixes.push(item.clone());
            } else {
                page.objects.push(Self::info(key, obj));
            }
            last = Some(item);
        }
        Ok(page)
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        self.counters.get.fetch_add(1, Ordering::Relaxed);
        let slow = self.slow_get.lock().ok().and_then(|s| s.clone());
        if let Some((needle, delay)) = slow {
            if key.contains(&needle) {
                tokio::time::sleep(delay).await;
            }
        }
        let map = self.lock();
        let obj = map
            .get(key)
            .ok_or_else(|| BackendError::NotFound(key.into()))?;
        if etag.is_some_and(|e| e != obj.etag) {
            return Err(BackendError::Changed(key.into()));
        }
        let len = obj.data.len() as u64;
        let start = range.start.min(len) as usize;
        let end = range.end.min(len) as usize;
        Ok(obj.data.slice(start..end))
    }

    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        if self.failing_puts.load(Ordering::Relaxed) {
            return Err(BackendError::Unreachable(format!(
                "put {key}: server down (test)"
            )));
        }
        self.insert_with_meta(key, data, meta.clone());
        self.head(key).await
    }

    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        self.insert_with_meta(dir, Bytes::new(), meta.clone());
        Ok(())
    }

    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        self.remove(dir);
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError> {
        let (data, meta) = {
            let map = self.lock();
            map.get(from)
                .map(|o| (o.data.clone(), o.meta.clone()))
                .ok_or_else(|| BackendError::NotFound(from.into()))?
        };
        self.insert_with_meta(to, data, meta);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lists_like_s3_with_markers_and_paging() {
        let b = MemoryBackend::new();
        for k in ["a", "b/", "b/x", "c/d/e", "f", "g"] {
            b.insert(k, "1");
        }
        let p = b.list("", None, 3).await.unwrap();
        assert_eq!(
            p.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(p.prefixes, ["b/", "c/"]);
        let p2 = b.list("", p.next_token.as_deref(), 3).await.unwrap();
        assert_eq!(
            p2.objects
                .iter()
                .map(|o| o.key.as_str())
                .collect::<Vec<_>>(),
            ["f", "g"]
        );
        assert!(p2.next_token.is_none());
        let inner = b.list("b/", None, 10).await.unwrap();
        assert_eq!(
            inner.objects.len(),
            1,
            "the marker b/ is not listed inside b/"
        );
    }
}
