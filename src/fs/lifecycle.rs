//! The mount's life seen from the core: what `cloudmount status` reports (uploads in flight,
//! files open for writing, errors), dropping cached metadata (SIGHUP), and draining pending
//! uploads before an unmount (SIGTERM).

use super::{CloudFs, FsError};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Counters the core keeps while serving.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Set when the daemon starts stopping: writes are refused from then on.
    stopping: AtomicBool,
    uploads: AtomicUsize,
    /// Uploads that reached the store, and those that did not (their data stays staged).
    completed: AtomicU64,
    failed: AtomicU64,
    errors: AtomicU64,
    /// Answers given from cache past their TTL because the store did not answer.
    stale: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Counts one upload in flight while it lives; dropped before [`Uploading::succeeded`], it
/// counts a failed upload.
pub(super) struct Uploading<'a> {
    activity: &'a Activity,
    ok: bool,
}

impl Uploading<'_> {
    /// The upload reached the store.
    pub(super) fn succeeded(&mut self) {
        self.ok = true;
    }
}

impl Drop for Uploading<'_> {
    fn drop(&mut self) {
        let a = self.activity;
        a.uploads.fetch_sub(1, Ordering::Relaxed);
        let outcome = if self.ok { &a.completed } else { &a.failed };
        outcome.fetch_add(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// Count an upload until the guard is dropped.
    pub(super) fn uploading(&self) -> Uploading<'_> {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        Uploading {
            activity: self,
            ok: false,
        }
    }

    /// Uploads that reached the store, and those that failed, since the mount started.
    pub(super) fn upload_outcomes(&self) -> (u64, u64) {
        (
            self.completed.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Count one answer given from cache past its TTL.
    pub(super) fn served_stale(&self) {
        self.stale.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a serving mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsStats {
    /// Files open for writing (their content is staged until close).
    pub open_for_writing: usize,
    /// Uploads being sent now.
    pub uploads_in_flight: usize,
    /// Operations that failed with an unexpected error (I/O, server, staging) since mounting.
    pub errors: u64,
    /// The last such error: operation and message.
    pub last_error: Option<String>,
    /// Inodes known.
    pub inodes: usize,
    /// Answers given from cache past their TTL because the store did not answer.
    pub stale_answers: u64,
    /// Closed content waiting for the store to answer (uploaded in the background then).
    pub unsent: usize,
    /// Since when the store has not answered, and the last reason; `None` while it does.
    pub offline_since: Option<(SystemTime, String)>,
    /// Files set aside in `lost+found` next to the staging directory: journaled content the
    /// server had moved past, content no program closed, unreadable records.
    pub lost_found: usize,
}

impl CloudFs {
    /// A snapshot of counters, for `cloudmount status`.
    pub fn stats(&self) -> FsStats {
        FsStats {
            open_for_writing: self.sessions.len(),
            uploads_in_flight: self.activity.uploads.load(Ordering::Relaxed),
            errors: self.activity.errors.load(Ordering::Relaxed),
            last_error: super::lock(&self.activity.last_error).clone(),
            inodes: self.inodes.len(),
            stale_answers: self.activity.stale.load(Ordering::Relaxed),
            unsent: self.unsent(),
            offline_since: self.conn.offline_since(),
            lost_found: self.staging.as_ref().map_or(0, |a| a.lost_found_count()),
        }
    }

    /// Where content that is kept but not uploaded goes (`None`: a read-only mount).
    pub fn lost_found_dir(&self) -> Option<&std::path::Path> {
        self.staging.as_ref().map(|a| a.lost_found())
    }

    /// Record an operation that failed unexpectedly (the adapter calls this with every error
    /// it answers that is not part of normal operation).
    pub fn note_error(&self, op: &str, e: &FsError) {
        if e.is_expected() {
            return;
        }
        self.activity.errors.fetch_add(1, Ordering::Relaxed);
        *super::lock(&self.activity.last_error) = Some(format!("{op}: {e}"));
    }

    /// Forget every cached attribute, listing and missing name, so the next use asks the store
    /// (SIGHUP). Open files and staged writes are untouched. Returns the names the kernel may
    /// still hold, `(inode, parent, name)`, for the caller to invalidate there too.
    pub fn drop_metadata_cache(&self) -> Vec<(u64, u64, String)> {
        self.inodes.expire_all();
        self.dirs.clear();
        self.negative.clear();
        self.inodes.entries()
    }

    /// Whether the daemon is stopping (writes are refused).
    pub(super) fn is_stopping(&self) -> bool {
        self.activity.stopping.load(Ordering::Relaxed)
    }

    /// Before an unmount: refuse writes from now on, upload what files still open for
    /// writing hold that a program closed, then wait for uploads in flight, all within
    /// `limit`. Content no program closed is not uploaded (unless `upload_unclosed`): it is
    /// kept, journaled as unclosed. Returns how many files were not uploaded; their data
    /// stays staged and journaled.
    pub async fn drain(&self, limit: Duration) -> usize {
        self.activity.stopping.store(true, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(limit)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut left = 0;
        for (ino, w) in self.sessions.all() {
            let Ok(mut st) = tokio::time::timeout_at(deadline, w.lock()).await else {
                // Its upload is running (journaled when it started); waited for below.
                continue;
            };
            if !st.dirty || st.unlinked {
                continue;
            }
            if st.unclosed && !self.cfg.upload_unclosed {
                left += usize::from(self.keep_staged(ino, &mut st, UNCLOSED).await);
                continue;
            }
            let sent = tokio::time::timeout_at(deadline, self.upload_locked(ino, &mut st)).await;
            if !matches!(sent, Ok(Ok(()))) {
                let why = "not uploaded before the stop";
                left += usize::from(self.keep_staged(ino, &mut st, why).await);
            }
        }
        while self.activity.uploads.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        left + self.activity.uploads.load(Ordering::Relaxed)
    }

    /// After the unmount: journal and keep whatever files still hold that is not uploaded
    /// (a write that raced the stop), so the next mount sends it (or sets it aside, if no
    /// program closed it). Returns how many.
    pub async fn keep_unsent(&self) -> usize {
        let mut kept = 0;
        for (ino, w) in self.sessions.all() {
            let Ok(mut st) = tokio::time::timeout(Duration::from_secs(5), w.lock()).await else {
                // An upload still holds it: its journal record, written when it started, and
                // its staged data stay (a dirty staging file is never removed) for the next
                // mount.
                tracing::warn!(ino, "an upload is still running at the stop; its data and journal record stay for the next mount");
                kept += 1;
                continue;
            };
            let why = if st.unclosed {
                UNCLOSED
            } else {
                "not uploaded before the stop"
            };
            kept += usize::from(self.keep_staged(ino, &mut st, why).await);
        }
        kept
    }
}

/// Why content still open for writing at a stop is not uploaded.
const UNCLOSED: &str = "still open for writing at the stop: no program closed it, so it is \
    not uploaded (mount with -o upload_unclosed to upload it); it is kept in the staging \
    directory and set aside in lost+found at the next mount";

impl CloudFs {
    /// Abort the multipart uploads left unfinished on the server that are older than
    /// `older_than`, except for keys the mount still has content for (files open for writing,
    /// kept sessions, and `also`: journal records not replayed yet); how many were aborted.
    pub async fn abort_stale_uploads(
        &self,
        older_than: Duration,
        also: &std::collections::HashSet<String>,
    ) -> Result<usize, crate::backend::BackendError> {
        let mut keep = also.clone();
        for (_, w) in self.sessions.all() {
            keep.insert(w.lock().await.key.clone());
        }
        self.backend.abort_stale_uploads(older_than, &keep).await
    }

    /// Keys of journaled content not sent yet (read before the mount serves, when nothing
    /// else touches the journal).
    pub fn journaled_keys(&self) -> std::collections::HashSet<String> {
        self.staging
            .as_ref()
            .map(|a| a.pending().into_iter().map(|p| p.record.key).collect())
            .unwrap_or_default()
    }
}
