//! Staging files: the local copy of a file open for writing.
//!
//! Each inode open for writing has one staging file (mode 0600, in a 0700 directory); every
//! write handle of the inode shares it. The file is sparse: a file opened without `O_TRUNC`
//! starts with none of the stored bytes, which are fetched only where a read or an upload
//! needs them ([`Staged::missing`], [`Staged::fill`]); `changed` remembers what was written,
//! so a re-upload can copy the untouched parts on the server ([`Staged::reuse_plan`]).
//! `dirty` says whether the content differs from the object on the server; the core uploads
//! it on `flush`/`fsync` and clears it. The file is removed when the value is dropped, unless
//! it still holds content not uploaded (`dirty`, and its name not unlinked): that is never
//! removed with its session.
//!
//! Journal: while the content of a closed (flushed or fsynced) file is on its way to the
//! store, a record next to it (see `journal.rs`) names the object and the version it
//! replaces. If the daemon dies first (kill, power loss) or the upload fails for good, the
//! next mount finds it (`StagingArea::pending`, in `area.rs`) and finishes the upload, unless
//! the server holds something newer by then: such content, and records that cannot be read,
//! are set aside in `lost+found` next to the staging directory. Content
//! no program closed is journaled only at a stop, as `unclosed`, and never uploaded unless
//! `-o upload_unclosed` asks.

use super::journal::{record_path, Expect, Record, RecordState};
use super::Ranges;
use crate::backend::{PartSource, PosixMeta};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Run file I/O `f` on the blocking pool, off the async workers (which serve every other
/// file of the mount meanwhile).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(std::io::Error::other(format!("staging I/O task: {e}"))),
    }
}

/// The staged content of one file open for writing.
#[derive(Debug)]
pub struct Staged {
    /// Object key the content belongs to (follows renames).
    pub key: String,
    /// Shared with the blocking tasks that read and write it (never on an async worker).
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    /// The content differs from the object on the server.
    pub dirty: bool,
    /// The file was unlinked while open (the delete reached the server): its content must
    /// not be uploaded.
    pub unlinked: bool,
    /// Written (or truncated) since the last close: no program closed this content yet.
    pub unclosed: bool,
    /// The version on the server this content replaces (journaled with it).
    pub expect: Expect,
    /// The journal record naming this content, while there is one.
    record: Option<Record>,
    /// Streaming upload while the file is written in order (`None`: not eligible).
    pub stream: Option<super::Streamer>,
    /// ETag of the object version the content started from (`None` for a new file): its
    /// bytes fill what is not staged, and an upload that finds another version on the server
    /// logs the conflict.
    pub base_etag: Option<String>,
    /// Bytes `0..base_len` are the version `base_etag` names, except where `changed` says
    /// otherwise; only those in `local` are in the file. Bytes past it are all in the file.
    base_len: u64,
    /// Ranges below `base_len` that the file holds (written or fetched).
    local: Ranges,
    /// Byte ranges written since the content last matched the stored version.
    changed: Ranges,
    /// Bytes `0..dropped` went out in a streaming upload and were removed from the file to
    /// bound its size (`stream_staging_max`); they can no longer be read, changed or re-sent.
    dropped: u64,
    /// The record is fsynced (with its data and directory) and says what the file holds.
    record_durable: bool,
    /// The kernel writes the file directly (FUSE passthrough): what is known of the content
    /// comes from the file ([`Staged::catch_up`]).
    kernel: Option<Arc<super::KernelWrites>>,
}

impl Staged {
    pub(super) fn new(key: &str, file: Arc<File>, path: PathBuf) -> Staged {
        Staged {
            key: key.to_string(),
            file,
            path,
            size: 0,
            dirty: false,
            unlinked: false,
            unclosed: false,
            expect: Expect::Any,
            record: None,
            base_etag: None,
            stream: None,
            base_len: 0,
            local: Ranges::default(),
            changed: Ranges::default(),
            dropped: 0,
            record_durable: false,
            kernel: None,
        }
    }

