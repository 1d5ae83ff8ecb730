//! An in-memory [`Backend`] with S3 listing semantics, request counters and injectable delays.
//!
//! A test double for the core's unit tests and benchmarks, never a way to mount real data.
//! Keys ending in `/` are directory markers, exactly as in an S3 bucket.

use super::{Backend, BackendError, ListPage, ObjectInfo, PosixMeta};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Streaming uploads completed.
    pub streamed: Arc<AtomicU64>,
}

/// An in-memory bucket.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    objects: Arc<Mutex<BTreeMap<String, Object>>>,
    next_etag: Arc<AtomicU64>,
    /// Streaming (multipart) uploads, with at most this many parts (0: none, as a store
    /// without multipart uploads).
    max_parts: u64,
    /// Calls served so far.
    pub counters: Counters,
    /// `get_range` of a key containing `.0` sleeps `.1` first.
    slow_get: Mutex<Option<(String, Duration)>>,
    /// Streamed bodies come in pieces of this many bytes, this far apart (0: in one piece).
    trickle: Mutex<(usize, Duration)>,
    /// The next `.1` streamed bodies break off after `.0` bytes (a connection reset).
    breaking: Mutex<(usize, u32)>,
    /// A streamed body polled this long after its request fails (a client's request timeout).
    body_timeout: Mutex<Option<Duration>>,
    /// Every `put` fails while set (a server that is down).
    failing_puts: std::sync::atomic::AtomicBool,
    /// Moves files and whole directories in one step ([`Backend::rename`]), as Drive does.
    native_renames: bool,
    /// `copy` calls served.
    pub copies: AtomicU64,
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

    /// An empty bucket that takes streaming uploads of at most `max_parts` parts, every part
    /// but the last at least 5 MiB (as S3 does), and refuses more.
    pub fn with_streaming(max_parts: u64) -> Self {
        MemoryBackend {
            max_parts,
            ..Self::default()
        }
    }

    /// An empty bucket that renames files and directories in one step, as Drive does.
    pub fn with_native_renames() -> Self {
        MemoryBackend {
            native_renames: true,
            ..Self::default()
        }
    }

    /// Store `data` under `key` with POSIX attributes `meta`.
    pub fn insert_with_meta(&self, key: &str, data: impl Into<Bytes>, meta: PosixMeta) {
        store(&self.objects, &self.next_etag, key, data.into(), meta);
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

    /// Hand the bodies of streamed GETs ([`Backend::get_range_stream`]) out in pieces of
    /// `chunk` bytes, `delay` apart, as a network would (`chunk` 0: in one piece).
    pub fn trickle_bodies(&self, chunk: usize, delay: Duration) {
        if let Ok(mut t) = self.trickle.lock() {
            *t = (chunk, delay);
        }
    }

    /// Make the next `times` streamed bodies break off after `after` bytes, with an error.
    pub fn break_bodies(&self, after: usize, times: u32) {
        if let Ok(mut b) = self.breaking.lock() {
            *b = (after, times);
        }
    }

    /// Make a streamed body fail when it is read from `limit` after its request was made, as
    /// a client's whole-request timeout does.
    pub fn time_out_bodies(&self, limit: Duration) {
        if let Ok(mut t) = self.body_timeout.lock() {
            *t = Some(limit);
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
            size_unknown: false,
            key: key.to_string(),
            size: o.data.len() as u64,
            mtime: o.mtime,
            etag: Some(o.etag.clone()),
            meta: PosixMeta::default(),
        }
    }
}

fn store(
    objects: &Mutex<BTreeMap<String, Object>>,
    next_etag: &AtomicU64,
    key: &str,
    data: Bytes,
    meta: PosixMeta,
) {
    let etag = format!("\"{}\"", next_etag.fetch_add(1, Ordering::Relaxed));
    let obj = Object {
        data,
        mtime: SystemTime::now(),
        etag,
        meta,
    };
    objects
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key.to_string(), obj);
}

/// A streaming upload into a [`MemoryBackend`] (see [`MemoryBackend::with_streaming`]).
#[derive(Debug)]
struct MemUpload {
    key: String,
    meta: PosixMeta,
    parts: Vec<Bytes>,
    max_parts: u64,
    objects: Arc<Mutex<BTreeMap<String, Object>>>,
    next_etag: Arc<AtomicU64>,
    streamed: Arc<AtomicU64>,
}

#[async_trait]
impl super::Upload for MemUpload {
    async fn put_part(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
        if self.parts.len() as u64 >= self.max_parts {
            return Err(BackendError::Other(format!(
                "{}: more than {} parts",
                self.key, self.max_parts
            )));
        }
        let mut part = Vec::new();
        for d in data {
            part.extend_from_slice(&d);
        }
        self.parts.push(Bytes::from(part));
        Ok(())
    }

