//! Streaming upload of a file written in order: once a part's worth of new bytes is staged,
//! a multipart upload begins and every full part goes out while the program is still writing,
//! so a large copy is mostly uploaded by the time it is closed (and the close only sends the
//! rest and completes the upload).
//!
//! Only content that started empty (a new file, or `O_TRUNC`) streams. A write before what was
//! already sent, a truncation below it, a rename or an unlink stops streaming: the upload is
//! aborted and the file is sent whole at close, as without streaming. A failed part does the
//! same, so a streaming error never fails a `write`; errors are reported at close.
//!
//! A file the kernel writes (write passthrough, see `kernel.rs`) streams too, without the
//! daemon seeing its writes: [`Streamer::follow`] sends every full part the file has grown a
//! part past, read back from the staging file, and keeps a CRC-32 of each; the close reads
//! the sent parts again and gives the upload up (the file goes up whole) if any changed.
//!
//! With a `keep` limit, sent bytes more than `keep` behind the end of what was sent are
//! dropped from the staging file, so a copy of any size needs at most about `keep` plus a few
//! parts of local space. From then on the upload can no longer be given up and re-sent whole:
//! writes before what was sent are refused (see `Staged::check_change`), and a rename or
//! mode change meanwhile is applied after the upload completes (a server-side copy) or only in
//! the mount (logged).

use super::Staged;
use crate::backend::{Backend, BackendError, ObjectInfo, PartPlan, PosixMeta, Upload};
use bytes::Bytes;
use std::collections::VecDeque;

/// The streaming state of one staged file.
#[derive(Debug)]
pub struct Streamer {
    upload: Option<(String, Box<dyn Upload>)>,
    /// Attributes the upload was started with (mtime aside).
    meta: PosixMeta,
    sent: u64,
    /// Sizes the parts (they grow with the stream, so any size fits the part limit).
    plan: PartPlan,
    /// Parts sent so far.
    parts: u64,
    /// Sent bytes kept in staging behind `sent` (0: all).
    keep: u64,
    /// The written buffers holding the bytes from `sent` on, while writes arrive in order
    /// (`None` after one did not): parts are made of them instead of being read back from the
    /// staging file.
    mirror: Option<Mirror>,
    stopped: bool,
    /// Following a file the kernel writes: each sent part's range and CRC-32.
    sums: Option<Vec<(std::ops::Range<u64>, u32)>>,
}

/// Written buffers in order, shared with the caller (no copy).
#[derive(Debug, Default)]
struct Mirror {
    pieces: VecDeque<Bytes>,
    len: u64,
}

impl Mirror {
    fn push(&mut self, b: Bytes) {
        self.len += b.len() as u64;
        self.pieces.push_back(b);
    }

    /// The first `len` bytes (at most what there is), as pieces.
    fn take(&mut self, len: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut left = len.min(self.len);
        while left > 0 {
            let Some(mut front) = self.pieces.pop_front() else {
                break;
            };
            if front.len() as u64 > left {
                let head = front.split_to(left as usize);
                self.pieces.push_front(front);
                out.push(head);
                self.len -= left;
                break;
            }
            left -= front.len() as u64;
            self.len -= front.len() as u64;
            out.push(front);
        }
        out
    }
}

impl Streamer {
    /// Stream in parts sized by `plan`, keeping `keep` sent bytes staged (0: all of them).
    pub fn new(plan: PartPlan, keep: u64) -> Self {
        Streamer {
            upload: None,
            meta: PosixMeta::default(),
            sent: 0,
            plan,
            parts: 0,
            keep,
            mirror: Some(Mirror::default()),
            stopped: false,
            sums: None,
        }
    }

    /// Stream a file the kernel writes (see [`Streamer::follow`]); sent bytes stay staged.
    pub fn following(plan: PartPlan) -> Self {
        Streamer {
            mirror: None,
            sums: Some(Vec::new()),
            ..Streamer::new(plan, 0)
        }
    }

    /// Keep `mirror` in step with a write of `data` at `offset` (at or past `sent`).
    fn mirror_write(&mut self, staged: &Staged, offset: u64, data: &Bytes) {
        let end = offset + data.len() as u64;
        match self.mirror.as_mut() {
            Some(m) if offset == self.sent + m.len => m.push(data.clone()),
            Some(_) => self.mirror = None,
            // The write is all there is past what was sent: mirror again from here.
            None if offset == self.sent && end == staged.size() => {
                let mut m = Mirror::default();
                m.push(data.clone());
                self.mirror = Some(m);
            }
            None => {}
        }
    }

