//! Fetching a file into the block cache ahead of its readers (`cloudmount warm`): every
//! block of the version the store holds, a few at a time, without the kernel's page cache.

use super::inode::ROOT_INO;
use super::{CloudFs, FsError, FsResult, Kind};
use crate::read::ObjectRef;

/// Blocks fetched per request while warming one file.
const WARM_CHUNK: u64 = 8 << 20;

/// Chunks fetched at once while warming one file.
const WARM_PARALLEL: usize = 4;

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
        // The same streamed GETs as a random reader's background fill: each body goes to the
        // cache a block at a time, a few chunks at once; a block the cache cannot write (disk
        // full) fails the warm, naming the cache directory.
        use futures::StreamExt;
        let per = (WARM_CHUNK / self.blocks.block_size()).max(1);
        let count = self.blocks.block_count(&obj);
        let bs = self.blocks.block_size();
        let chunks = (0..count).step_by(per as usize).map(|first| {
            let end = (first + per).min(count);
            let bytes = (end * bs).min(obj.size) - first * bs;
            let (blocks, obj) = (&self.blocks, &obj);
            async move {
                blocks
                    .stream_to_cache(obj, first, end)
                    .await
                    .map(|()| bytes)
            }
        });
        let mut done = futures::stream::iter(chunks).buffer_unordered(WARM_PARALLEL);
        while let Some(bytes) = done.next().await {
            progress(bytes?);
        }
        Ok(obj.size)
    }
}