    async fn complete(self: Box<Self>, size: u64) -> Result<ObjectInfo, BackendError> {
        let n = self.parts.len();
        let small = self.parts[..n.saturating_sub(1)]
            .iter()
            .any(|p| p.len() < super::part_size::MIN_PART as usize);
        let data: Vec<u8> = self.parts.iter().flat_map(|p| p.iter().copied()).collect();
        if small || data.len() as u64 != size {
            return Err(BackendError::Other(format!(
                "{}: a part below 5 MiB, or {} bytes where {size} were announced",
                self.key,
                data.len()
            )));
        }
        store(
            &self.objects,
            &self.next_etag,
            &self.key,
            data.into(),
            self.meta.clone(),
        );
        self.streamed.fetch_add(1, Ordering::Relaxed);
        let objects = self.objects.lock().unwrap_or_else(|p| p.into_inner());
        let o = objects
            .get(&self.key)
            .ok_or_else(|| BackendError::NotFound(self.key.clone()))?;
        Ok(MemoryBackend::info(&self.key, o))
    }

    async fn abort(self: Box<Self>) {}
}

#[async_trait]
impl Backend for MemoryBackend {
    fn max_parts(&self) -> u64 {
        match self.max_parts {
            0 => super::part_size::MAX_PARTS,
            n => n,
        }
    }

    async fn start_upload(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn super::Upload>, BackendError> {
        if self.max_parts == 0 {
            return Err(BackendError::Unsupported(format!(
                "streaming upload of {key}"
            )));
        }
        Ok(Box::new(MemUpload {
            key: key.to_string(),
            meta: meta.clone(),
            parts: Vec::new(),
            max_parts: self.max_parts,
            objects: self.objects.clone(),
            next_etag: self.next_etag.clone(),
            streamed: self.counters.streamed.clone(),
        }))
    }

    fn describe(&self) -> String {
        "memory://".to_string()
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        self.counters.head.fetch_add(1, Ordering::Relaxed);
        let map = self.lock();
        map.get(key)
            .map(|o| ObjectInfo {
                size_unknown: false,
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

    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<super::ByteStream, BackendError> {
        let data = self.get_range(key, range, etag).await?;
        let (chunk, delay) = self.trickle.lock().map(|t| *t).unwrap_or_default();
        let chunk = if chunk == 0 { data.len().max(1) } else { chunk };
        let mut pieces: Vec<Bytes> = (0..data.len())
            .step_by(chunk)
            .map(|a| data.slice(a..(a + chunk).min(data.len())))
            .collect();
        let mut broken = false;
        if let Ok(mut b) = self.breaking.lock() {
            if b.1 > 0 && b.0 < data.len() {
                b.1 -= 1;
                broken = true;
                let mut left = b.0;
                pieces.retain_mut(|p| {
                    let keep = left > 0;
                    *p = p.slice(..left.min(p.len()));
                    left -= p.len();
                    keep
                });
            }
        }
        let timeout = self.body_timeout.lock().ok().and_then(|t| *t);
        let started = tokio::time::Instant::now();
        let items = pieces
            .into_iter()
            .map(Ok)
            .chain(broken.then(|| Err(BackendError::Other("connection reset by peer".into()))));
        let stream = futures::stream::iter(items.enumerate()).then(move |(i, p)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if timeout.is_some_and(|t| started.elapsed() > t) {
                return Err(BackendError::Unreachable("operation timed out".into()));
            }
            p
        });
        Ok(Box::pin(stream))
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
            return Err(BackendError::Busy(format!(
                "put {key}: server failing (test)"
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
        self.copies.fetch_add(1, Ordering::Relaxed);
        let (data, meta) = {
            let map = self.lock();
            map.get(from)
                .map(|o| (o.data.clone(), o.meta.clone()))
                .ok_or_else(|| BackendError::NotFound(from.into()))?
        };
        self.insert_with_meta(to, data, meta);
        Ok(())
    }

    async fn marker_meta(&self, dir: &str) -> Result<Option<PosixMeta>, BackendError> {
        self.counters.head.fetch_add(1, Ordering::Relaxed);
        Ok(self.lock().get(dir).map(|o| o.meta.clone()))
    }

    async fn copy_with_meta(
        &self,
        from: &str,
        to: &str,
        meta: &PosixMeta,
    ) -> Result<(), BackendError> {
        self.copies.fetch_add(1, Ordering::Relaxed);
        let data = self
            .lock()
            .get(from)
            .map(|o| o.data.clone())
            .ok_or_else(|| BackendError::NotFound(from.into()))?;
        self.insert_with_meta(to, data, meta.clone());
        Ok(())
    }

    async fn set_meta(
        &self,
        key: &str,
        meta: &PosixMeta,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        self.copies.fetch_add(1, Ordering::Relaxed);
        let data = {
            let map = self.lock();
            let obj = map
                .get(key)
                .ok_or_else(|| BackendError::NotFound(key.into()))?;
            if obj.etag != etag {
                return Err(BackendError::Changed(key.into()));
            }
            obj.data.clone()
        };
        self.insert_with_meta(key, data, meta.clone());
        Ok(self.lock().get(key).map(|o| o.etag.clone()))
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.remove(key);
        Ok(())
    }

    fn renames(&self) -> bool {
        self.native_renames
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        let mut map = self.lock();
        let moving: Vec<String> = map
            .keys()
            .filter(|k| *k == from || (from.ends_with('/') && k.starts_with(from)))
            .cloned()
            .collect();
        if moving.is_empty() && !from.ends_with('/') {
            return Err(BackendError::NotFound(from.into()));
        }
        for k in moving {
            if let Some(o) = map.remove(&k) {
                map.insert(format!("{to}{}", &k[from.len()..]), o);
            }
        }
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