    /// The next `len` bytes after `sent`: from the mirror, or read from the staging file.
    async fn next_bytes(&mut self, staged: &Staged, len: u64) -> std::io::Result<Vec<Bytes>> {
        if let Some(m) = self.mirror.as_mut().filter(|m| m.len >= len) {
            return Ok(m.take(len));
        }
        self.mirror = None;
        staged
            .read_at(self.sent, len)
            .await
            .map(|d| vec![Bytes::from(d)])
    }

    /// Whether a write at `offset` continues the stream.
    pub fn accepts(&self, offset: u64) -> bool {
        !self.stopped && offset >= self.sent
    }

    /// Bytes handed to the store so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Parts handed to the store so far.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// The file was cut to `size` bytes (at or past what was sent; below it the caller
    /// stops the stream): written buffers past the cut must never be sent.
    pub fn truncated(&mut self, size: u64) {
        if self
            .mirror
            .as_ref()
            .is_some_and(|m| size < self.sent + m.len)
        {
            self.mirror = None;
        }
    }

    /// After a write at `offset`: send every full part past what was sent (an upload begins
    /// with the attributes `meta`).
    pub async fn after_write(
        &mut self,
        backend: &dyn Backend,
        staged: &mut Staged,
        offset: u64,
        data: &Bytes,
        meta: &PosixMeta,
    ) {
        if self.stopped || self.sums.is_some() {
            // Following the kernel's writes: parts go out from `follow` only.
            return;
        }
        if offset < self.sent {
            if staged.dropped() == 0 {
                self.stop().await;
            }
            return;
        }
        self.mirror_write(staged, offset, data);
        for _ in 0..(1u64 << 20) {
            // Only bytes written without a gap go out (a hole may still be filled).
            let part = self.plan.stream(self.parts);
            if staged.written_through(self.sent) < self.sent + part {
                return;
            }
            if !self.started(backend, staged, meta).await {
                return;
            }
            let sent = match self.next_bytes(staged, part).await {
                Ok(data) => self.put(data).await,
                Err(e) => Err(BackendError::Other(e.to_string())),
            };
            if let Err(e) = sent {
                tracing::debug!(key = %staged.key, error = %e, "streaming upload stopped; the file goes up whole at close");
                self.stop().await;
                return;
            }
            self.sent += part;
            self.parts += 1;
            if self.keep > 0 && self.sent > self.keep {
                if let Err(e) = staged.drop_below(self.sent - self.keep).await {
                    tracing::debug!(key = %staged.key, error = %e, "cannot drop sent data from staging; it stays");
                }
            }
        }
    }

    /// Whether an upload runs (one is begun with `meta` when none does yet).
    async fn started(&mut self, backend: &dyn Backend, staged: &Staged, meta: &PosixMeta) -> bool {
        if self.upload.is_some() {
            return true;
        }
        match backend.start_upload(&staged.key, meta).await {
            Ok(u) => {
                self.upload = Some((staged.key.clone(), u));
                self.meta = meta.without_times();
                true
            }
            Err(e) => {
                tracing::debug!(key = %staged.key, error = %e, "no streaming upload; the file goes up at close");
                self.stopped = true;
                false
            }
        }
    }

    /// For a file the kernel writes: send every full part that ends at least a part before
    /// the end of the file (the writer is past it), keeping a CRC-32 of each for the close to
    /// check. Errors stop the stream (the file then goes up whole at close).
    pub async fn follow(&mut self, backend: &dyn Backend, staged: &Staged, meta: &PosixMeta) {
        for _ in 0..1024 {
            if self.stopped || self.sums.is_none() {
                return;
            }
            let part = self.plan.stream(self.parts);
            let end = self.sent + part;
            if staged.size() < end.saturating_add(part)
                || !self.started(backend, staged, meta).await
            {
                return;
            }
            let sent = match staged.read_at(self.sent, part).await {
                Ok(data) => {
                    let crc = crc32fast::hash(&data);
                    self.put(vec![Bytes::from(data)]).await.map(|()| crc)
                }
                Err(e) => Err(BackendError::Other(e.to_string())),
            };
            match sent {
                Ok(crc) => {
                    if let Some(sums) = self.sums.as_mut() {
                        sums.push((self.sent..end, crc));
                    }
                    self.sent = end;
                    self.parts += 1;
                }
                Err(e) => {
                    tracing::debug!(key = %staged.key, error = %e, "streaming upload stopped; the file goes up whole at close");
                    self.stop().await;
                    return;
                }
            }
        }
    }

