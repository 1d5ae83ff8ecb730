//! An open file: ranged reads with a simple sequential read-ahead window.
//!
//! Sequential reads grow the window geometrically from [`INITIAL_WINDOW`] up to the configured
//! maximum, so one GET serves many kernel reads; a read elsewhere fetches only what was asked
//! (aligned to [`RANDOM_ALIGN`]) and resets the window. Every GET carries the ETag seen at open,
//! so a changed object fails with ESTALE instead of mixing old and new bytes.
//!
//! Reads on one handle are serialised by an async mutex held across the GET; a second reader
//! of the same handle then finds the bytes already buffered instead of fetching them twice.
//! (The prefetcher of the block-cache work replaces this with parallel part fetches.)

use crate::backend::{Backend, BackendError};
use bytes::Bytes;

/// First read-ahead window of a sequential reader.
pub const INITIAL_WINDOW: u64 = 1 << 20;
/// Granularity of a non-sequential read (a few pages; keeps small random reads small).
pub const RANDOM_ALIGN: u64 = 64 << 10;

#[derive(Debug, Default)]
struct ReadAhead {
    start: u64,
    buf: Bytes,
    next: u64,
    window: u64,
}

/// One `open` of a file.
#[derive(Debug)]
pub struct FileHandle {
    /// The file's inode.
    pub ino: u64,
    /// Its object key.
    pub key: String,
    /// Its size when opened.
    pub size: u64,
    /// Its entity tag when opened.
    pub etag: Option<String>,
    state: tokio::sync::Mutex<ReadAhead>,
}

impl FileHandle {
    /// A handle on `key` as it was at open time.
    pub fn new(ino: u64, key: String, size: u64, etag: Option<String>) -> Self {
        FileHandle {
            ino,
            key,
            size,
            etag,
            state: tokio::sync::Mutex::new(ReadAhead::default()),
        }
    }

    /// Up to `len` bytes at `offset` (fewer only at end of file).
    pub async fn read(
        &self,
        backend: &dyn Backend,
        offset: u64,
        len: u32,
        max_window: u64,
    ) -> Result<Bytes, BackendError> {
        let end = offset.saturating_add(len as u64).min(self.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut st = self.state.lock().await;
        let buf_end = st.start + st.buf.len() as u64;
        if offset >= st.start && end <= buf_end {
            st.next = end;
            let (a, b) = ((offset - st.start) as usize, (end - st.start) as usize);
            return Ok(st.buf.slice(a..b));
        }
        let sequential =
            offset == st.next || (offset >= st.start && offset <= buf_end && st.window > 0);
        let fetch_end = if sequential {
            st.window = (st.window * 2).clamp(INITIAL_WINDOW, max_window.max(INITIAL_WINDOW));
            offset
                .saturating_add(st.window.max(end - offset))
                .min(self.size)
        } else {
            st.window = 0;
            end.div_ceil(RANDOM_ALIGN)
                .saturating_mul(RANDOM_ALIGN)
                .min(self.size)
        };
        let data = backend
            .get_range(&self.key, offset..fetch_end, self.etag.as_deref())
            .await?;
        if (data.len() as u64) < end - offset {
            return Err(BackendError::Changed(format!(
                "{}: the server returned {} bytes at offset {offset}, expected {}",
                self.key,
                data.len(),
                end - offset
            )));
        }
        st.start = offset;
        st.buf = data;
        st.next = end;
        Ok(st.buf.slice(0..(end - offset) as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn sequential_reads_share_gets_and_return_exact_bytes() {
        let b = MemoryBackend::new();
        let data: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
        b.insert("big", data.clone());
        let etag = b.head("big").await.unwrap().etag;
        let h = FileHandle::new(2, "big".into(), data.len() as u64, etag);
        let mut off = 0;
        let mut out = Vec::new();
        while off < data.len() as u64 {
            let chunk = h.read(&b, off, 131_072, 8 << 20).await.unwrap();
            assert!(!chunk.is_empty());
            off += chunk.len() as u64;
            out.extend_from_slice(&chunk);
        }
        assert_eq!(out, data);
        let gets = b.counters.get.load(Ordering::Relaxed);
        assert!(gets <= 4, "window growth should need few GETs, made {gets}");
    }

    #[tokio::test]
    async fn random_reads_fetch_little_and_changed_objects_fail() {
        let b = MemoryBackend::new();
        b.insert("f", vec![7u8; 1 << 20]);
        let etag = b.head("f").await.unwrap().etag;
        let h = FileHandle::new(2, "f".into(), 1 << 20, etag);
        assert_eq!(h.read(&b, 500_000, 10, 8 << 20).await.unwrap().len(), 10);
        assert_eq!(h.read(&b, 100, 10, 8 << 20).await.unwrap(), vec![7u8; 10]);
        b.insert("f", vec![8u8; 1 << 20]);
        let e = h.read(&b, 900_000, 10, 8 << 20).await.unwrap_err();
        assert!(matches!(e, BackendError::Changed(_)), "{e:?}");
    }
}
