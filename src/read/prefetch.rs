//! Per-handle read-ahead: sequential detection, a geometrically growing window of parallel
//! part fetches, and a memory budget that shrinks the window instead of growing the process.
//!
//! State machine of one open file:
//! - **Idle/random.** A read that does not continue the previous one (and is not at offset 0 of
//!   a fresh handle) is random: it drops any prefetched parts, is answered from cached blocks,
//!   or cached pieces (partial blocks an earlier random read fetched), when they hold it, else
//!   by one ranged GET of just the asked bytes aligned to `random_align` (64 KiB), whose whole
//!   pieces the disk cache keeps, and leaves the window at 0.
//! - **Streaming.** A read at the offset where the last one ended (or at most `max_skip` past
//!   it, or inside data already prefetched — a short backward seek) is sequential: the window
//!   starts at `initial_window` (1 MiB), is at least a whole part from the second read on,
//!   and doubles on each sequential read up to `max_window`.
//!   Parts of up to `part_size` bytes (whole cache blocks) are spawned until they cover the
//!   window; each part is one [`BlockSource::blocks`] call, so parts run in parallel, come from
//!   the disk cache when there, and share GETs with other handles.
//! - **Budget.** Parts stream in block by block: a block takes its memory from the budget as
//!   its bytes arrive and holds it until the reader has passed it by `back_window` (bytes still
//!   on their way take none, so several GETs wait out the store's latency at once). A spent
//!   budget pauses GETs: the rest of their bodies waits in the socket. It does not stop new
//!   parts or the window: asking costs no memory, and a GET asked for early has its first
//!   bytes ready when the reader gets there (the window alone bounds the GETs of a stream).
//!   Blocks a read waits for are always taken, so a read never waits on other handles' memory
//!   (it may overdraw the budget by its own blocks).
//! - **Fill.** After `fill_after` random reads in a row that each waited `fill_min_wait` or more
//!   for the store, the rest of the object is fetched into
//!   the disk cache in the background ([`super::fill`]); random reads then come from the
//!   cache instead of a round trip each.
//! - **Errors** clear the stream: the next read starts clean.
//!
//! Reads of one handle are serialised by an async mutex; the waiting happens on part tasks that
//! run concurrently, so the mutex never limits throughput to one GET.

use super::blocks::{BlockSlot, BlockSource, ObjectRef};
use super::budget::MemoryBudget;
use super::fill::{Fill, FillConfig};
use crate::backend::BackendError;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Tuning of the read-ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefetchConfig {
    /// First window of a sequential stream, in bytes.
    pub initial_window: u64,
    /// Largest window, in bytes.
    pub max_window: u64,
    /// Largest single GET of a stream, in bytes (rounded to whole blocks).
    pub part_size: u64,
    /// Granularity of a random read's GET.
    pub random_align: u64,
    /// A forward jump up to this many bytes still counts as sequential.
    pub max_skip: u64,
    /// Bytes behind the newest read kept in memory for reads that arrive late or seek back.
    pub back_window: u64,
    /// Random reads in a row after which the object is filled into the cache in the
    /// background (0: never).
    pub fill_after: u32,
    /// How the background fill runs.
    pub fill: FillConfig,
    /// A fill starts only when `fill_after` random reads in a row each waited at least this
    /// long for the store: when round trips are cheap, the small GETs beat fetching the whole
    /// object.
    pub fill_min_wait: std::time::Duration,
}