    /// The rest of the file after what was sent, in parts of the plan's size (several in
    /// flight), the last one shorter.
    async fn send_rest(
        &mut self,
        staged: &Staged,
        upload: &mut dyn Upload,
    ) -> Result<(), BackendError> {
        for _ in 0..(1u64 << 20) {
            let rest = staged.size().saturating_sub(self.sent);
            if rest == 0 {
                break;
            }
            let len = rest.min(self.plan.stream(self.parts));
            let data = self
                .next_bytes(staged, len)
                .await
                .map_err(|e| BackendError::Other(e.to_string()))?;
            upload.put_part(data).await?;
            self.sent += len;
            self.parts += 1;
        }
        Ok(())
    }

    async fn put(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
        match self.upload.as_mut() {
            Some((_, u)) => u.put_part(data).await,
            None => Err(BackendError::Other("no upload in progress".into())),
        }
    }

    /// Stop streaming (the content changed before what was sent): abort the upload.
    pub async fn stop(&mut self) {
        self.stopped = true;
        if let Some((_, u)) = self.upload.take() {
            u.abort().await;
        }
    }

    /// At close: send the rest and complete the upload. `None` when nothing was streamed (or
    /// the upload had to be given up, e.g. renamed or chmod-ed meanwhile): the caller sends
    /// the file whole, with `meta`.
    pub async fn finish(
        &mut self,
        backend: &dyn Backend,
        staged: &Staged,
        meta: &PosixMeta,
    ) -> Option<Result<ObjectInfo, BackendError>> {
        if self.stopped {
            return None;
        }
        // Nothing streamed yet (e.g. a close of a dup'ed descriptor before any write): the
        // caller sends what there is, and streaming goes on with the next writes.
        let (key, upload) = self.upload.take()?;
        let done = self.complete(backend, staged, meta, key, upload).await;
        // Whatever happened, a later upload of this content starts from byte 0 again
        // (possible only while nothing was dropped from staging).
        self.stopped = staged.dropped() > 0;
        self.sent = 0;
        self.parts = 0;
        self.mirror = None;
        if let Some(sums) = self.sums.as_mut() {
            sums.clear();
        }
        done
    }

    async fn complete(
        &mut self,
        backend: &dyn Backend,
        staged: &Staged,
        meta: &PosixMeta,
        key: String,
        mut upload: Box<dyn Upload>,
    ) -> Option<Result<ObjectInfo, BackendError>> {
        let same_meta = meta.without_times() == self.meta;
        if (key != staged.key || !same_meta) && staged.dropped() == 0 {
            upload.abort().await;
            return None;
        }
        // The parts sent while following the kernel's writes are checked again while the rest
        // goes out (nothing is visible on the server before `complete`): the check reads the
        // whole file back, and the rest waits on the network (512 MiB written by `dd`: the
        // close took 0.45 s with the check first).
        let sums = self.sums.clone().unwrap_or_default();
        let (unchanged, sent) = tokio::join!(
            staged.ranges_match(sums),
            self.send_rest(staged, upload.as_mut())
        );
        if !unchanged {
            tracing::debug!(%key, "a part sent while the kernel wrote the file changed since; the file goes up whole");
            upload.abort().await;
            return None;
        }
        if let Err(e) = sent {
            tracing::debug!(%key, error = %e, "last part failed; the file goes up whole");
            upload.abort().await;
            return None;
        }
        let done = upload.complete(staged.size()).await;
        if !same_meta {
            tracing::warn!(%key, "mode or owner changed during a streaming upload whose data left the staging area; the stored object keeps the ones it was started with");
        }
        if key == staged.key {
            return Some(done);
        }
        // Renamed meanwhile, and the data is only on the server now: move it there.
        let moved = match done {
            Ok(_) => match backend.copy(&key, &staged.key).await {
                Ok(()) => {
                    let _ = backend.delete(&key).await;
                    backend.head(&staged.key).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        Some(moved)
    }
}

#[cfg(test)]
mod tests;
