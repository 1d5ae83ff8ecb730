//! One ranged GET for a run of blocks, streamed: each block is handed out the moment its bytes
//! are in, not when the whole run is.
//!
//! Memory: a block takes its bytes from the mount's budget before they are read off the socket,
//! and gives them back when the last holder of the [`Block`] drops it. Bytes asked for and not
//! yet arrived take none, so several GETs can wait out the store's latency within the budget.
//! When the budget is spent, the GET stops reading (the socket holds the rest) until a
//! reservation is released — except for blocks somebody is waiting for ([`Pending::get`]):
//! those are always read, so a reader never waits on memory held by blocks ahead of it.
//!
//! A run nobody holds a [`Pending`] of any more, waiting for memory, ends: its remaining blocks
//! leave the in-flight map (so a later reader starts its own GET). While memory is free it
//! fetches on into the disk cache, like a run whose readers are all still there.
//!
//! A GET paused for memory longer than [`PAUSE_LIMIT`] lets its connection go (a request held
//! open would run into the request timeout, as when a video player is left paused), and the
//! run asks for the rest of its blocks again when memory comes back. A body that breaks off
//! after some of it came (connection reset, timeout, a busy server) is asked for again from
//! the block it was in, up to [`RESUMES`] times in a row without a block delivered; then its
//! waiters get the error. A request that fails before its body is not (the client has
//! already tried it again, within `retries`).

use super::cut::Cutter;
use super::{BlockSource, ObjectRef, PENDING_WRITE_LIMIT};
use crate::backend::BackendError;
use crate::read::budget::{MemoryBudget, Reservation};
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a GET waits for memory with its connection open; then the connection goes, and
/// the rest of the run is asked for again once there is memory (well within the default 60 s
/// request timeout; a shorter timeout is covered by [`RESUMES`]).
const PAUSE_LIMIT: Duration = Duration::from_secs(5);

/// How many times in a row a run asks again for the rest of a body that broke off before it
/// delivered another block.
pub(super) const RESUMES: u32 = 2;

/// A block of an object in memory, holding its share of the budget until the last clone goes.
#[derive(Debug, Clone)]
pub struct Block {
    /// The block's bytes.
    pub data: Bytes,
    _mem: Option<Arc<Reservation>>,
}

impl Block {
    /// `data`, holding `mem` (if any) for as long as the block lives.
    pub fn new(data: Bytes, mem: Option<Reservation>) -> Self {
        Block {
            data,
            _mem: mem.map(Arc::new),
        }
    }
}

pub(super) type BlockFuture = Shared<BoxFuture<'static, Result<Block, BackendError>>>;

/// Shared between a run's task and everyone waiting for its blocks.
#[derive(Debug, Default)]
pub(super) struct RunCtl {
    /// One past the highest position (block index within the run) somebody waits for.
    wanted: AtomicU64,
    /// [`Pending`]s alive.
    holders: AtomicUsize,
    /// Wakes the run's task: a block is wanted, or the last holder left.
    wake: tokio::sync::Notify,
}

impl RunCtl {
    fn want(&self, pos: u64) {
        if self.wanted.fetch_max(pos + 1, Ordering::AcqRel) <= pos {
            // One task waits on this: a stored permit covers a wake before it waits.
            self.wake.notify_one();
        }
    }

    fn is_wanted(&self, pos: u64) -> bool {
        self.wanted.load(Ordering::Acquire) > pos
    }
}

/// A block of a GET in flight, as one waiter holds it.
#[derive(Debug)]
pub struct Pending {
    fut: BlockFuture,
    ctl: Arc<RunCtl>,
    pos: u64,
}

impl Pending {
    /// Call with the in-flight map locked (so a run cannot end between its lookup and this).
    pub(super) fn new(fut: BlockFuture, ctl: Arc<RunCtl>, pos: u64) -> Self {
        ctl.holders.fetch_add(1, Ordering::AcqRel);
        Pending { fut, ctl, pos }
    }

    /// The block; from now on the GET reads it even when the budget is spent.
    pub async fn get(&self) -> Result<Block, BackendError> {
        self.ctl.want(self.pos);
        self.fut.clone().await
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.ctl.holders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ctl.wake.notify_one();
        }
    }
}

/// A block of a run: in memory or still coming.
#[derive(Debug)]
pub enum BlockSlot {
    /// In memory.
    Ready(Block),
    /// Still coming.
    Pending(Pending),
}

