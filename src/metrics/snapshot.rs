//! Every number of one mount at one moment: what `-o metrics=` exposes, what the control
//! socket sends as JSON and what `cloudmount stats` prints.

use super::HistogramSnapshot;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One operation and outcome, with its latency histogram (whose count is the number of them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpNumbers {
    /// The operation (`get`, `head`, `list`… for the store; `read`, `lookup`… for FUSE).
    pub op: String,
    /// `ok`, or what went wrong (`not_found`, `unreachable`…); empty for FUSE operations,
    /// whose errors are counted by errno.
    pub outcome: String,
    /// How long they took.
    pub latency: HistogramSnapshot,
}

/// The block cache.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheNumbers {
    /// Whether the mount has a disk cache at all.
    pub enabled: bool,
    /// Blocks served from disk.
    pub hits: u64,
    /// Lookups that found nothing usable.
    pub misses: u64,
    /// Bytes served from disk.
    pub bytes_served: u64,
    /// Blocks evicted to stay under the limit.
    pub evictions: u64,
    /// Bytes in the cache now.
    pub used_bytes: u64,
    /// The cache limit (`-o cache_size=`).
    pub limit_bytes: u64,
    /// Blocks that could not be written to disk.
    pub write_errors: u64,
}

/// Uploads and the journal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UploadNumbers {
    /// Files open for writing.
    pub open_for_writing: u64,
    /// Uploads running now.
    pub in_flight: u64,
    /// Uploads that reached the store.
    pub completed: u64,
    /// Uploads that failed (their data stays staged and journaled).
    pub failed: u64,
    /// Closed files journaled and not yet on the store.
    pub journal_entries: u64,
    /// Files set aside in lost+found.
    pub lost_found: u64,
}

/// Every number of one mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The mount point (the `mount` label).
    pub mountpoint: String,
    /// The source URL.
    pub source: String,
    /// Seconds since the daemon started serving.
    pub uptime_s: f64,
    /// Whether the store answered the last request.
    pub online: bool,
    /// Requests to the store, by operation and outcome.
    pub backend: Vec<OpNumbers>,
    /// Bytes received from the store for reads.
    pub backend_bytes: u64,
    /// The block cache.
    pub cache: CacheNumbers,
    /// Times a handle's read-ahead window fell back to nothing (a non-sequential read).
    pub readahead_resets: u64,
    /// Uploads.
    pub uploads: UploadNumbers,
    /// FUSE operations, by operation and outcome.
    pub fuse: Vec<OpNumbers>,
    /// Bytes of the read-ahead memory budget held now.
    pub memory_used_bytes: u64,
    /// The budget (`-o max_memory=`).
    pub memory_limit_bytes: u64,
    /// Errors answered to programs, by errno.
    pub errors_by_errno: BTreeMap<String, u64>,
}

impl Snapshot {
    /// Requests of `table` in total.
    pub fn count(table: &[OpNumbers]) -> u64 {
        table.iter().map(|o| o.latency.count).sum()
    }
}
