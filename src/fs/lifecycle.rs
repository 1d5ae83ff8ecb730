//! The mount's life seen from the core: what `cloudmount status` reports (uploads in flight,
//! files open for writing, errors), dropping cached metadata (SIGHUP), and draining pending
//! uploads before an unmount (SIGTERM).

use super::write_ops::OpenWrite;
use super::{CloudFs, FsError};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters the core keeps while serving.
#[derive(Debug, Default)]
pub(super) struct Activity {
    /// Set when the daemon starts stopping: writes are refused from then on.
    stopping: AtomicBool,
    uploads: AtomicUsize,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Counts one upload in flight while it lives.
pub(super) struct Uploading<'a>(&'a Activity);

impl Drop for Uploading<'_> {
    fn drop(&mut self) {
        self.0.uploads.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    /// Count an upload until the guard is dropped.
    pub(super) fn uploading(&self) -> Uploading<'_> {
        self.uploads.fetch_add(1, Ordering::Relaxed);
        Uploading(self)
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
}

impl CloudFs {
    /// A snapshot of counters, for `cloudmount status`.
    pub fn stats(&self) -> FsStats {
        FsStats {
            open_for_writing: super::lock(&self.writes).len(),
            uploads_in_flight: self.activity.uploads.load(Ordering::Relaxed),
            errors: self.activity.errors.load(Ordering::Relaxed),
            last_error: super::lock(&self.activity.last_error).clone(),
            inodes: self.inodes.len(),
        }
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
    /// writing hold, then wait for uploads in flight, all within `limit`. Returns how many
    /// uploads are still pending; their data stays staged and journaled for the next mount.
    pub async fn drain(&self, limit: Duration) -> usize {
        self.activity.stopping.store(true, Ordering::Relaxed);
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(limit)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut left = 0;
        for (ino, w) in self.open_writes() {
            let sent = tokio::time::timeout_at(deadline, self.upload(ino, &w)).await;
            if !matches!(sent, Ok(Ok(()))) {
                left += 1;
                self.keep_for_next_mount(ino, &w).await;
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
    /// (a write that raced the stop), so the next mount sends it. Returns how many.
    pub async fn keep_unsent(&self) -> usize {
        let mut kept = 0;
        for (ino, w) in self.open_writes() {
            kept += usize::from(self.keep_for_next_mount(ino, &w).await);
        }
        kept
    }

    fn open_writes(&self) -> Vec<(u64, Arc<OpenWrite>)> {
        super::lock(&self.writes)
            .iter()
            .map(|(ino, w)| (*ino, Arc::clone(w)))
            .collect()
    }

    /// Journal `w`'s unsent content and keep its staged file past this run; true if kept.
    async fn keep_for_next_mount(&self, ino: u64, w: &OpenWrite) -> bool {
        let Ok(mut st) = tokio::time::timeout(Duration::from_secs(1), w.staged.lock()).await else {
            tracing::warn!(ino, "an upload of a file is still running at the stop; it was journaled when it started and is resumed at the next mount");
            return false;
        };
        if !st.dirty || st.unlinked {
            return false;
        }
        if st.dropped() > 0 {
            tracing::error!(key = %st.key, "a streamed upload could not be finished before the stop, and its start is no longer staged (-o stream_staging_max=); this change is lost");
            return false;
        }
        if let Err(e) = st.journal(&self.meta_to_store(ino)) {
            tracing::error!(key = %st.key, staged = %st.path().display(), error = %e, "cannot journal unsent data; the staged file is kept but not resumed automatically");
        } else {
            tracing::warn!(key = %st.key, staged = %st.path().display(), "not uploaded before the stop; kept and sent at the next mount");
        }
        st.keep();
        true
    }
}