    /// The content of pending upload `record`, `size` bytes in `file` at `path`, to finish it
    /// (dirty; removed with its record once stored, unless kept).
    pub(super) fn resumed(record: &Record, file: Arc<File>, path: PathBuf, size: u64) -> Staged {
        let mut st = Staged::new(&record.key, file, path);
        st.size = size;
        st.dirty = true;
        st.expect = record.expect.clone();
        st.record = Some(record.clone());
        match &record.base {
            // Only `local` is here; the rest is the stored version's (and everything local
            // counts as changed: what was written is not recorded).
            Some((etag, local)) => {
                st.base_etag = Some(etag.clone());
                st.base_len = size;
                st.local = local.clone();
                st.changed = local.clone();
            }
            None => st.changed = Ranges::from_range(0..size),
        }
        st
    }

    /// Current size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes at the start that were sent and dropped (see [`Staged::drop_below`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Remove bytes before `upto` (already sent in a streaming upload) from the file, so a
    /// large copy does not need its whole size in the staging area.
    pub async fn drop_below(&mut self, upto: u64) -> std::io::Result<()> {
        use nix::fcntl::{fallocate, FallocateFlags};
        let upto = upto.min(self.size);
        if upto <= self.dropped {
            return Ok(());
        }
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        let (at, len) = (
            self.dropped as libc::off_t,
            (upto - self.dropped) as libc::off_t,
        );
        let file = self.file.clone();
        blocking(move || Ok(fallocate(&*file, flags, at, len)?)).await?;
        self.dropped = upto;
        Ok(())
    }

    /// Why the content cannot be changed at `offset` (or read there, or sent whole): part of
    /// it was sent and dropped, so only appending to a running streaming upload is possible.
    pub fn check_change(&self, offset: u64) -> Result<(), String> {
        if self.dropped == 0 || self.stream.as_ref().is_some_and(|s| s.accepts(offset)) {
            return Ok(());
        }
        Err(format!(
            "{}: its first {} bytes were already uploaded by a streaming upload and dropped \
             from the staging area (-o stream_staging_max=); until it is closed, the file can \
             only be appended to",
            self.key, self.dropped
        ))
    }

    /// The open staging file: uploads read through this descriptor, never by path.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The open staging file, shared (to hand it to the kernel).
    pub fn shared_file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// The local file's path (for log lines).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write `data` at `offset`, growing the file as needed.
    pub async fn write_at(&mut self, offset: u64, data: bytes::Bytes) -> std::io::Result<()> {
        let (file, bytes) = (self.file.clone(), data.clone());
        blocking(move || file.write_all_at(&bytes, offset)).await?;
        let end = offset + data.len() as u64;
        if offset > self.size {
            // The gap reads as zeros.
            self.changed.add(self.size..offset);
        }
        self.changed.add(offset..end);
        self.local.add(offset..end);
        self.size = self.size.max(end);
        self.dirty = true;
        self.unclosed = true;
        self.reopened().await;
        Ok(())
    }

    /// Bytes `offset .. offset + len` (fewer at the end of the file). What is
    /// [`Staged::missing`] there reads as zeros: fill it first.
    pub async fn read_at(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let end = (offset.saturating_add(len)).min(self.size);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        let file = self.file.clone();
        blocking(move || file.read_exact_at(&mut buf, offset).map(|()| buf)).await
    }

