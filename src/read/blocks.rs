//! Blocks of objects, from the disk cache or the backend, with in-flight GETs shared.
//!
//! An object is cut into blocks of `block_size` bytes. [`BlockSource::blocks`] returns a run of
//! blocks: each comes from the disk cache when present, joins a GET already in flight for it
//! (from any handle of the mount), or is fetched; consecutive missing blocks go out as one ranged
//! GET (with If-Match on the ETag) and are written to the cache when they arrive. Objects
//! without an ETag are never cached (nothing could tell their versions apart).

use super::block_cache::DiskBlockCache;
use crate::backend::{Backend, BackendError};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One version of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Object key.
    pub key: String,
    /// Entity tag of this version, if the store gives one.
    pub etag: Option<String>,
    /// Size in bytes.
    pub size: u64,
}

/// Most bytes waiting to be written to the disk cache.
const PENDING_WRITE_LIMIT: u64 = 8 << 20;

type RunFuture = Shared<BoxFuture<'static, Result<Arc<Vec<Bytes>>, BackendError>>>;
type BlockKey = (String, String, u64);

/// Request counters of a block source.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// Ranged GETs sent.
    pub gets: AtomicU64,
    /// Bytes received from the backend.
    pub bytes_fetched: AtomicU64,
    /// Blocks that joined a GET already in flight.
    pub shared: AtomicU64,
    /// Read-ahead windows of a sequential stream dropped by a read elsewhere.
    pub window_resets: AtomicU64,
}

/// Where blocks come from.
#[derive(Debug)]
pub struct BlockSource {
    backend: Arc<dyn Backend>,
    cache: Option<Arc<DiskBlockCache>>,
    block_size: u64,
    inflight: Mutex<HashMap<BlockKey, (RunFuture, usize)>>,
    /// KiB handed to the cache writer and not yet on disk; when all are taken, a fetch waits
    /// for the writer before handing its blocks out, so memory stays bounded.
    pending_writes: Arc<tokio::sync::Semaphore>,
    /// Requests made.
    pub stats: SourceStats,
    /// Background fills of objects read at random.
    pub fills: super::fill::FillRegistry,
}

impl BlockSource {
    /// Blocks of `block_size` bytes from `backend`, cached in `cache` when given.
    pub fn new(
        backend: Arc<dyn Backend>,
        cache: Option<Arc<DiskBlockCache>>,
        block_size: u64,
    ) -> Arc<Self> {
        // The cache lays its files out in its own block size; blocks must match it.
        let block_size = cache
            .as_ref()
            .map_or(block_size.max(4096), |c| c.block_size());
        Arc::new(BlockSource {
            backend,
            cache,
            block_size,
            inflight: Mutex::new(HashMap::new()),
            pending_writes: Arc::new(tokio::sync::Semaphore::new(
                (PENDING_WRITE_LIMIT / 1024) as usize,
            )),
            stats: SourceStats::default(),
            fills: Default::default(),
        })
    }

    /// The block size.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// The backend behind the blocks.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The disk cache, if any.
    pub fn cache(&self) -> Option<&Arc<DiskBlockCache>> {
        self.cache.as_ref()
    }

    /// Number of blocks of `obj`.
    pub fn block_count(&self, obj: &ObjectRef) -> u64 {
        obj.size.div_ceil(self.block_size)
    }

    fn block_range(&self, obj: &ObjectRef, index: u64) -> std::ops::Range<u64> {
        let start = index * self.block_size;
        start..(start + self.block_size).min(obj.size)
    }