impl BlockSlot {
    /// The block, waiting for it if it is still coming (and keeping it once it came).
    pub async fn get(&mut self) -> Result<&Block, BackendError> {
        if let BlockSlot::Pending(p) = self {
            *self = BlockSlot::Ready(p.get().await?);
        }
        match self {
            BlockSlot::Ready(b) => Ok(b),
            BlockSlot::Pending(_) => Err(BackendError::Other("a block went missing".into())),
        }
    }
}

/// Why a run's task stopped before its last block.
enum Stop {
    Failed(BackendError),
    /// The body broke off after some of it had come, in a way a new request may mend
    /// ([`resumable`]): worth asking for the rest again.
    Broke(BackendError),
    /// Nobody held a block of it and it had to wait for memory; its blocks left the map.
    Abandoned,
    /// It waited for memory longer than [`PAUSE_LIMIT`]: its body is to be dropped.
    Idle,
}

/// Whether a body that broke off with `e` is worth asking for again: a failure a later try may
/// mend, or an unclassified one (a reset connection reads as `Other`); not a changed object,
/// a refusal or a full disk.
fn resumable(e: &BackendError) -> bool {
    e.is_transient() || matches!(e, BackendError::Other(_))
}

type Sender = oneshot::Sender<Result<Block, BackendError>>;

impl BlockSource {
    /// Start one GET for blocks `run` of `obj`; returns its control and one future per block.
    /// The caller puts them in the in-flight map (under its lock, before the task can finish).
    pub(super) fn start_run(
        self: &Arc<Self>,
        obj: &ObjectRef,
        run: std::ops::Range<u64>,
        budget: &Arc<MemoryBudget>,
    ) -> (Arc<RunCtl>, Vec<BlockFuture>) {
        let ctl = Arc::new(RunCtl::default());
        let (mut senders, mut futs) = (Vec::new(), Vec::new());
        for _ in run.clone() {
            let (tx, rx) = oneshot::channel::<Result<Block, BackendError>>();
            senders.push(tx);
            futs.push(
                async move {
                    rx.await.unwrap_or_else(|_| {
                        Err(BackendError::Other(
                            "the GET of a block ended without it".into(),
                        ))
                    })
                }
                .boxed()
                .shared(),
            );
        }
        let (this, obj, task_ctl, budget) =
            (self.clone(), obj.clone(), ctl.clone(), budget.clone());
        tokio::spawn(async move {
            let mut senders = senders.into_iter();
            let stop = this
                .stream_run(&obj, run.clone(), &task_ctl, &budget, &mut senders)
                .await;
            if let Err(Stop::Failed(e)) = stop {
                this.forget(&obj, run.end - senders.len() as u64..run.end);
                for tx in senders {
                    let _ = tx.send(Err(e.clone()));
                }
            }
        });
        (ctl, futs)
    }

    fn forget(&self, obj: &ObjectRef, blocks: std::ops::Range<u64>) {
        let etag = obj.etag.clone().unwrap_or_default();
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        for i in blocks {
            inflight.remove(&(obj.key.clone(), etag.clone(), i));
        }
    }

    /// The GET of `run`, each block sent to its waiters (and the disk cache) as it completes;
    /// asked for again from the block it was in when the body was let go after a long pause
    /// or broke off ([`RESUMES`]).
    async fn stream_run(
        &self,
        obj: &ObjectRef,
        run: std::ops::Range<u64>,
        ctl: &RunCtl,
        budget: &Arc<MemoryBudget>,
        senders: &mut std::vec::IntoIter<Sender>,
    ) -> Result<(), Stop> {
        let mut cut = Cutter::new(obj, self.block_size, run.start, run.end);
        let mut mem = None;
        let mut stalls = 0;
        loop {
            let before = senders.len();
            let stop = match self
                .stream_body(obj, &run, &mut cut, ctl, budget, senders, &mut mem)
                .await
            {
                Ok(()) => return Ok(()),
                Err(stop) => stop,
            };
            match stop {
                Stop::Idle => {
                    // No connection open while waiting; the next body starts at this block.
                    let (idx, len) = cut.current().map_err(Stop::Failed)?;
                    mem = Some(
                        self.room_for(obj, idx, &run, len as u64, ctl, budget, None)
                            .await?,
                    );
                    stalls = 0;
                }
                Stop::Broke(e) => {
                    // Broken bodies in a row without a block delivered.
                    stalls = if senders.len() < before {
                        1
                    } else {
                        stalls + 1
                    };
                    if stalls > RESUMES {
                        return Err(Stop::Failed(e));
                    }
                    tracing::debug!(key = %obj.key, error = %e, "a streamed GET broke off; asking for the rest again");
                }
                stop => return Err(stop),
            }
            cut.restart();
        }
    }

