//! Data written through the mount: create, write, truncate, flush/fsync, release, attribute
//! changes, and uploads resumed from the journal (names: see `namespace.rs`).
//!
//! Data: an inode open for writing has one [`Staged`] file shared by its write handles (see
//! `crate::write::staging`); `flush` (every `close`) and `fsync` upload it when it changed and
//! return the upload's result, so an error reaches the application. A failed upload is retried
//! at the next flush and at the last release; if that fails too, the staged file is kept on
//! disk and the log names it.
//!
//! A created file exists only in the mount until its first upload; its parent lists it
//! meanwhile.

use super::sessions::OpenWrite;
use super::{lock, CloudFs, Entry, FileHandle, FsError, FsResult, Kind, Node, Opened};
use super::{Listed, Prefetcher, Stat};
use crate::backend::PosixMeta;
use crate::read::ObjectRef;
use crate::write::journal::Expect;
use crate::write::Staged;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Read,
    /// Read only, to execute the file: while such a handle is open, the file may not be
    /// emptied by an [`Access::ReadTruncate`] open (`ETXTBSY`).
    Exec,
    /// Read only with `O_TRUNC`: Linux empties the file (the kernel checked write
    /// permission), unless it is being executed.
    ReadTruncate,
    /// Read and write; `truncate` empties the file first (`O_TRUNC`).
    Write {
        /// `O_TRUNC`.
        truncate: bool,
    },
}

impl CloudFs {
    pub(super) fn is_open_for_write(&self, ino: u64) -> bool {
        self.sessions.contains(ino)
    }

    pub(super) fn open_write(&self, ino: u64) -> Option<Arc<OpenWrite>> {
        self.sessions.get(ino)
    }

    /// `node` with the size of its staged content when it is open for writing.
    pub(super) fn with_staged_size(&self, mut node: Node) -> Node {
        if let Some(w) = self.open_write(node.ino) {
            if self.note_kernel_writes(node.ino, &w) {
                node = self.inodes.get(node.ino).unwrap_or(node);
            }
            node.stat.size = w.size();
        }
        node
    }

    /// Entries of directory `ino` that only the mount knows so far.
    pub(super) fn local_entries(&self, ino: u64) -> Vec<Listed> {
        self.inodes
            .local_children(ino)
            .into_iter()
            .map(|n| {
                let n = self.with_staged_size(n);
                Listed {
                    name: n.name,
                    key: n.key,
                    kind: n.kind,
                    stat: n.stat,
                }
            })
            .collect()
    }

    /// How this mount sizes upload parts.
    pub(super) fn part_plan(&self) -> crate::backend::PartPlan {
        crate::backend::PartPlan::new(self.cfg.upload_part_size, self.backend.max_parts())
    }

