//! Fetching a file into the block cache ahead of its readers (`cloudmount warm`): every
//! block of the version the store holds, a few at a time, without the kernel's page cache.

use super::inode::ROOT_INO;
use super::{CloudFs, FsError, FsResult, Kind};
use crate::read::ObjectRef;

/// Blocks fetched per request while warming one file.
const WARM_CHUNK: u64 = 8 << 20;

/// How long a warmed file's blocks may take to reach the disk.
const WRITE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

impl CloudFs {
    /// Fetch every block of the file at `path` (relative to the mount's root, `/`-separated)
    /// into the block cache, calling `progress` with the bytes of each chunk as it lands.
    /// Returns the file's size. Blocks already cached are not fetched again.
    pub async fn warm(&self, path: &str, mut progress: impl FnMut(u64)) -> FsResult<u64> {
        if self.blocks.cache().is_none() {
            return Err(FsError::Unsupported(
                "this mount has no block cache to warm (it was mounted with -o cache=off)".into(),
            ));
        }
        let mut ino = ROOT_INO;
        for name in path.split('/').filter(|n| !n.is_empty() && *n != ".") {
            if name == ".." {
                return Err(FsError::Unsupported(format!(
                    "{path}: give the path from the mount's root, without `..`"
                )));
            }
            ino = self.resolve(ino, name).await?;
        }
        let node = self.node(ino)?;
        if node.kind != Kind::File {
            return Err(FsError::Unsupported(format!(
                "{path} is not a regular file; warm reads files, and walks directories itself"
            )));
        }
        if node.stat.size_unknown || node.stat.etag.is_none() {
            return Err(FsError::Unsupported(format!(
                "{path} has no fixed version to cache (an exported document, or a store that \
                 gives no entity tag)"
            )));
        }
        let obj = ObjectRef {
            key: node.key.clone(),
            etag: node.stat.etag.clone(),
            size: node.stat.size,
        };
        let write_errors = |c: &crate::read::DiskBlockCache| {
            c.stats
                .write_errors
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        let errors_before = self.blocks.cache().map_or(0, |c| write_errors(c));
        let per = (WARM_CHUNK / self.blocks.block_size()).max(1);
        let count = self.blocks.block_count(&obj);
        let mut first = 0;
        while first < count {
            let got = self.blocks.blocks(&obj, first, per).await?;
            progress(got.iter().map(|b| b.len() as u64).sum());
            first += per;
        }
        // The blocks are handed to the cache writer: done once they are on disk.
        if !self.blocks.drain_cache_writes(WRITE_WAIT).await {
            return Err(FsError::Backend(crate::backend::BackendError::Other(
                format!(
                "the cache did not write {path}'s blocks within {WRITE_WAIT:?} (is its disk full \
                 or slow?)"
            ),
            )));
        }
        // A block the cache could not write is not there for the reads this warms up for.
        let errors_after = self.blocks.cache().map_or(0, |c| write_errors(c));
        if errors_after > errors_before {
            return Err(FsError::Backend(crate::backend::BackendError::NoSpace(
                format!(
                    "{} block(s) could not be written to the cache in {} while {path} was warmed \
                 (is its disk full?); the daemon's log names the error",
                    errors_after - errors_before,
                    self.blocks
                        .cache()
                        .map_or(String::new(), |c| c.dir().display().to_string())
                ),
            )));
        }
        Ok(obj.size)
    }
}
