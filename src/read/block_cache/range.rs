//! Reads of part of a block, and presence checks, for random readers.
//!
//! A random 4 KiB read should not cost a 1 MiB disk read and CRC: once a version is
//! *complete* (every block present, data file and record synced), its data file is trusted as
//! the object, byte for byte — exactly the trust FUSE passthrough already gives it — and a
//! range is read straight from it. So is a range of blocks known good in this run (written by
//! it, or read back whole and checked once): a version being filled in the background serves
//! its random readers without a whole-block read and CRC each. Other blocks (recorded by an
//! earlier run, not yet checked) are read a verified block at a time.

use super::{object_hash, DiskBlockCache};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;

impl DiskBlockCache {
    /// Bytes `offset .. offset + len` of `key` at version `etag`, read from the data file
    /// without a CRC check, when the version is complete or every block they span is present
    /// and known good in this run; `None` otherwise.
    pub fn complete_range(
        &self,
        key: &str,
        etag: &str,
        offset: u64,
        len: u64,
    ) -> Option<bytes::Bytes> {
        let h = object_hash(key, etag);
        let end = offset.checked_add(len)?;
        if len == 0 {
            return None;
        }
        let (first, last) = (offset / self.block_size, (end - 1) / self.block_size);
        let usable = |idx: &super::Index| {
            idx.objects.get(&h).is_some_and(|obj| {
                let known_good = |i: u64| {
                    obj.verified.contains(&i)
                        && obj
                            .meta
                            .entries
                            .get(i as usize)
                            .is_some_and(|e| e.present())
                };
                end <= obj.meta.size && (obj.meta.complete || (first..=last).all(known_good))
            })
        };
        {
            let mut idx = self.lock();
            if !usable(&idx) {
                return None;
            }
            for i in first..=last {
                idx.lru.promote(&(h, i));
            }
        }
        let mut buf = vec![0u8; len as usize];
        File::open(self.data_path(h))
            .and_then(|f| f.read_exact_at(&mut buf, offset))
            .ok()?;
        // An eviction clears the record before it punches the bytes out: still recorded after
        // the read means the read was before any punch.
        if !usable(&self.lock()) {
            return None;
        }
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        self.stats.hit_bytes.fetch_add(len, Ordering::Relaxed);
        Some(bytes::Bytes::from(buf))
    }

    /// Whether the bytes `offset .. end` of `key` at version `etag` may be in the cache as
    /// blocks: the version is complete, or every block they span is recorded (no I/O; lets a
    /// random read skip the cache's blocking reads when nothing is there).
    pub fn may_hold(&self, key: &str, etag: &str, offset: u64, end: u64) -> bool {
        let h = object_hash(key, etag);
        let idx = self.lock();
        idx.objects.get(&h).is_some_and(|o| {
            o.meta.complete
                || (offset / self.block_size..end.div_ceil(self.block_size))
                    .all(|i| o.meta.entries.get(i as usize).is_some_and(|e| e.present()))
        })
    }

    /// Whether every block `first .. end` of `key` at version `etag` is recorded (no I/O).
    pub fn has_blocks(&self, key: &str, etag: &str, first: u64, end: u64) -> bool {
        let h = object_hash(key, etag);
        let idx = self.lock();
        idx.objects.get(&h).is_some_and(|o| {
            (first..end).all(|i| o.meta.entries.get(i as usize).is_some_and(|e| e.present()))
        })
    }
}