    /// One GET of what `cut` still needs; each block sent to its waiters (and the disk cache)
    /// as it completes. `mem` carries the memory of the block begun across bodies.
    #[allow(clippy::too_many_arguments)]
    async fn stream_body(
        &self,
        obj: &ObjectRef,
        run: &std::ops::Range<u64>,
        cut: &mut Cutter,
        ctl: &RunCtl,
        budget: &Arc<MemoryBudget>,
        senders: &mut std::vec::IntoIter<Sender>,
        mem: &mut Option<Reservation>,
    ) -> Result<(), Stop> {
        self.stats.gets.fetch_add(1, Ordering::Relaxed);
        let mut body = self
            .backend
            .get_range_stream(&obj.key, cut.range(), obj.etag.as_deref())
            .await
            .map_err(Stop::Failed)?;
        // A request that failed before its body came was tried again by the client already;
        // one that broke off after some of it is worth asking for again (see `stream_run`).
        let mut begun = false;
        while let Some(piece) = futures::StreamExt::next(&mut body).await {
            let mut piece = piece.map_err(|e| {
                if begun && resumable(&e) {
                    Stop::Broke(e)
                } else {
                    Stop::Failed(e)
                }
            })?;
            begun = true;
            self.stats
                .bytes_fetched
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
            while !piece.is_empty() {
                let (idx, len) = cut.current().map_err(Stop::Failed)?;
                if mem.is_none() {
                    *mem = Some(
                        self.room_for(obj, idx, run, len as u64, ctl, budget, Some(PAUSE_LIMIT))
                            .await?,
                    );
                }
                let Some((idx, data)) = cut.take(&mut piece) else {
                    continue;
                };
                let block = Block::new(data, mem.take());
                self.forget(obj, idx..idx + 1);
                if let Some(tx) = senders.next() {
                    let _ = tx.send(Ok(block.clone()));
                }
                self.to_cache(obj, idx, block.data).await;
            }
        }
        cut.finish().map_err(Stop::Failed)
    }

    /// Memory for block `idx` of `run`: from the budget when it has room, at once when
    /// somebody waits for this block or an earlier one of the run; else wait for a release.
    /// Nobody holding a block of the run any more ends it instead ([`Stop::Abandoned`]);
    /// waiting longer than `limit` gives up ([`Stop::Idle`]).
    #[allow(clippy::too_many_arguments)]
    async fn room_for(
        &self,
        obj: &ObjectRef,
        idx: u64,
        run: &std::ops::Range<u64>,
        bytes: u64,
        ctl: &RunCtl,
        budget: &Arc<MemoryBudget>,
        limit: Option<Duration>,
    ) -> Result<Reservation, Stop> {
        let pos = idx - run.start;
        let deadline = limit.map(|l| tokio::time::Instant::now() + l);
        loop {
            let released = budget.released();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Some(r) = budget.try_reserve(bytes) {
                return Ok(r);
            }
            if ctl.is_wanted(pos) {
                return Ok(budget.reserve(bytes));
            }
            if ctl.holders.load(Ordering::Acquire) == 0 {
                // Joining takes the map's lock: checked again under it, nobody can join after.
                let etag = obj.etag.clone().unwrap_or_default();
                let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
                if ctl.holders.load(Ordering::Acquire) == 0 {
                    for i in idx..run.end {
                        inflight.remove(&(obj.key.clone(), etag.clone(), i));
                    }
                    return Err(Stop::Abandoned);
                }
            }
            let expired = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = released => {}
                _ = ctl.wake.notified() => {}
                _ = expired => return Err(Stop::Idle),
            }
        }
    }

    /// Hand a fetched block to the disk cache writer, waiting (bounded) while its queue is
    /// full, so memory stays bounded and a streamed object ends up fully cached.
    async fn to_cache(&self, obj: &ObjectRef, idx: u64, data: Bytes) {
        let (Some(cache), Some(etag)) = (self.cache.clone(), obj.etag.clone()) else {
            return;
        };
        let kib = (data.len() as u64)
            .div_ceil(1024)
            .clamp(1, PENDING_WRITE_LIMIT / 1024) as u32;
        if let Ok(permit) = self.pending_writes.clone().acquire_many_owned(kib).await {
            let (key, size) = (obj.key.clone(), obj.size);
            tokio::task::spawn_blocking(move || {
                cache.put(&key, &etag, size, idx, &data);
                drop(permit);
            });
        }
    }
}
