//! Partial blocks: the pieces a random reader fetched, kept until their block is whole.
//!
//! A random 4 KiB read fetches one aligned 64 KiB piece ([`PIECE`]), not its whole block (see
//! `read::prefetch`). Those bytes go into the version's data file at their offset, as a block's
//! would, and are recorded in a third file, `<hash>.pieces` (mode 0600, sparse):
//! `MAGIC[8] | piece_size u32 | 0u32 | size u64`, then one 8-byte entry per piece of the object
//! (`len u32 | crc32 u32`, `len == 0`: absent) at a fixed offset, so a piece is recorded with one
//! write. A piece is served only when its record is present and the bytes read back have that
//! length and CRC, like a block.
//!
//! Pieces are charged to the size limit one by one (LRU key with [`PIECE_KEY`] set) and evicted
//! like blocks (punched out, record cleared). A block that arrives whole supersedes the pieces
//! inside it: their records are cleared and their charge returned, and their bytes, which are
//! the block's own, stay. A piece is never recorded inside a present block. Pieces exist only
//! when the block size is a larger multiple of [`PIECE`].

use super::{files::punch_hole, meta::Entry, object_hash, DiskBlockCache, Index, Io};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// Size of a piece: the unit of a random read's GET.
pub const PIECE: u64 = 64 << 10;
/// Set in the index part of an LRU key that names a piece, not a block.
pub(crate) const PIECE_KEY: u64 = 1 << 63;
const MAGIC: &[u8; 8] = b"CMPCS001";
const HEADER: u64 = 24;

/// Offset of the record of piece `piece` in a pieces file.
pub fn entry_at(piece: u64) -> u64 {
    HEADER + 8 * piece
}

/// The header of the pieces file of an object of `size` bytes.
fn header(size: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&(PIECE as u32).to_le_bytes());
    h[16..24].copy_from_slice(&size.to_le_bytes());
    h
}

/// The present entries of a pieces file for an object of `size` bytes; `None` when the file is
/// not a well-formed record of that object.
pub fn decode(buf: &[u8], size: u64) -> Option<BTreeMap<u64, Entry>> {
    let n = size.div_ceil(PIECE);
    if buf.get(..HEADER as usize)? != header(size) || buf.len() as u64 != entry_at(n) {
        return None;
    }
    let mut out = BTreeMap::new();
    for (i, e) in buf[HEADER as usize..].chunks_exact(8).enumerate() {
        let len = u32::from_le_bytes(e[..4].try_into().ok()?);
        let crc = u32::from_le_bytes(e[4..].try_into().ok()?);
        if len > 0 {
            out.insert(i as u64, Entry { len, crc });
        }
    }
    Some(out)
}

impl DiskBlockCache {
    /// Whether this cache keeps pieces (blocks larger than, and a multiple of, [`PIECE`]).
    fn pieces_on(&self) -> bool {
        self.block_size > PIECE && self.block_size % PIECE == 0
    }

    pub(super) fn pieces_path(&self, h: u128) -> PathBuf {
        self.data_path(h).with_extension("pieces")
    }

    /// Keep the bytes `offset .. offset + data.len()` of `key` at version `etag` (an object of
    /// `size` bytes) that a random read fetched: whole blocks among them as blocks, whole
    /// pieces as pieces, the rest not at all. Failures are logged, never fatal.
    pub fn put_range(&self, key: &str, etag: &str, size: u64, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let slice = |a: u64, z: u64| &data[(a - offset) as usize..(z - offset) as usize];
        let bs = self.block_size;
        for b in offset.div_ceil(bs)..end.div_ceil(bs) {
            let (a, z) = (b * bs, (b * bs + bs).min(size));
            if z <= end {
                self.put(key, etag, size, b, slice(a, z));
            }
        }
        if !self.pieces_on() {
            return;
        }
        for p in offset.div_ceil(PIECE)..end.div_ceil(PIECE) {
            let (a, z) = (p * PIECE, (p * PIECE + PIECE).min(size));
            let block = a / bs;
            let block_whole = block * bs >= offset && (block * bs + bs).min(size) <= end;
            if z <= end && !block_whole {
                let _ = self.store_piece(key, etag, size, p, slice(a, z));
            }
        }
    }