    /// Whether every range of the file still has its CRC-32 (false on a short read or an
    /// error). One blocking task reads them a MiB at a time into one buffer: no allocation of
    /// a range's size, and the bytes are hashed while they are in the CPU's cache.
    pub async fn ranges_match(&self, sums: Vec<(Range<u64>, u32)>) -> bool {
        let file = self.file.clone();
        blocking(move || {
            let mut buf = vec![0u8; 1 << 20];
            for (range, crc) in sums {
                let mut h = crc32fast::Hasher::new();
                let mut at = range.start;
                while at < range.end {
                    let n = (range.end - at).min(buf.len() as u64) as usize;
                    file.read_exact_at(&mut buf[..n], at)?;
                    h.update(&buf[..n]);
                    at += n as u64;
                }
                if h.finalize() != crc {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
        .unwrap_or(false)
    }

    /// Cut or extend (with zeros) to `size`.
    pub async fn truncate(&mut self, size: u64) -> std::io::Result<()> {
        let file = self.file.clone();
        blocking(move || file.set_len(size)).await?;
        if size < self.size {
            self.base_len = self.base_len.min(size);
            // Bytes past the cut are gone: a later growth reads zeros there, never the old
            // bytes, and a streaming upload must wait for them to be written again.
            self.local.cut(size);
        } else {
            self.changed.add(self.size..size);
        }
        self.size = size;
        self.dirty = true;
        self.unclosed = true;
        self.reopened().await;
        Ok(())
    }

    /// From now on the kernel writes the file (FUSE passthrough for a handle that started the
    /// content empty): nothing written is seen here until [`Staged::catch_up`] looks. Such
    /// content streams no upload while written, and never drops sent bytes.
    pub fn write_by_kernel(&mut self) -> std::io::Result<Arc<super::KernelWrites>> {
        if let Some(k) = &self.kernel {
            return Ok(k.clone());
        }
        let k = Arc::new(super::KernelWrites::new(self.file.clone())?);
        self.kernel = Some(k.clone());
        self.stream = None;
        Ok(k)
    }

    /// Whether the kernel writes the file.
    pub fn by_kernel(&self) -> Option<&Arc<super::KernelWrites>> {
        self.kernel.as_ref()
    }

    /// Take in what the kernel wrote since the last look: the size, and that the content
    /// changed (dirty, not closed, and a journal record of it no longer holds).
    /// A file that cannot be looked at counts as changed and not closed (never uploaded as
    /// closed content it may not be).
    pub async fn catch_up(&mut self) {
        let Some(k) = &self.kernel else {
            return;
        };
        let size = match k.session_change() {
            Ok(None) => return,
            Ok(Some(size)) => size,
            Err(e) => {
                tracing::warn!(key = %self.key, staged = %self.path.display(), error = %e, "cannot stat a staging file the kernel writes; its content counts as not closed");
                self.size
            }
        };
        // Content written by the kernel started empty: it is all local, all changed.
        self.size = size;
        self.base_len = 0;
        self.local = Ranges::from_range(0..size);
        self.changed = Ranges::from_range(0..size);
        self.dirty = true;
        self.unclosed = true;
        self.reopened().await;
    }

    /// Start empty for a new file or `O_TRUNC` (the staging file is new: nothing to cut).
    pub fn start_empty(&mut self) {
        self.size = 0;
        self.base_len = 0;
        self.dirty = true;
        self.unclosed = true;
    }

    /// Start as the stored version of `size` bytes, none of them staged yet (they are
    /// fetched where needed); not dirty.
    pub fn adopt(&mut self, size: u64) -> std::io::Result<()> {
        self.file.set_len(size)?;
        self.size = size;
        self.base_len = size;
        self.local = Ranges::default();
        self.changed = Ranges::default();
        Ok(())
    }

    /// Where the bytes the file holds without a gap from `offset` on end (for a file written
    /// from empty: where its content is complete, no hole left to fill).
    pub fn written_through(&self, offset: u64) -> u64 {
        self.local.end_of_run(offset)
    }

    /// The parts of `range` that are the stored version's bytes and not in the file yet.
    pub fn missing(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let end = range.end.min(self.base_len).min(self.size);
        if range.start >= end {
            return Vec::new();
        }
        self.local.gaps(range.start..end)
    }

    /// Put fetched bytes of the stored version at `offset` (not a change).
    pub async fn fill(&mut self, offset: u64, data: bytes::Bytes) -> std::io::Result<()> {
        let (file, bytes) = (self.file.clone(), data.clone());
        blocking(move || file.write_all_at(&bytes, offset)).await?;
        self.local.add(offset..offset + data.len() as u64);
        Ok(())
    }

    /// The content now matches the stored version (just uploaded).
    pub fn stored(&mut self) {
        self.dirty = false;
        self.local.add(self.base_len..self.size);
        self.base_len = if self.dropped == 0 { self.size } else { 0 };
        self.changed = Ranges::default();
    }

    /// How to re-upload in parts of `part` bytes: which parts are unchanged bytes of the
    /// stored version (copied on the server) and which are sent. `None` when nothing can be
    /// copied.
    pub fn reuse_plan(&self, part: u64) -> Option<Vec<PartSource>> {
        if part == 0 || self.base_len < part || self.size <= part {
            return None;
        }
        let mut plan = Vec::new();
        let mut at = 0;
        while at < self.size {
            let end = (at + part).min(self.size);
            let copyable = end <= self.base_len && !self.changed.touches(at..end);
            plan.push(if copyable {
                PartSource::Copy(at..end)
            } else {
                PartSource::Send(at..end)
            });
            at = end;
        }
        plan.iter()
            .any(|p| matches!(p, PartSource::Copy(_)))
            .then_some(plan)
    }

    /// Record that this content must reach the store (with `meta`) even if the daemon dies,
    /// unless the server no longer holds [`Staged::expect`]. Content only partly staged
    /// records the version the rest comes from. `durable`: fsynced (see `Record::write`).
    pub async fn journal(
        &mut self,
        meta: &PosixMeta,
        state: RecordState,
        durable: bool,
    ) -> std::io::Result<()> {
        let base = match (&self.base_etag, self.missing(0..self.size).is_empty()) {
            (Some(etag), false) => {
                let mut local = self.local.clone();
                local.add(self.base_len..self.size);
                Some((etag.clone(), local))
            }
            _ => None,
        };
        let record = Record {
            key: self.key.clone(),
            meta: meta.clone(),
            base,
            state,
            expect: self.expect.clone(),
            size: self.size,
            data_ctime: None,
        };
        let (file, path, mut text) = (self.file.clone(), self.path.clone(), record);
        let by_kernel = self.kernel.is_some();
        let record = blocking(move || {
            if durable {
                // The record promises this data: it must be on disk before the record is.
                file.sync_data()?;
            }
            if by_kernel {
                // A replay that finds the file changed since knows it was written after.
                text.data_ctime = Some(super::kernel::ctime_of(&file)?);
            }
            text.write(&path, durable).map(|()| text)
        })
        .await?;
        self.record = Some(record);
        self.record_durable = durable;
        Ok(())
    }

    /// The journaled content reached the store.
    pub fn unjournal(&mut self) {
        self.record_durable = false;
        if self.record.take().is_some() {
            let _ = std::fs::remove_file(record_path(&self.path));
        }
    }

    /// Whether a journal record names this content now.
    pub fn journaled(&self) -> bool {
        self.record.is_some()
    }

    /// Whether a fsynced record already names this content as `state` (nothing to write).
    pub fn journaled_durably(&self, state: RecordState) -> bool {
        self.record_durable && self.record.as_ref().is_some_and(|r| r.state == state)
    }

    /// The content changed after it was journaled as closed: what the file holds now is no
    /// longer what a program closed, so the record says `unclosed` from now on (never
    /// uploaded unless asked; its size is no longer checked).
    async fn reopened(&mut self) {
        let Some(r) = self
            .record
            .as_mut()
            .filter(|r| r.state == RecordState::Closed)
        else {
            return;
        };
        r.state = RecordState::Unclosed;
        self.record_durable = false;
        let (text, path) = (r.clone(), self.path.clone());
        if let Err(e) = blocking(move || text.write(&path, false)).await {
            // Left as closed, the record would upload content nobody closed: remove it.
            tracing::warn!(key = %self.key, error = %e, "cannot mark a journal record unclosed; removing it");
            self.unjournal();
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Content not uploaded yet is never removed with its session (a runtime dropped in
        // the middle of an upload): its record, if any, lets the next mount finish it.
        if !self.dirty || self.unlinked {
            let path = std::mem::take(&mut self.path);
            let remove = move || {
                let _ = std::fs::remove_file(record_path(&path));
                let _ = std::fs::remove_file(&path);
            };
            // Removing a large file can take a while: not on an async worker.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(remove)),
                Err(_) => remove(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