    /// Blocks `first .. first + count` of `obj` (clamped to the object).
    pub async fn blocks(
        self: &Arc<Self>,
        obj: &ObjectRef,
        first: u64,
        count: u64,
    ) -> Result<Vec<Bytes>, BackendError> {
        let end = (first + count).min(self.block_count(obj));
        let mut slots: Vec<Option<Bytes>> = vec![None; end.saturating_sub(first) as usize];
        if let (Some(cache), Some(etag)) = (&self.cache, &obj.etag) {
            let (cache, key, etag) = (cache.clone(), obj.key.clone(), etag.clone());
            let hits = tokio::task::spawn_blocking(move || {
                (first..end)
                    .map(|i| cache.get(&key, &etag, i))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| BackendError::Other(format!("cache read task failed: {e}")))?;
            slots = hits;
        }
        // Join GETs in flight, then start one GET per run of still-missing blocks.
        let mut waits: Vec<(usize, RunFuture, usize)> = Vec::new();
        {
            let etag = obj.etag.clone().unwrap_or_default();
            let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
            let mut i = 0;
            while i < slots.len() {
                if slots[i].is_some() {
                    i += 1;
                    continue;
                }
                let idx = first + i as u64;
                if let Some((fut, pos)) = inflight.get(&(obj.key.clone(), etag.clone(), idx)) {
                    self.stats.shared.fetch_add(1, Ordering::Relaxed);
                    waits.push((i, fut.clone(), *pos));
                    i += 1;
                    continue;
                }
                let run_start = i;
                while i < slots.len()
                    && slots[i].is_none()
                    && !inflight.contains_key(&(obj.key.clone(), etag.clone(), first + i as u64))
                {
                    i += 1;
                }
                let run = first + run_start as u64..first + i as u64;
                let fut = self.fetch_run(obj, run.clone());
                for (pos, idx) in run.clone().enumerate() {
                    inflight.insert((obj.key.clone(), etag.clone(), idx), (fut.clone(), pos));
                    waits.push((run_start + pos, fut.clone(), pos));
                }
            }
        }
        for (slot, fut, pos) in waits {
            let run = fut.await?;
            slots[slot] = run.get(pos).cloned();
        }
        slots
            .into_iter()
            .map(|b| {
                b.ok_or_else(|| BackendError::Other(format!("{}: a block went missing", obj.key)))
            })
            .collect()
    }

    /// One GET for blocks `run`, split into blocks, cached, and removed from the in-flight map.
    fn fetch_run(self: &Arc<Self>, obj: &ObjectRef, run: std::ops::Range<u64>) -> RunFuture {
        let this = self.clone();
        let obj = obj.clone();
        let task = tokio::spawn(async move {
            let range =
                this.block_range(&obj, run.start).start..this.block_range(&obj, run.end - 1).end;
            this.stats.gets.fetch_add(1, Ordering::Relaxed);
            let got = this
                .backend
                .get_range(&obj.key, range.clone(), obj.etag.as_deref())
                .await;
            let etag = obj.etag.clone().unwrap_or_default();
            {
                let mut inflight = this.inflight.lock().unwrap_or_else(|p| p.into_inner());
                for idx in run.clone() {
                    inflight.remove(&(obj.key.clone(), etag.clone(), idx));
                }
            }
            let data = got?;
            if data.len() as u64 != range.end - range.start {
                return Err(BackendError::Changed(format!(
                    "{}: expected {} bytes at {}, got {}",
                    obj.key,
                    range.end - range.start,
                    range.start,
                    data.len()
                )));
            }
            this.stats
                .bytes_fetched
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            let blocks: Vec<Bytes> = run
                .clone()
                .map(|i| {
                    let r = this.block_range(&obj, i);
                    data.slice((r.start - range.start) as usize..(r.end - range.start) as usize)
                })
                .collect();
            if let (Some(cache), Some(etag)) = (this.cache.clone(), obj.etag.clone()) {
                // Wait (bounded) for the writer to catch up, so memory stays bounded and a
                // streamed object ends up fully cached.
                let kib = (data.len() as u64)
                    .div_ceil(1024)
                    .clamp(1, PENDING_WRITE_LIMIT / 1024) as u32;
                if let Ok(permit) = this.pending_writes.clone().acquire_many_owned(kib).await {
                    let (to_cache, key, first) = (blocks.clone(), obj.key.clone(), run.start);
                    let size = obj.size;
                    tokio::task::spawn_blocking(move || {
                        for (i, b) in to_cache.iter().enumerate() {
                            cache.put(&key, &etag, size, first + i as u64, b);
                        }
                        drop(permit);
                    });
                }
            }
            Ok(Arc::new(blocks))
        });
        async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(BackendError::Other(format!("fetch task failed: {e}"))),
            }
        }
        .boxed()
        .shared()
    }

    /// Wait (at most `limit`) until every block handed to the cache writer is on disk; called
    /// before the daemon exits so that what was read is cached for the next mount.
    pub async fn drain_cache_writes(&self, limit: std::time::Duration) -> bool {
        let all = (PENDING_WRITE_LIMIT / 1024) as u32;
        tokio::time::timeout(limit, self.pending_writes.acquire_many(all))
            .await
            .is_ok_and(|p| p.is_ok())
    }

    /// Bytes `range` of `obj` straight from the backend, not as whole blocks (for small random
    /// reads, which should not pull whole blocks). What it brings is handed to the disk cache as
    /// pieces (partial blocks) in the background, when the cache writer has room.
    pub async fn direct(
        &self,
        obj: &ObjectRef,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, BackendError> {
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let data = self
            .backend
            .get_range(&obj.key, range.clone(), obj.etag.as_deref())
            .await?;
        self.stats
            .bytes_fetched
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        if let (Some(cache), Some(etag)) = (self.cache.clone(), obj.etag.clone()) {
            let kib = (data.len() as u64).div_ceil(1024).max(1) as u32;
            // Never wait on the reader's path: with the writer busy, the piece is not kept.
            if let Ok(permit) = self.pending_writes.clone().try_acquire_many_owned(kib) {
                let (key, size, bytes) = (obj.key.clone(), obj.size, data.clone());
                tokio::task::spawn_blocking(move || {
                    cache.put_range(&key, &etag, size, range.start, &bytes);
                    drop(permit);
                });
            }
        }
        Ok(data)
    }

    /// Bytes `offset..end` of `obj` from pieces (partial blocks) in the disk cache, when every
    /// piece they span is there.
    pub async fn cached_pieces(&self, obj: &ObjectRef, offset: u64, end: u64) -> Option<Bytes> {
        let (cache, etag) = (self.cache.clone()?, obj.etag.clone()?);
        if !cache.has_pieces(&obj.key, &etag, offset, end) {
            return None;
        }
        let key = obj.key.clone();
        tokio::task::spawn_blocking(move || cache.pieces_range(&key, &etag, offset, end - offset))
            .await
            .ok()
            .flatten()
    }

    /// Whether block `index` of `obj` is on disk (no I/O beyond an open; for random reads).
    pub async fn cached_block(&self, obj: &ObjectRef, index: u64) -> Option<Bytes> {
        let (cache, etag) = (self.cache.clone()?, obj.etag.clone()?);
        let key = obj.key.clone();
        tokio::task::spawn_blocking(move || cache.get(&key, &etag, index))
            .await
            .ok()
            .flatten()
    }

    /// Whether blocks `first .. end` of `obj` are all in the disk cache (no I/O).
    #[cfg(test)]
    pub fn has_blocks(&self, obj: &ObjectRef, first: u64, end: u64) -> bool {
        match (&self.cache, &obj.etag) {
            (Some(cache), Some(etag)) => cache.has_blocks(&obj.key, etag, first, end),
            _ => false,
        }
    }

    /// Whether the disk cache may hold bytes `offset..end` of `obj` as blocks (no I/O).
    pub fn may_hold(&self, obj: &ObjectRef, offset: u64, end: u64) -> bool {
        match (&self.cache, &obj.etag) {
            (Some(cache), Some(etag)) => cache.may_hold(&obj.key, etag, offset, end),
            _ => false,
        }
    }

    /// Bytes `offset..end` of `obj` from the disk cache when the version is complete there
    /// (read without a per-block CRC; see `block_cache::range`).
    pub async fn complete_range(&self, obj: &ObjectRef, offset: u64, end: u64) -> Option<Bytes> {
        let (cache, etag) = (self.cache.clone()?, obj.etag.clone()?);
        let key = obj.key.clone();
        tokio::task::spawn_blocking(move || cache.complete_range(&key, &etag, offset, end - offset))
            .await
            .ok()
            .flatten()
    }

    /// Block `index` of `obj` from a GET already in flight for it (another handle's stream),
    /// if there is one. (A background fill's streamed GETs are not joinable: their blocks go
    /// to the cache as they arrive.)
    pub fn joined(
        &self,
        obj: &ObjectRef,
        index: u64,
    ) -> Option<impl std::future::Future<Output = Result<Bytes, BackendError>>> {
        let etag = obj.etag.clone().unwrap_or_default();
        let (fut, pos) = self
            .inflight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(obj.key.clone(), etag, index))
            .cloned()?;
        self.stats.shared.fetch_add(1, Ordering::Relaxed);
        let key = obj.key.clone();
        Some(async move {
            fut.await?
                .get(pos)
                .cloned()
                .ok_or_else(|| BackendError::Other(format!("{key}: a block went missing")))
        })
    }

    /// Blocks `first .. end` of `obj` by one ranged GET whose body goes to the disk cache a
    /// block at a time as it arrives (one block in memory, not the range), for the background
    /// fill and `cloudmount warm`. A run already all cached is not fetched; blocks already
    /// cached in a run that is not are skipped by the cache; a block the
    /// cache cannot write fails it with [`BackendError::NoSpace`]. Does nothing without a cache
    /// or an entity tag.
    pub async fn stream_to_cache(
        &self,
        obj: &ObjectRef,
        first: u64,
        end: u64,
    ) -> Result<(), BackendError> {
        let (Some(cache), Some(etag)) = (self.cache.clone(), obj.etag.clone()) else {
            return Ok(());
        };
        let end = end.min(self.block_count(obj));
        if first >= end || cache.has_blocks(&obj.key, &etag, first, end) {
            return Ok(());
        }
        let range = self.block_range(obj, first).start..self.block_range(obj, end - 1).end;
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let mut body = self
            .backend
            .get_range_stream(&obj.key, range.clone(), obj.etag.as_deref())
            .await?;
        let (mut idx, mut buf) = (first, bytes::BytesMut::new());
        while let Some(piece) = futures::StreamExt::next(&mut body).await {
            let mut piece = piece?;
            self.stats
                .bytes_fetched
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
            while !piece.is_empty() {
                if idx >= end {
                    return Err(BackendError::Changed(format!(
                        "{}: more than the {} bytes asked at {}",
                        obj.key,
                        range.end - range.start,
                        range.start
                    )));
                }
                let block_range = self.block_range(obj, idx);
                let len = (block_range.end - block_range.start) as usize;
                buf.reserve(len.saturating_sub(buf.len()));
                let take = (len - buf.len()).min(piece.len());
                buf.extend_from_slice(&piece.split_to(take));
                if buf.len() == len {
                    let block = buf.split().freeze();
                    let (cache, key, etag, size) =
                        (cache.clone(), obj.key.clone(), etag.clone(), obj.size);
                    let stored = tokio::task::spawn_blocking(move || {
                        cache.store(&key, &etag, size, idx, &block)
                    })
                    .await
                    .map_err(|e| BackendError::Other(format!("cache write task failed: {e}")))?;
                    // Fetching on is pointless when nothing can be kept.
                    stored.map_err(|e| {
                        BackendError::NoSpace(format!(
                            "cannot write block {idx} of {} to the cache in {}: {e} (is its disk \
                             full?)",
                            obj.key,
                            self.cache
                                .as_ref()
                                .map_or(String::new(), |c| c.dir().display().to_string())
                        ))
                    })?;
                    idx += 1;
                }
            }
        }
        if idx != end {
            return Err(BackendError::Changed(format!(
                "{}: the answer ended {} bytes short of {}-{}",
                obj.key,
                self.block_range(obj, end - 1).end
                    - (self.block_range(obj, idx).start + buf.len() as u64),
                range.start,
                range.end - 1
            )));
        }
        Ok(())
    }
}
