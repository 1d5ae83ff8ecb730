//! The metadata file of one cached object version (pure encode/decode, no I/O).
//!
//! Layout (little endian): `MAGIC[8] | complete u8 | 0u8 * 3 | block_size u32 | size u64 |
//! key_len u32 | etag_len u32 | key | etag | entries`, one 8-byte entry per block:
//! `len u32 | crc32 u32`, where `len == 0` means the block is absent. Entry `i` lives at
//! [`Meta::entry_offset`]`(i)`, so a block is recorded with one 8-byte write.
//!
//! `complete` is set only after every block is present and the data file and this file were
//! synced to disk: such a data file may be handed to the kernel whole (FUSE passthrough).

/// File magic (format version 2 of the cache; version 1 kept one file per block).
pub const MAGIC: &[u8; 8] = b"CMOBJ002";
/// Byte offset of the `complete` flag.
pub const COMPLETE_OFFSET: u64 = 8;
const FIXED: usize = 8 + 4 + 4 + 8 + 4 + 4;

/// One block's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Entry {
    /// Data length; 0 when the block is absent.
    pub len: u32,
    /// CRC-32 of the data.
    pub crc: u32,
}

impl Entry {
    /// The record of `data`.
    pub fn of(data: &[u8]) -> Entry {
        Entry {
            len: data.len() as u32,
            crc: crc32fast::hash(data),
        }
    }

    /// Whether the block is present.
    pub fn present(&self) -> bool {
        self.len > 0
    }

    /// Whether `data` is exactly this block, intact.
    pub fn verifies(&self, data: &[u8]) -> bool {
        self.present() && data.len() == self.len as usize && crc32fast::hash(data) == self.crc
    }

    /// The 8 bytes stored for this entry.
    pub fn encode(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[..4].copy_from_slice(&self.len.to_le_bytes());
        b[4..].copy_from_slice(&self.crc.to_le_bytes());
        b
    }
}

/// The decoded metadata of one object version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// Object key.
    pub key: String,
    /// ETag of the version.
    pub etag: String,
    /// Object size.
    pub size: u64,
    /// Block size the data file is laid out with.
    pub block_size: u32,
    /// Every block present and synced.
    pub complete: bool,
    /// One entry per block.
    pub entries: Vec<Entry>,
}

impl Meta {
    /// A new, empty record.
    pub fn new(key: &str, etag: &str, size: u64, block_size: u32) -> Meta {
        let n = size.div_ceil(block_size.max(1) as u64) as usize;
        Meta {
            key: key.to_string(),
            etag: etag.to_string(),
            size,
            block_size,
            complete: false,
            entries: vec![Entry::default(); n],
        }
    }

    /// Offset of entry `index` in the file.
    pub fn entry_offset(&self, index: u64) -> u64 {
        (FIXED + self.key.len() + self.etag.len()) as u64 + index * 8
    }

    /// The whole file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(FIXED + self.key.len() + self.etag.len() + 8 * self.entries.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[self.complete as u8, 0, 0, 0]);
        out.extend_from_slice(&self.block_size.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.extend_from_slice(&(self.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.etag.len() as u32).to_le_bytes());
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(self.etag.as_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.encode());
        }
        out
    }

    /// Decode a file; `None` when it is not a well-formed record.
    pub fn decode(buf: &[u8]) -> Option<Meta> {
        let u32_at = |o: usize| {
            buf.get(o..o + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        if buf.get(..8)? != MAGIC {
            return None;
        }
        // Only 0 or 1, then three zero bytes: anything else is damage, not a flag.
        let complete = match buf.get(8..12)? {
            [0, 0, 0, 0] => false,
            [1, 0, 0, 0] => true,
            _ => return None,
        };
        let block_size = u32_at(12)?;
        let size = u64::from_le_bytes(buf.get(16..24)?.try_into().ok()?);
        let (klen, elen) = (u32_at(24)? as usize, u32_at(28)? as usize);
        let key = std::str::from_utf8(buf.get(FIXED..FIXED.checked_add(klen)?)?).ok()?;
        let etag_end = FIXED.checked_add(klen)?.checked_add(elen)?;
        let etag = std::str::from_utf8(buf.get(FIXED + klen..etag_end)?).ok()?;
        if block_size == 0 {
            return None;
        }
        // The entries the size calls for must all be in the file before any is allocated:
        // a damaged size must not ask for a huge vector.
        let n = size.div_ceil(u64::from(block_size));
        let base = etag_end;
        let want = u64::try_from(base).ok()?.checked_add(n.checked_mul(8)?)?;
        if buf.len() as u64 != want {
            return None;
        }
        let mut meta = Meta::new(key, etag, size, block_size);
        for (i, e) in meta.entries.iter_mut().enumerate() {
            let o = base + 8 * i;
            *e = Entry {
                len: u32_at(o)?,
                crc: u32_at(o + 4)?,
            };
        }
        meta.complete = complete;
        Some(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_entry_offsets() {
        let mut m = Meta::new("a/b.jpg", "\"e\"", 2_500, 1_000);
        assert_eq!(m.entries.len(), 3);
        m.entries[1] = Entry::of(b"xyz");
        m.complete = true;
        let bytes = m.encode();
        assert_eq!(Meta::decode(&bytes), Some(m.clone()));
        let o = m.entry_offset(1) as usize;
        assert_eq!(&bytes[o..o + 8], &Entry::of(b"xyz").encode());
        assert_eq!(bytes[COMPLETE_OFFSET as usize], 1);
    }

    #[test]
    fn malformed_files_are_rejected() {
        let bytes = Meta::new("k", "e", 10, 4).encode();
        assert!(
            Meta::decode(&bytes[..bytes.len() - 1]).is_none(),
            "truncated"
        );
        assert!(Meta::decode(b"CMBLK001").is_none(), "old format");
        assert!(Meta::decode(b"").is_none());
    }

    #[test]
    fn entries_verify_length_and_checksum() {
        let e = Entry::of(b"data");
        assert!(e.verifies(b"data"));
        assert!(!e.verifies(b"dat"));
        assert!(!e.verifies(b"datA"));
        assert!(!Entry::default().verifies(b""));
    }

    #[test]
    fn a_damaged_size_is_refused_without_allocating() {
        let mut m = Meta::new("k", "e", 10, 1).encode();
        m[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Meta::decode(&m).is_none());
        m[12..16].copy_from_slice(&1u32.to_le_bytes());
        m[16..24].copy_from_slice(&(u64::MAX / 4).to_le_bytes());
        assert!(Meta::decode(&m).is_none());
    }

    fn samples() -> Vec<Vec<u8>> {
        let mut m = Meta::new("a/b.jpg", "\"e\"", 2_500, 1_000);
        m.entries[1] = Entry::of(b"xyz");
        vec![m.encode(), Meta::new("", "", 0, 4096).encode()]
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: the block cache's `.meta` files, as a crash or another process may
        /// leave them. Decoding never panics, never allocates for entries the file does not
        /// hold, and what decodes encodes to the same bytes.
        #[test]
        fn fuzz_meta_files(buf in crate::fuzz::bytes(samples())) {
            if let Some(m) = Meta::decode(&buf) {
                proptest::prop_assert_eq!(m.encode(), buf);
            }
        }
    }
}
