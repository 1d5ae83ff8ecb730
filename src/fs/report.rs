//! The core's numbers for `-o metrics=` and `cloudmount stats`: its own counters and those
//! of the parts it owns (block cache, read path, memory budget, uploads), in one
//! [`Snapshot`].

use super::CloudFs;
use crate::metrics::{CacheNumbers, Metrics, Snapshot, UploadNumbers};
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl CloudFs {
    /// The counters requests, FUSE operations and errors are recorded in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Every number now; the caller fills in the mount point, source and uptime.
    pub fn snapshot(&self) -> Snapshot {
        let stats = self.stats();
        let src = &self.blocks.stats;
        let cache = self.blocks.cache().map_or_else(CacheNumbers::default, |c| {
            let s = &c.stats;
            CacheNumbers {
                enabled: true,
                hits: s.hits.load(Ordering::Relaxed),
                misses: s.misses.load(Ordering::Relaxed),
                bytes_served: s.hit_bytes.load(Ordering::Relaxed),
                evictions: s.evictions.load(Ordering::Relaxed),
                used_bytes: c.used_bytes(),
                limit_bytes: c.limit(),
                write_errors: s.write_errors.load(Ordering::Relaxed),
            }
        });
        let (completed, failed) = self.activity.upload_outcomes();
        Snapshot {
            online: stats.offline_since.is_none(),
            backend: self.metrics.backend.snapshot(),
            backend_bytes: src.bytes_fetched.load(Ordering::Relaxed),
            cache,
            readahead_resets: src.window_resets.load(Ordering::Relaxed),
            uploads: UploadNumbers {
                open_for_writing: stats.open_for_writing as u64,
                in_flight: stats.uploads_in_flight as u64,
                completed,
                failed,
                journal_entries: stats.unsent as u64,
                lost_found: stats.lost_found as u64,
            },
            fuse: self.metrics.fuse.snapshot(),
            memory_used_bytes: self.budget.used(),
            memory_limit_bytes: self.budget.limit(),
            errors_by_errno: self.metrics.errnos(),
            ..Snapshot::default()
        }
    }
}
