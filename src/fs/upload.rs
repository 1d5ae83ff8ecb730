//! Sending staged content to the store: whole, or, for an edited object on a store that
//! copies parts on the server, only the changed parts; fetching the stored bytes a staged
//! file does not hold yet where a read or an upload needs them; and finishing the uploads a
//! killed daemon left in the journal.

use super::{parent_key, CloudFs, FsError, FsResult, Stat};
use crate::backend::{BackendError, ObjectInfo, PartSource, PosixMeta, Precondition};
use crate::write::journal::{Expect, RecordState};
use crate::write::{Pending, Staged};
use std::ops::Range;

impl CloudFs {
    /// Fetch the stored bytes `range` of `st` still lacks (the version it started as; a
    /// version replaced meanwhile fails with [`BackendError::Changed`] rather than mixing).
    pub(super) async fn fetch_missing(
        &self,
        st: &mut Staged,
        range: Range<u64>,
    ) -> Result<(), BackendError> {
        let part = self.cfg.upload_part_size.max(1 << 20);
        for gap in st.missing(range) {
            let mut at = gap.start;
            while at < gap.end {
                let end = (at + part).min(gap.end);
                let data = match self
                    .backend
                    .get_range(&st.key, at..end, st.base_etag.as_deref())
                    .await
                {
                    Ok(d) => d,
                    // The version the rest comes from is gone (replaced, or deleted).
                    Err(BackendError::NotFound(e)) if st.base_etag.is_some() => {
                        tracing::warn!(key = %st.key, staged = %st.path().display(), "the object was deleted on the server while open for writing, and the bytes this file did not change cannot be fetched any more; what was written stays in the staged file");
                        return Err(BackendError::Changed(e));
                    }
                    Err(e @ BackendError::Changed(_)) => {
                        tracing::warn!(key = %st.key, staged = %st.path().display(), "the object was replaced on the server while open for writing, and the bytes this file did not change cannot be fetched any more; what was written stays in the staged file");
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                };
                st.fill(at, data)
                    .await
                    .map_err(|e| BackendError::Other(format!("staging: {e}")))?;
                at = end;
            }
        }
        Ok(())
    }

    /// Send staged content whole, or, for an edited object on a store that copies parts on
    /// the server, only its changed parts (copying the rest from `base`, the entity tag of
    /// the version it started as, which the server still has; the copies are conditional on
    /// it too). Fetches the stored bytes the upload needs and the file lacks.
    pub(super) async fn put_staged(
        &self,
        st: &mut Staged,
        base: Option<String>,
        meta: &PosixMeta,
        cond: Option<&Precondition>,
    ) -> Result<ObjectInfo, BackendError> {
        let size = st.size();
        let part = self.part_plan().whole(size);
        let plan = match (base, self.backend.copies_parts()) {
            (Some(etag), true) => st.reuse_plan(part).map(|p| (etag, p)),
            _ => None,
        };
        if let Some((etag, plan)) = plan {
            match self.put_reusing(st, &plan, &etag, meta).await {
                Ok(info) => return Ok(info),
                Err(e) => {
                    tracing::debug!(key = %st.key, error = %e, "server-side part copies failed; sending the whole file");
                }
            }
        }
        self.fetch_missing(st, 0..size).await?;
        match cond {
            Some(c) => {
                self.backend
                    .put_file_if(&st.key, st.file(), size, part, meta, c)
                    .await
            }
            None => {
                self.backend
                    .put_file(&st.key, st.file(), size, part, meta)
                    .await
            }
        }
    }

    async fn put_reusing(
        &self,
        st: &mut Staged,
        plan: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let mut sent = 0;
        for p in plan {
            if let PartSource::Send(r) = p {
                self.fetch_missing(st, r.clone()).await?;
                sent += r.end - r.start;
            }
        }
        let size = st.size();
        let info = self
            .backend
            .put_file_reusing(&st.key, st.file(), size, plan, etag, meta)
            .await?;
        tracing::info!(key = %st.key, size, sent, copied = size - sent, "uploaded the changed parts; the rest was copied on the server");
        Ok(info)
    }

    /// Upload `st`, the staged content of `ino` (whose session lock the caller holds), if it
    /// changed: journaled first with the version it replaces, so a daemon killed meanwhile
    /// leaves it for the next mount; on success the inode shows the new version.
    pub(super) async fn upload_locked(&self, ino: u64, st: &mut Staged) -> FsResult<()> {
        if !st.dirty || st.unlinked {
            return Ok(());
        }
        let mut counted = self.activity.uploading();
        let meta = self.meta_to_store(ino);
        // The version the content started as, when the server still has it (its unchanged
        // parts can then be copied there); and what this upload replaces.
        let mut base = None;
        if let Some(started) = st.base_etag.clone() {
            match self.backend.head(&st.key).await {
                Ok(now) => {
                    if now.etag.as_deref().is_some_and(|e| e != started) {
                        tracing::warn!(key = %st.key, "the object changed on the server while open for writing; this close replaces it (last close wins)");
                    } else {
                        base = now.etag.clone();
                    }
                    st.expect = now.etag.map_or(Expect::Any, Expect::Etag);
                }
                Err(BackendError::NotFound(_)) => st.expect = Expect::Absent,
                Err(_) => {}
            }
        }
        // Content with dropped parts cannot be re-sent, so there is nothing to journal.
        if st.dropped() == 0 {
            if let Err(e) = st.journal(&meta, record_state(st), false).await {
                tracing::debug!(key = %st.key, error = %e, "cannot journal a pending upload");
            }
        }
        let mut stream = st.stream.take();
        let streamed = match stream.as_mut() {
            Some(s) => s.finish(self.backend.as_ref(), st, &meta).await,
            None => None,
        };
        st.stream = stream;
        let put = match streamed {
            Some(done) => done,
            None if st.dropped() > 0 => {
                let why = st.check_change(0).err().unwrap_or_default();
                tracing::warn!(key = %st.key, "{why}; this change cannot be uploaded");
                return Err(FsError::Unsupported(why));
            }
            None => self.put_staged(st, base, &meta, None).await,
        };
        let info = match put {
            Ok(info) => info,
            Err(e @ BackendError::Offline(_)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(key = %st.key, error = %e, "upload failed; the data stays staged and is sent again at the next flush or close");
                return Err(e.into());
            }
        };
        st.stored();
        st.base_etag = info.etag.clone();
        st.expect = info.etag.clone().map_or(Expect::Any, Expect::Etag);
        st.unjournal();
        let stat = Stat {
            size_unknown: false,
            size: info.size,
            mtime: info.mtime,
            etag: info.etag,
            meta: info.meta,
        };
        self.inodes.refresh(ino, stat, self.expiry());
        self.inodes.set_local(ino, false);
        self.dirs.invalidate(&parent_key(&st.key));
        self.now_stored(ino);
        counted.succeeded();
        Ok(())
    }

    /// `ino` now exists on the server, and so do the directories above it.
    fn now_stored(&self, ino: u64) {
        let Some(node) = self.inodes.get(ino) else {
            return;
        };
        self.negative.remove(node.parent, &node.name);
        let mut parent = node.parent;
        for _ in 0..super::MAX_KEY_LEN {
            if parent == super::ROOT_INO || !self.inodes.is_local(parent) {
                break;
            }
            self.inodes.set_local(parent, false);
            parent = self
                .inodes
                .get(parent)
                .map_or(super::ROOT_INO, |n| n.parent);
        }
    }

    /// A write handle of `ino` is gone (closed, or a stage that failed). The last one uploads
    /// what is unsent and retires the session; when that upload fails, the session stays,
    /// journaled durably, so the next open, the stop or the next mount sends it.
    pub(super) async fn end_handle(&self, ino: u64) {
        let Some(w) = self.sessions.close(ino) else {
            return;
        };
        let mut st = w.lock().await;
        // Released: whatever the file holds now was closed.
        st.unclosed = false;
        if let Err(e) = self.upload_locked(ino, &mut st).await {
            if self.keep_staged(ino, &mut st, &e.to_string()).await {
                return;
            }
            // Nothing can be kept (a stream whose start left staging): the log said so.
        }
        self.sessions.retire(ino, &w);
    }

    /// Keep `st` (not uploaded) past this run: journaled durably, as closed or unclosed
    /// content (once: a record already fsynced for this state is not written again). Returns
    /// whether it was kept.
    pub(super) async fn keep_staged(&self, ino: u64, st: &mut Staged, why: &str) -> bool {
        if !st.dirty || st.unlinked {
            return false;
        }
        if st.dropped() > 0 {
            tracing::error!(key = %st.key, reason = why, "a streamed upload could not be finished, and its start is no longer staged (-o stream_staging_max=); this change is lost");
            return false;
        }
        let state = record_state(st);
        if st.journaled_durably(state) {
            return true;
        }
        let journaled = st.journal(&self.meta_to_store(ino), state, true).await;
        let (key, staged) = (&st.key, st.path().display());
        match (journaled, state) {
            (Ok(()), RecordState::Closed) => {
                tracing::error!(%key, %staged, reason = why, "not uploaded; the data is kept in the staged file and journaled: the next close of the file, the stop, or the next mount sends it")
            }
            (Ok(()), RecordState::Unclosed) => {
                tracing::warn!(%key, %staged, reason = why, "not uploaded: no program closed this content; it is kept and set aside in lost+found at the next mount (-o upload_unclosed uploads it instead)")
            }
            (Err(e), _) => {
                tracing::error!(%key, %staged, error = %e, reason = why, "not uploaded, and the journal record cannot be written (is the cache directory's disk full?); the staged file is kept but not resumed automatically")
            }
        }
        true
    }

    /// Upload closed content an earlier run left pending (it was killed, or the store was
    /// unreachable at close), only where the server still holds the version it replaces;
    /// content the server has moved past, or no program closed, goes to `lost+found`. Runs
    /// before the mount serves; what fails stays for the next mount.
    pub async fn resume_uploads(&self) {
        let Some(area) = &self.staging else {
            return;
        };
        let left = self.replay(area, area.pending()).await;
        if !left.is_empty() {
            // The mount must not wait on the server record by record. What is left stays,
            // and its replay stays conditional, so serving first never lets it replace a
            // newer save.
            let when = if self.cfg.offline {
                "in the background once it answers (or at the next mount)"
            } else {
                "at the next mount"
            };
            tracing::warn!(
                left = left.len(),
                "the server does not answer; the pending uploads left are tried again {when}"
            );
            if self.cfg.offline {
                super::lock(&self.unsent_records).extend(left);
            }
        }
    }

    /// Replay journal records `pending` in order; the ones left untried because the server
    /// stopped answering.
    pub(super) async fn replay(
        &self,
        area: &crate::write::StagingArea,
        pending: Vec<Pending>,
    ) -> Vec<Pending> {
        for (n, p) in pending.iter().enumerate() {
            if p.record.state == RecordState::Unclosed && !self.cfg.upload_unclosed {
                area.set_aside(p, "no program closed this content (the daemon stopped while it was open for writing); mount with -o upload_unclosed to upload such content instead");
                continue;
            }
            if let Err(e) = self.resume_one(area, p).await {
                tracing::debug!(error = %e, "replaying the journal stops: the server does not answer");
                return pending[n..].to_vec();
            }
        }
        Vec::new()
    }

    /// Replay one journal record; `Err` only when the server could not be reached (the
    /// record stays).
    async fn resume_one(
        &self,
        area: &crate::write::StagingArea,
        p: &Pending,
    ) -> Result<(), BackendError> {
        // Dropped without an upload (still dirty), its files stay for the next mount.
        let mut st = match area.reopen(p) {
            Ok(st) => st,
            Err(e) => {
                tracing::warn!(staged = %p.data.display(), error = %e, "cannot read a pending upload; it is tried again at the next mount");
                return Ok(());
            }
        };
        let key = st.key.clone();
        let mut counted = self.activity.uploading();
        let now = match self.backend.head(&key).await {
            Ok(info) => Some(info),
            Err(BackendError::NotFound(_)) => None,
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::warn!(%key, error = %e, staged = %p.data.display(), "cannot ask the server whether a pending upload is still current; it is tried again at the next mount");
                return Ok(());
            }
        };
        let current = match (&p.record.expect, &now) {
            (Expect::Any, _) | (Expect::Absent, None) => true,
            (Expect::Etag(e), Some(info)) => info.etag.as_deref() == Some(e.as_str()),
            _ => false,
        };
        if !current {
            if self.holds_already(&st, now.as_ref()).await {
                tracing::info!(%key, "a pending upload had reached the server before the daemon stopped");
                counted.succeeded();
                st.stored();
                st.unjournal();
                return Ok(());
            }
            area.set_aside(p, "the server holds a newer version (or none) than the one this content was to replace; it was not uploaded");
            return Ok(());
        }
        tracing::info!(%key, size = st.size(), staged = %p.data.display(), "resuming an upload left by an earlier run");
        // The rest of partly staged content comes from the version it started as.
        let base = match (&st.base_etag, &now) {
            (Some(b), Some(info)) if info.etag.as_deref() == Some(b.as_str()) => Some(b.clone()),
            _ => None,
        };
        // Conditional on what the record expects, so a version put meanwhile is never replaced.
        let cond = match &p.record.expect {
            Expect::Absent => Some(Precondition::Absent),
            Expect::Etag(e) => Some(Precondition::Matches(e.clone())),
            Expect::Any => None,
        };
        match self
            .put_staged(&mut st, base, &p.record.meta, cond.as_ref())
            .await
        {
            Ok(_) => {
                self.dirs.invalidate(&parent_key(&key));
                st.stored();
                st.unjournal();
                counted.succeeded();
                tracing::info!(%key, "resumed upload done");
            }
            Err(BackendError::Changed(_)) => {
                area.set_aside(p, "the server changed meanwhile: it holds a newer version than the one this content replaces (or the version its unchanged bytes come from is gone)");
            }
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => {
                tracing::warn!(%key, error = %e, staged = %p.data.display(), "resumed upload failed; it is tried again at the next mount");
            }
        }
        Ok(())
    }

    /// Whether the server's object `now` already is exactly the staged content (an upload
    /// that completed just before the daemon died); compared only for small objects.
    async fn holds_already(&self, st: &Staged, now: Option<&ObjectInfo>) -> bool {
        const MAX: u64 = 8 << 20;
        let Some(now) = now else {
            return false;
        };
        let size = st.size();
        if now.size != size || size > MAX || !st.missing(0..size).is_empty() {
            return false;
        }
        if size == 0 {
            return true;
        }
        let (Ok(theirs), Ok(ours)) = (
            self.backend
                .get_range(&st.key, 0..size, now.etag.as_deref())
                .await,
            st.read_at(0, size).await,
        ) else {
            return false;
        };
        theirs[..] == ours[..]
    }
}

/// How journaled content is recorded: closed unless no program closed it yet.
pub(super) fn record_state(st: &Staged) -> RecordState {
    if st.unclosed {
        RecordState::Unclosed
    } else {
        RecordState::Closed
    }
}