    pub(super) fn writable(&self) -> FsResult<()> {
        if self.cfg.read_only || self.staging.is_none() || self.is_stopping() {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    /// Open `node` for writing: join its session or start one (empty with `truncate`, else as
    /// the stored version, whose bytes are fetched only where needed). Counts one write
    /// handle; the caller registers it (or, on error, nothing is counted).
    pub(super) async fn stage(&self, node: &Node, truncate: bool) -> FsResult<Arc<OpenWrite>> {
        self.stage_joining(node, truncate, None).await
    }

    /// [`CloudFs::stage`], joining only the session whose staging file is `session` if given
    /// (else failing before anything changed).
    pub(super) async fn stage_joining(
        &self,
        node: &Node,
        truncate: bool,
        session: Option<&Arc<std::fs::File>>,
    ) -> FsResult<Arc<OpenWrite>> {
        let area = self.staging.as_ref().ok_or(FsError::ReadOnly)?;
        let only = session.map(|f| (f, || self.write_refused(node.ino)));
        let (w, joined) = self
            .sessions
            .open(node.ino, self.cfg.max_open_writes, only, || {
                // The inode as it is now: an upload may have refreshed it since `node` was read.
                let now = self.inodes.get(node.ino).unwrap_or_else(|| node.clone());
                let mut staged = area.create(&now.key)?;
                staged.base_etag = now.stat.etag.clone();
                // What this content replaces, until an upload's HEAD says more.
                staged.expect = match &now.stat.etag {
                    Some(e) => Expect::Etag(e.clone()),
                    None if self.inodes.is_local(node.ino) => Expect::Absent,
                    None => Expect::Any,
                };
                if truncate {
                    staged.start_empty();
                    staged.stream = Some(crate::write::Streamer::new(
                        self.part_plan(),
                        self.cfg.stream_staging_max,
                    ));
                } else {
                    staged.adopt(now.stat.size)?;
                }
                Ok(staged)
            })?;
        if !truncate {
            return Ok(w);
        }
        if !joined {
            // O_TRUNC moves mtime and ctime, even of an empty file (as on Linux).
            self.touch(node.ino, 0);
            return Ok(w);
        }
        if let Err(e) = self.truncate_staged(node.ino, &w, 0).await {
            self.end_handle(node.ino).await;
            return Err(e);
        }
        Ok(w)
    }

    async fn truncate_staged(&self, ino: u64, w: &OpenWrite, size: u64) -> FsResult<()> {
        let mut st = w.lock().await;
        self.truncate_locked(ino, w, &mut st, size).await
    }

    /// [`CloudFs::truncate_staged`] under the session's lock the caller holds.
    async fn truncate_locked(
        &self,
        ino: u64,
        w: &OpenWrite,
        st: &mut Staged,
        size: u64,
    ) -> FsResult<()> {
        st.check_change(size).map_err(FsError::Unsupported)?;
        if let Some(s) = st.stream.as_mut() {
            if size < s.sent() {
                s.stop().await;
            }
        }
        if let Some(s) = st.stream.as_mut() {
            s.truncated(size);
        }
        st.truncate(size).await?;
        w.set_size(size);
        self.touch(ino, size);
        Ok(())
    }

    /// The inode's size and times after a local change (stored times give way to now).
    pub(super) fn touch(&self, ino: u64, size: u64) {
        if let Some(node) = self.inodes.get(ino) {
            let stat = Stat {
                size_unknown: false,
                size,
                mtime: SystemTime::now(),
                etag: node.stat.etag,
                meta: node.stat.meta.without_times(),
            };
            self.inodes.refresh(ino, stat, self.expiry());
        }
    }

    /// Create and open file `name` in `parent` with attributes `meta` (mode, owner), stored
    /// with the object; it exists only in the mount until uploaded.
    pub async fn create(
        &self,
        parent: u64,
        name: &str,
        meta: PosixMeta,
    ) -> FsResult<(Entry, Opened)> {
        self.writable()?;
        let dir = self.node(parent)?;
        if dir.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        super::check_name(&dir.key, name, self.cfg.listing.name_max)?;
        let key = format!("{}{name}", dir.key);
        let ino = self.add_local(parent, name, &key, Kind::File, meta);
        let node = self.node(ino)?;
        // A new session: empty, dirty, unclosed, replacing no object (a local inode).
        if let Err(e) = self.stage(&node, true).await {
            self.inodes.unlink(parent, name);
            return Err(e);
        }
        self.inodes.remember(ino);
        let fh = self.add_handle(&node, true, false);
        // As staging left it: starting the session moved its times.
        let entry = self.entry(&self.with_staged_size(self.node(ino)?));
        Ok((
            entry,
            Opened {
                fh,
                keep_cache: false,
                whole: None,
                version: None,
                direct_io: false,
                staging: self.offer_staging(ino, true),
            },
        ))
    }

    /// A new, empty entry `name` in `parent` that exists only in the mount so far.
    pub(super) fn add_local(
        &self,
        parent: u64,
        name: &str,
        key: &str,
        kind: Kind,
        meta: PosixMeta,
    ) -> u64 {
        let ino = self.add_entry(parent, name, key, kind, meta);
        self.inodes.set_local(ino, true);
        ino
    }

    /// A new, empty entry `name` in `parent`, made through the mount just now.
    pub(super) fn add_entry(
        &self,
        parent: u64,
        name: &str,
        key: &str,
        kind: Kind,
        meta: PosixMeta,
    ) -> u64 {
        let stat = Stat {
            size_unknown: false,
            size: 0,
            mtime: SystemTime::now(),
            etag: None,
            meta,
        };
        let ino = self
            .inodes
            .upsert(parent, name, key, kind, stat, self.expiry());
        self.negative.remove(parent, name);
        self.touch_dir(parent);
        ino
    }

    /// Register an open handle of `node`.
    pub(super) fn add_handle(&self, node: &Node, write: bool, exec: bool) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.set_handle(fh, node, write, exec);
        fh
    }

    /// Make `fh` a handle of `node` as it is now (a new read-ahead stream).
    pub(super) fn set_handle(&self, fh: u64, node: &Node, write: bool, exec: bool) {
        let obj = ObjectRef {
            key: node.key.clone(),
            etag: node.stat.etag.clone(),
            size: node.stat.size,
        };
        let reader = Prefetcher::new(
            self.blocks.clone(),
            self.budget.clone(),
            obj,
            self.cfg.prefetch.clone(),
        );
        lock(&self.files).insert(
            fh,
            Arc::new(FileHandle {
                ino: node.ino,
                reader,
                write,
                exec,
                size_unknown: node.stat.size_unknown,
                served: Default::default(),
            }),
        );
    }

    pub(super) fn handle(&self, fh: u64) -> FsResult<Arc<FileHandle>> {
        lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle(fh))
    }

