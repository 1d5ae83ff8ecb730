//! Blocks of objects, from the disk cache or the backend, with in-flight GETs shared.
//!
//! An object is cut into blocks of `block_size` bytes. [`BlockSource::blocks`] returns a run of
//! blocks: each comes from the disk cache when present, joins a GET already in flight for it
//! (from any handle of the mount), or is fetched; consecutive missing blocks go out as one ranged
//! GET (with If-Match on the ETag), streamed: each block is handed out and written to the cache
//! as soon as its bytes are in ([`run`]). Objects
//! without an ETag are never cached (nothing could tell their versions apart).

mod cut;
mod run;

use super::block_cache::DiskBlockCache;
use super::budget::MemoryBudget;
use crate::backend::{Backend, BackendError};
use bytes::Bytes;
use cut::Cutter;
pub use run::{Block, BlockSlot, Pending};
use run::{BlockFuture, RunCtl};
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

/// Most bytes waiting to be written to the disk cache. 4 MiB rather than 8: a cold 1 GiB read
/// (4 alternating rounds per setting) ran as fast (876-921 against 858-943 MB/s at 0 ms, and
/// the same within the noise at 20 ms, with 3 ms of server CPU and with 4 readers at once)
/// with a peak RSS 1-2 MiB lower; random reads the same.
const PENDING_WRITE_LIMIT: u64 = 4 << 20;

type BlockKey = (String, String, u64);
/// A block of a GET in flight: its future, its run, its position in the run.
type InFlight = (BlockFuture, Arc<RunCtl>, u64);

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
    /// Blocks of GETs in flight: their future, their run, their position in it.
    inflight: Mutex<HashMap<BlockKey, InFlight>>,
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

    /// Blocks `first .. first + count` of `obj` (clamped to the object): those in the disk
    /// cache read now (their memory taken from `budget`), the others joined to a GET in flight
    /// or fetched by a new one per run of missing blocks, streamed (see [`run`]).
    pub async fn blocks(
        self: &Arc<Self>,
        obj: &ObjectRef,
        first: u64,
        count: u64,
        budget: &Arc<MemoryBudget>,
    ) -> Result<Vec<BlockSlot>, BackendError> {
        let end = (first + count).min(self.block_count(obj));
        let mut hits: Vec<Option<Bytes>> = vec![None; end.saturating_sub(first) as usize];
        if let (Some(cache), Some(etag)) = (&self.cache, &obj.etag) {
            let (cache, key, etag) = (cache.clone(), obj.key.clone(), etag.clone());
            hits = tokio::task::spawn_blocking(move || {
                (first..end)
                    .map(|i| cache.get(&key, &etag, i))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| BackendError::Other(format!("cache read task failed: {e}")))?;
        }
        let mut slots = Vec::with_capacity(hits.len());
        let etag = obj.etag.clone().unwrap_or_default();
        let key = |i: u64| (obj.key.clone(), etag.clone(), i);
        // Join GETs in flight, then start one GET per run of still-missing blocks.
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let mut i = 0;
        while i < hits.len() {
            let idx = first + i as u64;
            if let Some(data) = hits[i].take() {
                let mem = budget.reserve(data.len() as u64);
                slots.push(BlockSlot::Ready(Block::new(data, Some(mem))));
                i += 1;
                continue;
            }
            if let Some((fut, ctl, pos)) = inflight.get(&key(idx)) {
                self.stats.shared.fetch_add(1, Ordering::Relaxed);
                slots.push(BlockSlot::Pending(Pending::new(
                    fut.clone(),
                    ctl.clone(),
                    *pos,
                )));
                i += 1;
                continue;
            }
            let run_start = i;
            while i < hits.len()
                && hits[i].is_none()
                && !inflight.contains_key(&key(first + i as u64))
            {
                i += 1;
            }
            let run = first + run_start as u64..first + i as u64;
            let (ctl, futs) = self.start_run(obj, run.clone(), budget);
            for (pos, (idx, fut)) in run.zip(futs).enumerate() {
                let pos = pos as u64;
                inflight.insert(key(idx), (fut.clone(), ctl.clone(), pos));
                slots.push(BlockSlot::Pending(Pending::new(fut, ctl.clone(), pos)));
            }
        }
        Ok(slots)
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

    /// Whether a GET in flight is bringing block `index` of `obj` (without joining it).
    #[cfg(test)]
    pub fn in_flight(&self, obj: &ObjectRef, index: u64) -> bool {
        let etag = obj.etag.clone().unwrap_or_default();
        let inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        inflight.contains_key(&(obj.key.clone(), etag, index))
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
    pub fn joined(&self, obj: &ObjectRef, index: u64) -> Option<Pending> {
        let etag = obj.etag.clone().unwrap_or_default();
        let inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let (fut, ctl, pos) = inflight.get(&(obj.key.clone(), etag, index))?;
        self.stats.shared.fetch_add(1, Ordering::Relaxed);
        Some(Pending::new(fut.clone(), ctl.clone(), *pos))
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
        let mut cut = Cutter::new(obj, self.block_size, first, end);
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let mut body = self
            .backend
            .get_range_stream(&obj.key, cut.range(), obj.etag.as_deref())
            .await?;
        while let Some(piece) = futures::StreamExt::next(&mut body).await {
            let mut piece = piece?;
            self.stats
                .bytes_fetched
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
            while !piece.is_empty() {
                cut.current()?;
                let Some((idx, block)) = cut.take(&mut piece) else {
                    continue;
                };
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
            }
        }
        cut.finish()
    }
}

#[cfg(test)]
mod tests;
