//! A streamed body cut into the blocks it covers (the read-ahead's runs and the background
//! fill read bodies the same way).

use super::ObjectRef;
use crate::backend::BackendError;
use bytes::{Bytes, BytesMut};

/// Blocks `first..end` of an object, filled from the pieces of one ranged GET's body.
#[derive(Debug)]
pub(super) struct Cutter {
    key: String,
    block_size: u64,
    size: u64,
    /// The bytes asked for.
    range: std::ops::Range<u64>,
    /// The block being filled.
    idx: u64,
    end: u64,
    buf: BytesMut,
}

impl Cutter {
    /// Blocks `first..end` (non-empty, within the object) of `obj`, in blocks of `block_size`.
    pub(super) fn new(obj: &ObjectRef, block_size: u64, first: u64, end: u64) -> Self {
        let start = first * block_size;
        let stop = (end * block_size).min(obj.size);
        Cutter {
            key: obj.key.clone(),
            block_size,
            size: obj.size,
            range: start..stop,
            idx: first,
            end,
            buf: BytesMut::new(),
        }
    }

    /// The bytes to ask for.
    pub(super) fn range(&self) -> std::ops::Range<u64> {
        self.range.clone()
    }

    fn block_len(&self, idx: u64) -> usize {
        let start = idx * self.block_size;
        ((start + self.block_size).min(self.size) - start) as usize
    }

    /// The block the next bytes go to, and its length; an error when the body runs past the
    /// range.
    pub(super) fn current(&self) -> Result<(u64, usize), BackendError> {
        if self.idx >= self.end {
            return Err(BackendError::Changed(format!(
                "{}: more than the {} bytes asked at {}",
                self.key,
                self.range.end - self.range.start,
                self.range.start
            )));
        }
        Ok((self.idx, self.block_len(self.idx)))
    }

    /// Move bytes of `piece` into the current block (call [`Cutter::current`] first); the
    /// block and its index when that completed it. A piece holding a whole block is sliced,
    /// not copied.
    pub(super) fn take(&mut self, piece: &mut Bytes) -> Option<(u64, Bytes)> {
        let len = self.block_len(self.idx);
        let data = if self.buf.is_empty() && piece.len() >= len {
            piece.split_to(len)
        } else {
            self.buf.reserve(len.saturating_sub(self.buf.len()));
            let take = (len - self.buf.len()).min(piece.len());
            self.buf.extend_from_slice(&piece.split_to(take));
            if self.buf.len() < len {
                return None;
            }
            self.buf.split().freeze()
        };
        self.idx += 1;
        Some((self.idx - 1, data))
    }

    /// Start again at the block begun, for a new body after one broke off: the bytes to ask
    /// for from then on are the blocks not complete yet (what came of the block begun is
    /// dropped, the new body starts at its first byte).
    pub(super) fn restart(&mut self) {
        self.range.start = self.idx * self.block_size;
        self.buf.clear();
    }

    /// At the end of the body: an error when it ended short of the range.
    pub(super) fn finish(&self) -> Result<(), BackendError> {
        if self.idx == self.end {
            return Ok(());
        }
        Err(BackendError::Changed(format!(
            "{}: the answer ended {} bytes short of {}-{}",
            self.key,
            self.range.end - (self.idx * self.block_size + self.buf.len() as u64),
            self.range.start,
            self.range.end - 1
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(size: u64) -> ObjectRef {
        ObjectRef {
            key: "k".into(),
            etag: None,
            size,
        }
    }

    /// Feeds `body` in pieces of `step` bytes; the blocks out, or the first error.
    fn cut_all(c: &mut Cutter, body: &[u8], step: usize) -> Result<Vec<(u64, Bytes)>, String> {
        let mut out = Vec::new();
        for chunk in body.chunks(step) {
            let mut piece = Bytes::copy_from_slice(chunk);
            while !piece.is_empty() {
                c.current().map_err(|e| e.to_string())?;
                out.extend(c.take(&mut piece));
            }
        }
        c.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    #[test]
    fn pieces_of_any_size_make_the_same_blocks() {
        // Blocks 1..3 of a 10-byte object in 4-byte blocks: bytes 4..10, the last one short.
        let body: Vec<u8> = (4..10).collect();
        for step in [1, 3, 4, 5, 6] {
            let mut c = Cutter::new(&obj(10), 4, 1, 3);
            assert_eq!(c.range(), 4..10);
            let blocks = cut_all(&mut c, &body, step).unwrap();
            assert_eq!(blocks.len(), 2, "step {step}");
            assert_eq!((blocks[0].0, &blocks[0].1[..]), (1, &[4u8, 5, 6, 7][..]));
            assert_eq!((blocks[1].0, &blocks[1].1[..]), (2, &[8u8, 9][..]));
        }
    }

    #[test]
    fn the_rest_starts_at_the_block_begun() {
        let mut c = Cutter::new(&obj(10), 4, 0, 3);
        let mut piece = Bytes::from_static(&[0, 1, 2, 3, 4, 5]);
        assert_eq!(c.take(&mut piece).map(|b| b.0), Some(0));
        assert_eq!(
            c.take(&mut piece),
            None,
            "block 1 begun, 2 of its 4 bytes in"
        );
        c.restart();
        assert_eq!(c.range(), 4..10);
        let blocks = cut_all(&mut c, &[4, 5, 6, 7, 8, 9], 6).unwrap();
        assert_eq!(blocks.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(&blocks[0].1[..], &[4u8, 5, 6, 7][..]);
    }

    #[test]
    fn a_body_too_long_or_too_short_is_an_error() {
        let mut c = Cutter::new(&obj(8), 4, 0, 2);
        let e = cut_all(&mut c, &[0; 9], 9).unwrap_err();
        assert!(e.contains("more than the 8 bytes"), "{e}");
        let mut c = Cutter::new(&obj(8), 4, 0, 2);
        let e = cut_all(&mut c, &[0; 6], 2).unwrap_err();
        assert!(e.contains("2 bytes short of 0-7"), "{e}");
    }
}