    /// Write `data` at `offset` through handle `fh`; returns the bytes written.
    pub async fn write(&self, fh: u64, offset: u64, data: bytes::Bytes) -> FsResult<u32> {
        // Once the daemon stops, nothing new is accepted that could not be uploaded.
        self.writable()?;
        let h = self.handle(fh)?;
        let w = match (h.write, self.open_write(h.ino)) {
            (true, Some(w)) => w,
            _ => return Err(FsError::BadHandle(fh)),
        };
        let size = {
            let mut st = w.lock().await;
            st.check_change(offset).map_err(FsError::Unsupported)?;
            st.write_at(offset, data.clone()).await?;
            let mut stream = st.stream.take();
            if let Some(s) = stream.as_mut() {
                let meta = self.meta_to_store(h.ino);
                s.after_write(self.backend.as_ref(), &mut st, offset, &data, &meta)
                    .await;
            }
            st.stream = stream;
            st.size()
        };
        w.set_size(size);
        self.touch(h.ino, size);
        Ok(data.len() as u32)
    }

    /// Bytes of a file open for writing, from its staged content; `None` when not staged.
    pub(super) async fn read_staged(
        &self,
        ino: u64,
        offset: u64,
        size: u32,
    ) -> Option<FsResult<bytes::Bytes>> {
        let w = self.open_write(ino)?;
        let mut st = w.lock().await;
        if offset < st.dropped() {
            return Some(Err(FsError::Unsupported(format!(
                "{}: bytes before {} were already uploaded by a streaming upload and dropped \
                 from the staging area (-o stream_staging_max=); they can be read after close",
                st.key,
                st.dropped()
            ))));
        }
        let end = offset.saturating_add(size as u64);
        if let Err(e) = self.fetch_missing(&mut st, offset..end).await {
            return Some(Err(e.into()));
        }
        Some(
            st.read_at(offset, size as u64)
                .await
                .map(bytes::Bytes::from)
                .map_err(FsError::from),
        )
    }

    /// `close` of a handle (called for every close): upload changed content, return its result.
    pub async fn flush(&self, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        if !h.write {
            return Ok(());
        }
        match self.open_write(h.ino) {
            Some(w) => {
                let mut st = w.lock().await;
                // Stored with the size and times of what the kernel wrote.
                self.note_kernel_writes(h.ino, &w);
                // A program closed (or synced) what the file holds now.
                st.unclosed = false;
                match self.upload_locked(h.ino, &mut st).await {
                    Err(e) => self.journal_instead(h.ino, &mut st, e).await,
                    done => done,
                }
            }
            None => Ok(()),
        }
    }

    /// `fsync`: the same as a flush.
    pub async fn fsync(&self, fh: u64) -> FsResult<()> {
        self.flush(fh).await
    }

    /// The POSIX attributes to store with `ino`'s next upload: what it has, with its times.
    pub(super) fn meta_to_store(&self, ino: u64) -> PosixMeta {
        let Some(node) = self.inodes.get(ino) else {
            return PosixMeta::default();
        };
        let mtime = node.stat.meta.mtime.unwrap_or(node.stat.mtime);
        PosixMeta {
            mtime: Some(mtime),
            ctime: Some(node.stat.meta.ctime.unwrap_or(mtime)),
            ..node.stat.meta
        }
    }

    /// Close handle `fh`. The last write handle of an inode retries a failed upload; if that
    /// fails too, the session stays (journaled, staged) so nothing is lost.
    pub async fn release(&self, fh: u64) {
        let Some(h) = lock(&self.files).remove(&fh) else {
            return;
        };
        if h.write {
            self.end_handle(h.ino).await;
        }
    }

