//! The mount's life seen from the core: what `cloudmount status` reports (uploads in flight,
//! files open for writing, errors), dropping cached metadata (SIGHUP), and draining pending
//! uploads before an unmount (SIGTERM).

use super::{CloudFs, FsError};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Counters the core keeps while serving.
#[derive(Debug, Default)]
pub(super) struct Activity {
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
    /// (SIGHUP). Open files and staged writes are untouched.
    pub fn drop_metadata_cache(&self) {
        self.inodes.expire_all();
        self.dirs.clear();
        self.negative.clear();
    }

    /// Before an unmount: upload what files still open for writing hold, then wait for
    /// uploads in flight, all within `limit`. Returns how many uploads are still pending; their
    /// data stays staged (and journaled) for the next mount.
    pub async fn drain(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        let open: Vec<_> = super::lock(&self.writes)
            .iter()
            .map(|(ino, w)| (*ino, Arc::clone(w)))
            .collect();
        let mut left = 0;
        for (ino, w) in open {
            let sent = tokio::time::timeout_at(deadline, self.upload(ino, &w)).await;
            if !matches!(sent, Ok(Ok(()))) {
                left += 1;
                let mut st = w.staged.lock().await;
                st.keep();
                tracing::warn!(key = %st.key, staged = %st.path().display(), "a file open for writing could not be uploaded before the unmount; it is kept and sent at the next mount");
            }
        }
        while self.activity.uploads.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        left + self.activity.uploads.load(Ordering::Relaxed)
    }
}