impl Default for PrefetchConfig {
    fn default() -> Self {
        PrefetchConfig {
            // 1 MiB: the kernel's own read-ahead already asks for up to 1 MiB at once.
            initial_window: 1 << 20,
            // 48 MiB in 16 MiB parts: 3 GETs in flight. Against 32 MiB in 8 MiB parts, a cold
            // 1 GiB read (4 alternating rounds on fresh mounts) ran 916-952 MB/s against
            // 786-820 at 20 ms per request, 971-1,036 against 903-962 with 3 ms of server CPU,
            // and the same at 0 ms, with a peak RSS 1-2 MiB lower: fewer GETs at once hold
            // fewer connection buffers. Bytes asked for take no memory until they arrive.
            max_window: 48 << 20,
            part_size: 16 << 20,
            random_align: 64 << 10,
            max_skip: 2 << 20,
            // 2 MiB: twice the kernel's read-ahead, so its out-of-order reads still hit.
            back_window: 2 << 20,
            // A few random reads (a header, an index) are common in sequential files too;
            // four in a row is a random reader.
            fill_after: 4,
            // At 0 ms a 64 KiB GET answers in ~0.4 ms: 2,241 IOPS without a fill, 1,098 with
            // one (the fill's CPU competes with the reads on 2 cores). Each of the reads in a
            // row must have waited that long: one slow answer at 0 ms (a busy core) started a
            // fill in one run of three (1,118-2,554 IOPS; 2,691-2,947 with the count).
            fill_min_wait: std::time::Duration::from_millis(2),
            // 6 streamed GETs of up to 32 MiB (7.5 MiB of memory: a block and a quarter each).
            // Measured, 4 KiB random reads of a 1 GiB object, medians of 3-6 runs, at 20 ms per
            // request / with 3 ms of server CPU per request: 12 GETs of 4 MiB 1,347 / 1,401
            // IOPS (the larger count of requests competes for a slow server's CPU); 4 x 16 MiB
            // 1,364 / 1,556; 6 x 16 MiB 1,574 / 1,793; 8 x 16 MiB 1,680 / 1,795; 6 x 32 MiB
            // 1,791 / 1,780; 8 x 32 MiB 1,603 / 1,668; 3 x 32 MiB 1,309 / 1,636.
            fill: FillConfig {
                parallel: 6,
                part_size: 32 << 20,
            },
        }
    }
}

enum PartData {
    /// Looking in the disk cache and starting (or joining) GETs.
    Starting(JoinHandle<Result<Vec<BlockSlot>, BackendError>>),
    /// Block by block, in memory or still streaming in; each in-memory block holds its
    /// memory from the budget until it is dropped.
    Ready(VecDeque<BlockSlot>),
}

struct Part {
    first: u64,
    count: u64,
    data: PartData,
}

impl Part {
    fn end(&self) -> u64 {
        self.first + self.count
    }
}

#[derive(Default)]
struct State {
    next: Option<u64>,
    window: u64,
    parts: VecDeque<Part>,
    /// Random reads in a row.
    randoms: u32,
    /// The background fill this handle started or joined.
    fill: Option<Arc<Fill>>,
    /// Random reads in a row that each waited at least `fill_min_wait` for the store (one
    /// answered sooner starts the count again; one that asked nothing leaves it).
    slow_waits: u32,
}

/// Read-ahead for one open file.
pub struct Prefetcher {
    src: Arc<BlockSource>,
    budget: Arc<MemoryBudget>,
    obj: ObjectRef,
    cfg: PrefetchConfig,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for Prefetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefetcher")
            .field("obj", &self.obj)
            .finish_non_exhaustive()
    }
}