    /// An `O_RDONLY|O_TRUNC` open of `ino`: empty it first, as Linux does, unless a program
    /// runs from it (`ETXTBSY`). The kernel checks that itself, but with atomic `O_TRUNC` only
    /// after the open was answered, when it has already cut its size to 0 and the running
    /// program dies of SIGBUS; so the open must fail here.
    pub(super) async fn truncate_at_open(&self, ino: u64) -> FsResult<()> {
        if lock(&self.files).values().any(|h| h.ino == ino && h.exec) {
            let key = self.inodes.get(ino).map(|n| n.key).unwrap_or_default();
            return Err(FsError::TextBusy(format!(
                "{key}: a program runs from this file; it cannot be emptied (O_TRUNC) until \
                 the program exits"
            )));
        }
        self.set_size(ino, 0).await
    }

    /// Change the size of `ino` (truncate/ftruncate).
    pub async fn set_size(&self, ino: u64, size: u64) -> FsResult<()> {
        self.writable()?;
        // Joining counts a handle, so a session whose last handle is being released cannot be
        // retired under this change (it was then lost: made to a session nobody uploaded).
        if let Some(w) = self.sessions.join(ino) {
            let result = {
                // One critical section for the change and its upload: no other writer's bytes
                // can land between them. Other writers close what they changed (counted here,
                // under the lock their writes wait for); alone, this is a complete operation.
                let mut st = w.lock().await;
                let alone = self.sessions.handles(ino) == 1;
                match self.truncate_locked(ino, &w, &mut st, size).await {
                    Ok(()) if alone => {
                        st.unclosed = false;
                        self.upload_locked(ino, &mut st).await
                    }
                    other => other,
                }
            };
            self.end_handle(ino).await;
            return result;
        }
        let node = self.fresh_node(ino).await?;
        if node.kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        if node.unlinked {
            // Its object is gone; uploading would bring it back.
            self.touch(ino, size);
            return Ok(());
        }
        // Not open for writing: stage, change, upload, done (a complete operation: closed).
        let w = self.stage(&node, size == 0).await?;
        let result = match self.truncate_staged(ino, &w, size).await {
            Ok(()) => {
                let mut st = w.lock().await;
                st.unclosed = false;
                self.upload_locked(ino, &mut st).await
            }
            Err(e) => Err(e),
        };
        self.end_handle(ino).await;
        result
    }

    /// `fallocate` on write handle `fh`, where it makes sense for an object: `mode` 0 grows
    /// the file to `offset + len` (zeros; nothing can be reserved on the server),
    /// `FALLOC_FL_KEEP_SIZE` alone changes nothing, `FALLOC_FL_PUNCH_HOLE` and
    /// `FALLOC_FL_ZERO_RANGE` write zeros over the range. Collapsing or inserting ranges is
    /// refused (`EOPNOTSUPP`).
    pub async fn fallocate(&self, fh: u64, offset: u64, len: u64, mode: i32) -> FsResult<()> {
        const KEEP: i32 = libc::FALLOC_FL_KEEP_SIZE;
        const ZEROS: i32 = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_ZERO_RANGE;
        static ZERO: [u8; 1 << 20] = [0; 1 << 20];
        let h = self.handle(fh)?;
        let w = match (h.write, self.open_write(h.ino)) {
            (true, Some(w)) => w,
            _ => return Err(FsError::BadHandle(fh)),
        };
        let end = offset.saturating_add(len);
        let size = w.size();
        if mode & !(KEEP | ZEROS) != 0 {
            return Err(FsError::Unsupported(format!(
                "fallocate mode {mode:#x} (only plain, KEEP_SIZE, PUNCH_HOLE and ZERO_RANGE)"
            )));
        }
        if mode & ZEROS != 0 {
            // Zeros over the range (within the file when the size is kept).
            let stop = if mode & KEEP != 0 { end.min(size) } else { end };
            let mut at = offset;
            while at < stop {
                let n = (stop - at).min(ZERO.len() as u64) as usize;
                self.write(fh, at, bytes::Bytes::from_static(&ZERO[..n]))
                    .await?;
                at += n as u64;
            }
            return Ok(());
        }
        if mode & KEEP == 0 && end > size {
            self.truncate_staged(h.ino, &w, end).await?;
        }
        Ok(())
    }
}

mod attrs;
#[cfg(test)]
mod exec;
#[cfg(test)]
mod faults;
#[cfg(test)]
mod kernel;
#[cfg(test)]
mod model;
#[cfg(test)]
mod renames;
#[cfg(test)]
mod tests;
