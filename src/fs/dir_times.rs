//! Directory times on the store: an entry added, removed or renamed moves its directory's
//! mtime and ctime at once in the mount, and onto the directory's marker object (where it has
//! one, as s3fs keeps them) within a second: directories changed meanwhile are written once
//! per flush, not once per entry (a copy of 1,000 files into a directory costs one marker
//! write per second, not 1,000). The daemon flushes every second and at the stop.

use super::{CloudFs, Kind};
use crate::backend::BackendError;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// Directories whose times changed since the last flush, and the lock that keeps a flush's
/// marker write from crossing an rmdir or a rename of the same directory (a write landing
/// after the delete would bring the directory back).
#[derive(Debug, Default)]
pub struct DirtyDirs {
    dirty: Mutex<BTreeSet<u64>>,
    markers: tokio::sync::Mutex<()>,
}

impl DirtyDirs {
    /// Directory `ino`'s times changed.
    pub fn mark(&self, ino: u64) {
        self.dirty
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ino);
    }

    /// Every directory marked so far; the set starts empty again.
    fn take(&self) -> BTreeSet<u64> {
        std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Held while a directory's marker is written, deleted or moved.
    pub async fn markers(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.markers.lock().await
    }
}

impl CloudFs {
    /// Write the times of every directory changed since the last flush onto its marker
    /// object; returns how many were written. A directory without a marker on the store (a
    /// prefix only) gets none: its times stay in the mount.
    pub async fn store_dir_times(&self) -> usize {
        let mut written = 0;
        // Held for the whole flush: a flush that starts meanwhile (the one at the stop) waits
        // until this one's writes are done, instead of finding nothing left to write and
        // letting the process end under them.
        let _writing = self.dirty_dirs.markers().await;
        for ino in self.dirty_dirs.take() {
            let Some(node) = self.inodes.get(ino) else {
                continue;
            };
            // Metadata read from (or written to) a marker: only then is there one to update.
            let marked = node.stat.meta.xattrs.is_some();
            if node.kind != Kind::Dir || node.key.is_empty() || !marked || node.unlinked {
                continue;
            }
            match self.backend.put_marker(&node.key, &node.stat.meta).await {
                Ok(()) => written += 1,
                Err(BackendError::Unsupported(_)) => {}
                Err(e) => {
                    tracing::debug!(key = %node.key, error = %e, "directory times not stored; tried again at its next change")
                }
            }
        }
        written
    }
}