impl Prefetcher {
    /// Read-ahead of `obj` from `src`, within `budget`.
    pub fn new(
        src: Arc<BlockSource>,
        budget: Arc<MemoryBudget>,
        obj: ObjectRef,
        cfg: PrefetchConfig,
    ) -> Self {
        Prefetcher {
            src,
            budget,
            obj,
            cfg,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The object this handle reads.
    pub fn object(&self) -> &ObjectRef {
        &self.obj
    }

    /// Current window in bytes (0 in random mode); for tests.
    pub async fn window(&self) -> u64 {
        self.state.lock().await.window
    }

    /// Exactly the bytes `offset .. offset + len` of the object (fewer only at its end).
    pub async fn read(&self, offset: u64, len: u64) -> Result<Bytes, BackendError> {
        let end = offset.saturating_add(len).min(self.obj.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut st = self.state.lock().await;
        let result = self.read_locked(&mut st, offset, end).await;
        match &result {
            Err(_) => *st = State::default(),
            // A late read (see `read_locked`) leaves the stream where it was.
            Ok(_) if st.next.is_some_and(|n| n > end) && st.window > 0 => {}
            Ok(_) => st.next = Some(end),
        }
        result
    }

    async fn read_locked(
        &self,
        st: &mut State,
        offset: u64,
        end: u64,
    ) -> Result<Bytes, BackendError> {
        let bs = self.src.block_size();
        let (b0, b1) = (offset / bs, (end - 1) / bs);
        let covered = st.parts.front().is_some_and(|p| p.first <= b0)
            && st.parts.back().is_some_and(|p| p.end() > b0);
        let sequential = covered
            || match st.next {
                None => offset == 0,
                Some(n) => offset >= n && offset - n <= self.cfg.max_skip,
            };
        // The kernel sends its read-ahead on several threads: a read can arrive after the
        // ones behind it, behind what the stream still holds. It is answered on its own (most
        // often from the disk cache), and the stream goes on.
        let late = st.window > 0
            && st
                .next
                .is_some_and(|n| offset < n && n - offset <= self.cfg.max_skip);
        if !sequential && late {
            return Ok(self.random_read(offset, end).await?.0);
        }
        if !sequential {
            if st.window > 0 {
                self.src.stats.window_resets.fetch_add(1, Ordering::Relaxed);
            }
            st.parts.clear();
            st.window = 0;
            st.randoms = st.randoms.saturating_add(1);
            if let Some(f) = &st.fill {
                f.touch();
            }
            let t0 = std::time::Instant::now();
            let (data, asked) = self.random_read(offset, end).await?;
            if asked {
                st.slow_waits = match t0.elapsed() >= self.cfg.fill_min_wait {
                    true => st.slow_waits.saturating_add(1),
                    false => 0,
                };
            }
            if st.fill.is_none()
                && self.cfg.fill_after > 0
                && st.randoms >= self.cfg.fill_after
                && st.slow_waits >= self.cfg.fill_after
            {
                st.fill = Fill::touch_or_start(&self.src, &self.budget, &self.obj, self.cfg.fill);
            }
            return Ok(data);
        }
        st.randoms = 0;
        st.window = if st.window == 0 {
            self.cfg.initial_window
        } else {
            // The second read in a row makes a stream: at least a whole part from then on, so
            // the ramp costs one round trip, not one per doubling (at 20 ms per request the
            // first 4 MiB of a 1 GiB read took 82 ms with the window doubling from 1 MiB).
            (st.window * 2)
                .max(self.cfg.part_size)
                .min(self.cfg.max_window.max(self.cfg.initial_window))
        };
        while st.parts.front().is_some_and(|p| p.end() <= b0) {
            st.parts.pop_front();
        }
        if st.parts.front().is_some_and(|p| p.first > b0) {
            st.parts.clear();
        }
        self.top_up(st, offset, b0, b1);
        let out = self.collect(st, offset, end, b0, b1).await?;
        // Keep parts the reader passed less than `back_window` ago: the kernel sends its
        // read-ahead requests concurrently, so some arrive a little behind the newest one.
        let keep_from = end.saturating_sub(self.cfg.back_window) / bs;
        while st.parts.front().is_some_and(|p| p.end() <= keep_from) {
            st.parts.pop_front();
        }
        // Blocks passed inside the front part go too: their memory is free for GETs ahead.
        if let Some(Part {
            first,
            count,
            data: PartData::Ready(slots),
        }) = st.parts.front_mut()
        {
            while *first < keep_from && slots.pop_front().is_some() {
                *first += 1;
                *count -= 1;
            }
        }
        Ok(out)
    }

    /// Spawn parts until they cover the window.
    ///
    /// Bytes asked for take memory only as they arrive (see `blocks::run`), so parts are
    /// started whatever the budget holds, and a spent budget pauses their GETs instead. With
    /// the budget stopping new parts (as before), a 1 GiB cold read at 20 ms per request needed
    /// a 24 MiB budget for 85 % of its speed at 0 ms (12 MiB: 66 %); without, 10 MiB does it
    /// (peak RSS 39–43 → 30–31 MiB at 20 ms; docs/benchmarks.md).
    fn top_up(&self, st: &mut State, offset: u64, b0: u64, b1: u64) {
        let bs = self.src.block_size();
        let total = self.src.block_count(&self.obj);
        let part_blocks = (self.cfg.part_size / bs).max(1);
        let target = ((offset + st.window).div_ceil(bs)).max(b1 + 1).min(total);
        let mut next = st.parts.back().map_or(b0, Part::end);
        while next < target {
            let count = part_blocks.min(target - next);
            // Whole parts only, as the window moves on (else each read would add a part of
            // one block: a GET per block), unless the read needs it or the object ends there.
            if count < part_blocks && next > b1 && next + count < total {
                break;
            }
            let (src, obj, budget) = (self.src.clone(), self.obj.clone(), self.budget.clone());
            let task = tokio::spawn(async move { src.blocks(&obj, next, count, &budget).await });
            st.parts.push_back(Part {
                first: next,
                count,
                data: PartData::Starting(task),
            });
            next += count;
        }
    }

    /// Wait for the parts holding blocks `b0..=b1` and copy out `offset..end`.
    async fn collect(
        &self,
        st: &mut State,
        offset: u64,
        end: u64,
        b0: u64,
        b1: u64,
    ) -> Result<Bytes, BackendError> {
        let bs = self.src.block_size();
        let mut pieces: Vec<Bytes> = Vec::new();
        for part in st.parts.iter_mut() {
            if part.first > b1 {
                break;
            }
            if part.end() <= b0 {
                continue;
            }
            if let PartData::Starting(task) = &mut part.data {
                let slots = task
                    .await
                    .map_err(|e| BackendError::Other(format!("prefetch task failed: {e}")))??;
                part.data = PartData::Ready(slots.into());
            }
            let PartData::Ready(slots) = &mut part.data else {
                continue;
            };
            for (i, slot) in slots.iter_mut().enumerate() {
                let idx = part.first + i as u64;
                if idx < b0 || idx > b1 {
                    continue;
                }
                let block = &slot.get().await?.data;
                let start = idx * bs;
                let a = offset.max(start) - start;
                let z = (end.min(start + block.len() as u64) - start).max(a);
                pieces.push(block.slice(a as usize..z as usize));
            }
        }
        let got: u64 = pieces.iter().map(|p| p.len() as u64).sum();
        if got != end - offset {
            return Err(BackendError::Changed(format!(
                "{}: assembled {got} bytes at {offset}, expected {}",
                self.obj.key,
                end - offset
            )));
        }
        Ok(match pieces.len() {
            1 => pieces.remove(0),
            _ => {
                let mut buf = BytesMut::with_capacity((end - offset) as usize);
                for p in pieces {
                    buf.extend_from_slice(&p);
                }
                buf.freeze()
            }
        })
    }

    /// Bytes `offset..end` from the disk cache, if every block they span is there (a read
    /// across block boundaries too: it must not need the store when the cache has it all).
    async fn cached_range(&self, offset: u64, end: u64) -> Option<Bytes> {
        let bs = self.src.block_size();
        let (b0, b1) = (offset / bs, (end - 1) / bs);
        // Reads are at most a few MiB (FUSE's max_read); anything larger is no random read.
        if b1 - b0 >= 64 || !self.src.may_hold(&self.obj, offset, end) {
            return None;
        }
        if let Some(hit) = self.src.complete_range(&self.obj, offset, end).await {
            return Some(hit);
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        for b in b0..=b1 {
            let block = self.src.cached_block(&self.obj, b).await?;
            let start = b * bs;
            let (a, z) = (offset.max(start) - start, end.min(start + bs) - start);
            if z as usize > block.len() {
                return None;
            }
            if b0 == b1 {
                return Some(block.slice(a as usize..z as usize));
            }
            out.extend_from_slice(&block[a as usize..z as usize]);
        }
        Some(out.freeze())
    }

    /// A read elsewhere: a cached block if it holds the range, a GET already bringing its
    /// block, else one small aligned GET; with whether the store was asked.
    async fn random_read(&self, offset: u64, end: u64) -> Result<(Bytes, bool), BackendError> {
        if let Some(cached) = self.cached_range(offset, end).await {
            return Ok((cached, false));
        }
        if let Some(piece) = self.src.cached_pieces(&self.obj, offset, end).await {
            return Ok((piece, false));
        }
        // Another handle's stream may be fetching the block already: join it.
        let bs = self.src.block_size();
        if offset / bs == (end - 1) / bs {
            if let Some(pending) = self.src.joined(&self.obj, offset / bs) {
                let block = pending.get().await?.data;
                let a = (offset % bs) as usize;
                let z = a + (end - offset) as usize;
                if block.len() >= z {
                    return Ok((block.slice(a..z), false));
                }
            }
        }
        let align = self.cfg.random_align.max(1);
        let a = offset / align * align;
        let z = end.div_ceil(align).saturating_mul(align).min(self.obj.size);
        let data = self.src.direct(&self.obj, a..z).await?;
        let (from, to) = ((offset - a) as usize, (end - a) as usize);
        if data.len() < to {
            return Err(BackendError::Changed(format!(
                "{}: short read at {offset}",
                self.obj.key
            )));
        }
        Ok((data.slice(from..to), true))
    }
}

#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