    fn store_piece(
        &self,
        key: &str,
        etag: &str,
        size: u64,
        piece: u64,
        data: &[u8],
    ) -> Result<(), String> {
        let h = object_hash(key, etag);
        let block = piece * PIECE / self.block_size;
        // Some(true): nothing to do (its block or the piece is there, or another size).
        let known = self.lock().objects.get(&h).map(|o| {
            o.meta.size != size
                || o.meta
                    .entries
                    .get(block as usize)
                    .is_some_and(Entry::present)
                || o.pieces.contains_key(&piece)
        });
        match known {
            Some(true) => return Ok(()),
            Some(false) => {}
            None => self.create_object(h, key, etag, size)?,
        }
        self.create_pieces_file(h, size)
            .inspect_err(|e| self.write_failed(e))?;
        if self.charge_and_write(h, PIECE_KEY | piece, piece * PIECE, data)? {
            self.record_piece(h, piece, Entry::of(data));
        }
        Ok(())
    }

    /// Create the (sparse) pieces file of version `h` unless it is there.
    fn create_pieces_file(&self, h: u128, size: u64) -> Result<(), String> {
        let path = self.pieces_path(h);
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let want = entry_at(size.div_ceil(PIECE));
        if f.metadata().map(|m| m.len()).unwrap_or(0) != want {
            f.write_all_at(&header(size), 0)
                .and_then(|_| f.set_len(want))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        Ok(())
    }

    /// Record a written piece, unless it was evicted meanwhile or its block arrived whole.
    fn record_piece(&self, h: u128, piece: u64, entry: Entry) {
        let block = piece * PIECE / self.block_size;
        let (keep, punch) = {
            let mut idx = self.lock();
            let charged = idx.lru.contains(&(h, PIECE_KEY | piece));
            let block_there = idx
                .objects
                .get(&h)
                .and_then(|o| o.meta.entries.get(block as usize))
                .is_some_and(Entry::present);
            match idx.objects.get_mut(&h) {
                Some(o) if charged && !block_there => {
                    o.pieces.insert(piece, entry);
                    (true, false)
                }
                _ => {
                    if let Some(s) = idx.lru.pop(&(h, PIECE_KEY | piece)) {
                        idx.total -= s;
                    }
                    // Inside a present block the bytes are the block's: leave them.
                    (false, !block_there)
                }
            }
        };
        if punch {
            if let Ok(f) = OpenOptions::new().write(true).open(self.data_path(h)) {
                punch_hole(&f, piece * PIECE, entry.len as u64);
            }
        }
        if keep {
            if let Ok(f) = OpenOptions::new().write(true).open(self.pieces_path(h)) {
                let _ = f.write_all_at(&entry.encode(), entry_at(piece));
            }
        }
    }

    /// Bytes `offset .. offset + len` of `key` at version `etag` when every piece they span is
    /// recorded and verifies; `None` otherwise (a piece that fails its CRC is dropped).
    pub fn pieces_range(
        &self,
        key: &str,
        etag: &str,
        offset: u64,
        len: u64,
    ) -> Option<bytes::Bytes> {
        let h = object_hash(key, etag);
        let end = offset.checked_add(len)?;
        if len == 0 || !self.pieces_on() {
            return None;
        }
        let wanted: Vec<(u64, Entry)> = {
            let mut idx = self.lock();
            let obj = idx.objects.get(&h)?;
            let found: Option<Vec<(u64, Entry)>> = (offset / PIECE..=(end - 1) / PIECE)
                .map(|p| obj.pieces.get(&p).map(|e| (p, *e)))
                .collect();
            let found = found?;
            for (p, _) in &found {
                idx.lru.promote(&(h, PIECE_KEY | p));
            }
            found
        };
        let file = File::open(self.data_path(h)).ok()?;
        let mut out = Vec::with_capacity(len as usize);
        for (p, entry) in wanted {
            let mut buf = vec![0u8; entry.len as usize];
            if file.read_exact_at(&mut buf, p * PIECE).is_err() || !entry.verifies(&buf) {
                tracing::warn!(
                    key,
                    piece = p,
                    "corrupt cache piece dropped; it will be fetched again"
                );
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                let io = {
                    let mut idx = self.lock();
                    match idx.lru.pop(&(h, PIECE_KEY | p)) {
                        Some(size) => {
                            idx.total -= size;
                            self.unrecord(&mut idx, h, PIECE_KEY | p)
                        }
                        None => Vec::new(),
                    }
                };
                self.do_io(io);
                return None;
            }
            let start = p * PIECE;
            let (a, z) = (offset.max(start) - start, end.min(start + PIECE) - start);
            out.extend_from_slice(buf.get(a as usize..z as usize)?);
        }
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        self.stats.hit_bytes.fetch_add(len, Ordering::Relaxed);
        Some(bytes::Bytes::from(out))
    }

    /// Whether every piece spanning `offset .. end` of `key` at version `etag` is recorded
    /// (no I/O).
    pub fn has_pieces(&self, key: &str, etag: &str, offset: u64, end: u64) -> bool {
        let h = object_hash(key, etag);
        end > offset
            && self.pieces_on()
            && self.lock().objects.get(&h).is_some_and(|o| {
                (offset / PIECE..=(end - 1) / PIECE).all(|p| o.pieces.contains_key(&p))
            })
    }

    /// Forget piece `piece` of `h` in the index (its LRU entry is already gone); the file work
    /// that makes the disk agree.
    pub(super) fn unrecord_piece(&self, idx: &mut Index, h: u128, piece: u64) -> Vec<Io> {
        let Some(obj) = idx.objects.get_mut(&h) else {
            return Vec::new();
        };
        // Charged but not yet written: the writer sees its LRU entry gone and undoes it.
        let Some(entry) = obj.pieces.remove(&piece) else {
            return Vec::new();
        };
        if obj.present == 0 && obj.pieces.is_empty() {
            idx.objects.remove(&h);
            return vec![Io::Remove(h)];
        }
        vec![Io::DropPiece {
            h,
            offset: piece * PIECE,
            len: entry.len as u64,
            entry_at: entry_at(piece),
        }]
    }

    /// Block `block` of `h` is now present: forget the pieces inside it (in the index, under
    /// the caller's lock) and return the record writes that clear them on disk.
    pub(super) fn supersede_pieces(&self, idx: &mut Index, h: u128, block: u64) -> Vec<Io> {
        if !self.pieces_on() {
            return Vec::new();
        }
        let per = self.block_size / PIECE;
        let range = block * per..block * per + per;
        let gone: Vec<u64> = match idx.objects.get_mut(&h) {
            Some(o) => {
                let inside: Vec<u64> = o.pieces.range(range.clone()).map(|(p, _)| *p).collect();
                for p in &inside {
                    o.pieces.remove(p);
                }
                inside
            }
            None => return Vec::new(),
        };
        // Charged pieces not yet recorded lose their charge too; `record_piece` then finds
        // the block present and leaves the bytes alone.
        for p in range {
            if let Some(s) = idx.lru.pop(&(h, PIECE_KEY | p)) {
                idx.total -= s;
            }
        }
        match gone.is_empty() {
            true => Vec::new(),
            false => vec![Io::ForgetPieces {
                h,
                entries_at: gone.into_iter().map(entry_at).collect(),
            }],
        }
    }

    /// The pieces recorded inside block `block` of `h` (under the caller's lock).
    pub(super) fn pieces_in_block(&self, idx: &Index, h: u128, block: u64) -> Vec<u64> {
        let per = self.block_size / PIECE;
        match idx.objects.get(&h) {
            Some(o) if self.pieces_on() => o
                .pieces
                .range(block * per..block * per + per)
                .map(|(p, _)| *p)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Clear the records at `entries_at` in the pieces file of `h`.
    pub(super) fn clear_piece_records(&self, h: u128, entries_at: &[u64]) {
        if let Ok(f) = OpenOptions::new().write(true).open(self.pieces_path(h)) {
            for at in entries_at {
                let _ = f.write_all_at(&Entry::default().encode(), *at);
            }
        }
    }

    /// The pieces recorded for version `h` of `size` bytes outside the `present` blocks (at
    /// index load); an unusable pieces file is removed.
    pub(super) fn load_pieces(
        &self,
        h: u128,
        size: u64,
        block_present: impl Fn(u64) -> bool,
    ) -> BTreeMap<u64, Entry> {
        let path = self.pieces_path(h);
        let Ok(buf) = fs::read(&path) else {
            return BTreeMap::new();
        };
        match decode(&buf, size).filter(|_| self.pieces_on()) {
            Some(mut pieces) => {
                pieces.retain(|p, e| {
                    let len = (size - p * PIECE).min(PIECE);
                    e.len as u64 == len && !block_present(p * PIECE / self.block_size)
                });
                pieces
            }
            None => {
                let _ = fs::remove_file(&path);
                BTreeMap::new()
            }
        }
    }
}

/// Fuzz property of pieces files (decoded against the size their header names): no panic, no
/// allocation the file cannot back, and what decodes is exactly the file's non-empty records.
/// Panics when it fails.
#[cfg(any(test, feature = "fuzzing"))]
pub fn fuzz_property(data: &[u8]) {
    let size = data
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    if let Some(found) = decode(data, size) {
        assert_eq!(data.len() as u64, entry_at(size.div_ceil(PIECE)));
        for (i, e) in &found {
            let at = entry_at(*i) as usize;
            assert_eq!(&data[at..at + 8], &e.encode()[..]);
        }
        let records = data[HEADER as usize..].chunks_exact(8);
        assert_eq!(records.filter(|r| r[..4] != [0; 4]).count(), found.len());
    }
}

/// The ranges of `start .. end` not covered by the pieces `kept` (ascending).
pub(super) fn gaps(start: u64, end: u64, kept: &[u64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut at = start;
    for p in kept {
        let (a, z) = (p * PIECE, p * PIECE + PIECE);
        if a > at && at < end {
            out.push((at, a.min(end)));
        }
        at = at.max(z);
    }
    if at < end {
        out.push((at, end));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_files_decode_only_for_their_object() {
        let size = 3 * PIECE + 5;
        let mut buf = header(size).to_vec();
        buf.resize(entry_at(4) as usize, 0);
        let e = Entry::of(b"abc");
        buf[entry_at(2) as usize..entry_at(3) as usize].copy_from_slice(&e.encode());
        let got = decode(&buf, size).unwrap();
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![(2, e)]);
        assert!(decode(&buf, size + PIECE).is_none(), "another size");
        assert!(decode(&buf[..buf.len() - 1], size).is_none(), "truncated");
        let mut other = buf.clone();
        other[0] = b'X';
        assert!(decode(&other, size).is_none(), "bad magic");
    }

    fn samples() -> Vec<Vec<u8>> {
        let size = 3 * PIECE + 5;
        let mut buf = header(size).to_vec();
        buf.resize(entry_at(4) as usize, 0);
        let at = entry_at(1) as usize;
        buf[at..at + 8].copy_from_slice(&Entry::of(b"abc").encode());
        vec![buf, header(0).to_vec()]
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: the block cache's `.pieces` files, as a crash or another process may
        /// leave them (see [`fuzz_property`]).
        #[test]
        fn fuzz_pieces_files(buf in crate::fuzz::bytes(samples())) {
            fuzz_property(&buf);
        }
    }

    #[test]
    fn gaps_leave_out_the_kept_pieces() {
        let p = PIECE;
        assert_eq!(gaps(0, 4 * p, &[]), vec![(0, 4 * p)]);
        assert_eq!(gaps(0, 4 * p, &[0, 2]), vec![(p, 2 * p), (3 * p, 4 * p)]);
        assert_eq!(gaps(4 * p, 8 * p, &[7]), vec![(4 * p, 7 * p)]);
        assert_eq!(gaps(0, 2 * p, &[0, 1]), vec![]);
    }
}
