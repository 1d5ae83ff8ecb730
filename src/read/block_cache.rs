//! The persistent, bounded, block-granular disk cache.
//!
//! Layout: one directory per mounted source (`<cache>/<source id>/`, mode 0700), locked with
//! `flock` for the mount's life so two mounts never write one cache. Each cached object
//! *version* (key + ETag) has two files (mode 0600) under `objects/<2 hex>/`, named by a
//! stable hash of (key, ETag): a sparse **data file** of the object's size, with block `i` at
//! offset `i * block_size`, and a **metadata file** (`.meta`, see [`meta`]) holding the length
//! and CRC-32 of each block present. A block is served only when its record is present and the
//! data read back has that length and CRC, so a changed object (new ETag, other files) can never
//! return old bytes, and a corrupt or torn block is a miss (dropped, then fetched again), never
//! an error.
//!
//! Pieces: the 64 KiB pieces random reads fetch are kept as partial blocks, recorded in a third
//! file per version (see [`pieces`]), until their block arrives whole.
//!
//! Whole files: once every block of a version is present, the data file and its record are
//! synced and the record marked *complete*; [`DiskBlockCache::whole_file`] then hands out the
//! data file (for FUSE passthrough, so the kernel reads it directly) and pins the version
//! against eviction until the returned [`Pin`] is dropped.
//!
//! Size limit: the in-memory LRU of blocks is charged *before* a block is written and evicts
//! (punching the block out of its data file) until the total fits, so the bytes cached never
//! exceed `max_bytes`, also under concurrent fills; when only pinned blocks are left, the new
//! block is not cached. The index is rebuilt at open from the records present (oldest first),
//! so the cache survives restarts. Every method does blocking file I/O: call it from a
//! blocking thread.

mod files;
pub mod meta;
mod open;
pub mod pieces;
mod range;

use files::punch_hole;

use lru::LruCache;
use meta::{Entry, Meta};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes charged per block for its record in the metadata file.
const ENTRY_COST: u64 = 8;

/// Counters of one cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Blocks served from disk.
    pub hits: AtomicU64,
    /// Bytes of those blocks.
    pub hit_bytes: AtomicU64,
    /// Lookups that found nothing usable.
    pub misses: AtomicU64,
    /// Blocks that failed validation (and were dropped).
    pub corrupt: AtomicU64,
    /// Blocks written.
    pub writes: AtomicU64,
    /// Blocks evicted to stay under the limit.
    pub evictions: AtomicU64,
    /// Blocks that could not be written (disk full, I/O error).
    pub write_errors: AtomicU64,
    /// Whole data files handed out (FUSE passthrough opens).
    pub whole_files: AtomicU64,
}

/// What the index knows of one cached object version.
#[derive(Debug)]
struct Obj {
    meta: Meta,
    present: u64,
    pins: u32,
    /// Pieces recorded outside present blocks (see [`pieces`]).
    pieces: std::collections::BTreeMap<u64, Entry>,
    /// Blocks whose bytes in the data file are known good in this run: written by it, or read
    /// back whole and checked against their CRC. A part of such a block is read without
    /// reading and checking the whole block (see `range`).
    verified: std::collections::HashSet<u64>,
}

#[derive(Debug)]
struct Index {
    lru: LruCache<(u128, u64), u64>,
    total: u64,
    objects: HashMap<u128, Obj>,
}

/// File work decided under the index lock and done after it is released.
enum Io {
    /// Punch block `index` (at `offset`, `len` bytes) out of the data file and clear its record.
    Drop {
        h: u128,
        offset: u64,
        len: u64,
        entry_at: u64,
        was_complete: bool,
    },
    /// Remove the files of a version with no block or piece left.
    Remove(u128),
    /// Punch piece bytes (at `offset`, `len`) out of the data file and clear its record.
    DropPiece {
        h: u128,
        offset: u64,
        len: u64,
        entry_at: u64,
    },
    /// Clear piece records superseded by a whole block (the bytes stay: they are the block's).
    ForgetPieces { h: u128, entries_at: Vec<u64> },
}

/// A disk cache of fixed-size blocks of objects.
#[derive(Debug)]
pub struct DiskBlockCache {
    dir: PathBuf,
    max_bytes: u64,
    block_size: u64,
    index: Mutex<Index>,
    /// Hit, miss and eviction counters.
    pub stats: CacheStats,
    _lock: nix::fcntl::Flock<File>,
}

/// Keeps one cached version from being evicted while the kernel reads its data file.
#[derive(Debug)]
pub struct Pin {
    cache: Arc<DiskBlockCache>,
    h: u128,
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some(o) = self.cache.lock().objects.get_mut(&self.h) {
            o.pins = o.pins.saturating_sub(1);
        }
    }
}

/// Stable 128-bit FNV-1a over the parts (file names must not change between builds).
fn stable_hash(key: &str, etag: &str, index: u64) -> u128 {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= *b as u128;
            h = h.wrapping_mul(PRIME);
        }
    };
    eat(&(key.len() as u64).to_le_bytes());
    eat(key.as_bytes());
    eat(&(etag.len() as u64).to_le_bytes());
    eat(etag.as_bytes());
    eat(&index.to_le_bytes());
    h
}

/// The hash naming the files of one object version.
pub fn object_hash(key: &str, etag: &str) -> u128 {
    stable_hash(key, etag, u64::MAX)
}

/// A stable identifier of a source (for its cache directory name).
pub fn source_id(source: &str) -> String {
    format!("{:032x}", stable_hash(source, "", 0))
}

impl DiskBlockCache {
    /// The size limit, in bytes.
    pub fn limit(&self) -> u64 {
        self.max_bytes
    }

    /// The directory of this source's cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The block size.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// Object versions pinned by [`DiskBlockCache::whole_file`] users now.
    pub fn pinned_versions(&self) -> usize {
        self.lock().objects.values().filter(|o| o.pins > 0).count()
    }

    /// Bytes currently charged to the cache (never more than the limit).
    pub fn used_bytes(&self) -> u64 {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The data file of version `h` (its record is the same path with `.meta`).
    pub fn data_path(&self, h: u128) -> PathBuf {
        let name = format!("{h:032x}");
        self.dir.join("objects").join(&name[..2]).join(name)
    }

    fn meta_path(&self, h: u128) -> PathBuf {
        self.data_path(h).with_extension("meta")
    }

    /// Add block `i` of `h` to the index and evict least recently used unpinned blocks until
    /// the total fits. Returns false (and charges nothing) when it cannot fit.
    fn charge(&self, h: u128, i: u64, len: u64) -> bool {
        let size = len + ENTRY_COST;
        let mut io = Vec::new();
        let fits = {
            let mut idx = self.lock();
            if let Some(old) = idx.lru.put((h, i), size) {
                idx.total -= old;
            }
            idx.total += size;
            let mut pinned = Vec::new();
            while idx.total > self.max_bytes {
                let Some(((vh, vi), vsize)) = idx.lru.pop_lru() else {
                    break;
                };
                if idx.objects.get(&vh).is_some_and(|o| o.pins > 0) {
                    pinned.push(((vh, vi), vsize));
                    continue;
                }
                idx.total -= vsize;
                if (vh, vi) != (h, i) {
                    self.stats.evictions.fetch_add(1, Ordering::Relaxed);
                }
                io.extend(self.unrecord(&mut idx, vh, vi));
            }
            for (k, v) in pinned.into_iter().rev() {
                idx.lru.push(k, v);
                idx.lru.demote(&k);
            }
            if idx.total > self.max_bytes {
                if let Some(s) = idx.lru.pop(&(h, i)) {
                    idx.total -= s;
                }
            }
            idx.lru.contains(&(h, i))
        };
        self.do_io(io);
        fits
    }

    /// Forget block `i` of `h` in the index (the LRU entry is already gone); returns the file
    /// work that makes the disk agree.
    fn unrecord(&self, idx: &mut Index, h: u128, i: u64) -> Vec<Io> {
        if i & pieces::PIECE_KEY != 0 {
            return self.unrecord_piece(idx, h, i & !pieces::PIECE_KEY);
        }
        let Some(obj) = idx.objects.get_mut(&h) else {
            return Vec::new();
        };
        let Some(entry) = obj.meta.entries.get_mut(i as usize) else {
            return Vec::new();
        };
        if !entry.present() {
            // Charged but not yet written: the writer sees its LRU entry gone and undoes it.
            return Vec::new();
        }
        let len = entry.len as u64;
        *entry = Entry::default();
        obj.present -= 1;
        obj.verified.remove(&i);
        let was_complete = std::mem::take(&mut obj.meta.complete);
        if obj.present == 0 && obj.pieces.is_empty() {
            idx.objects.remove(&h);
            return vec![Io::Remove(h)];
        }
        vec![Io::Drop {
            h,
            offset: i * self.block_size,
            len,
            entry_at: obj.meta.entry_offset(i),
            was_complete,
        }]
    }

    fn do_io(&self, io: Vec<Io>) {
        for op in io {
            match op {
                Io::Drop {
                    h,
                    offset,
                    len,
                    entry_at,
                    was_complete,
                } => {
                    if let Ok(f) = OpenOptions::new().write(true).open(self.data_path(h)) {
                        punch_hole(&f, offset, len);
                    }
                    if let Ok(m) = OpenOptions::new().write(true).open(self.meta_path(h)) {
                        let _ = m.write_all_at(&Entry::default().encode(), entry_at);
                        if was_complete {
                            let _ = m.write_all_at(&[0], meta::COMPLETE_OFFSET);
                        }
                    }
                }
                Io::Remove(h) => self.remove_files(h),
                Io::DropPiece {
                    h,
                    offset,
                    len,
                    entry_at,
                } => {
                    if let Ok(f) = OpenOptions::new().write(true).open(self.data_path(h)) {
                        punch_hole(&f, offset, len);
                    }
                    self.clear_piece_records(h, &[entry_at]);
                }
                Io::ForgetPieces { h, entries_at } => self.clear_piece_records(h, &entries_at),
            }
        }
    }

    fn remove_files(&self, h: u128) {
        let _ = fs::remove_file(self.meta_path(h));
        let _ = fs::remove_file(self.pieces_path(h));
        let _ = fs::remove_file(self.data_path(h));
    }

    /// The data of block `index` of `key` at version `etag`, if cached and intact.
    pub fn get(&self, key: &str, etag: &str, index: u64) -> Option<bytes::Bytes> {
        let h = object_hash(key, etag);
        let entry = {
            let mut idx = self.lock();
            let entry = idx
                .objects
                .get(&h)
                .and_then(|o| o.meta.entries.get(index as usize).copied())
                .filter(Entry::present);
            if entry.is_some() {
                idx.lru.promote(&(h, index));
            }
            entry
        };
        let Some(entry) = entry else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let mut buf = vec![0u8; entry.len as usize];
        let read = File::open(self.data_path(h))
            .and_then(|f| f.read_exact_at(&mut buf, index * self.block_size));
        if read.is_err() || !entry.verifies(&buf) {
            tracing::warn!(
                key,
                index,
                "corrupt cache block dropped; it will be fetched again"
            );
            self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            let io = {
                let mut idx = self.lock();
                match idx.lru.pop(&(h, index)) {
                    Some(size) => {
                        idx.total -= size;
                        self.unrecord(&mut idx, h, index)
                    }
                    None => Vec::new(),
                }
            };
            self.do_io(io);
            return None;
        }
        if let Some(o) = self.lock().objects.get_mut(&h) {
            if o.meta.entries.get(index as usize) == Some(&entry) {
                o.verified.insert(index);
            }
        }
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .hit_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Some(bytes::Bytes::from(buf))
    }

    /// Store block `index` of `key` at version `etag` of an object of `size` bytes. Failures are
    /// logged, never fatal.
    pub fn put(&self, key: &str, etag: &str, size: u64, index: u64, data: &[u8]) {
        let _ = self.store(key, etag, size, index, data);
    }

    /// [`DiskBlockCache::put`], telling the caller when the block could not be written (disk
    /// full, I/O error; also logged). A block not kept for other reasons (already there, the
    /// cache full of pinned files) is `Ok`.
    pub fn store(
        &self,
        key: &str,
        etag: &str,
        size: u64,
        index: u64,
        data: &[u8],
    ) -> Result<(), String> {
        let h = object_hash(key, etag);
        let start = index * self.block_size;
        let expected = size.saturating_sub(start).min(self.block_size);
        if data.is_empty() || data.len() as u64 != expected {
            return Ok(());
        }
        // Some(true): nothing to do (present, or a record of another size for this version).
        let known = self.lock().objects.get(&h).map(|o| {
            o.meta.size != size
                || o.meta
                    .entries
                    .get(index as usize)
                    .is_some_and(Entry::present)
        });
        match known {
            Some(true) => return Ok(()),
            Some(false) => {}
            None => self.create_object(h, key, etag, size)?,
        }
        if self.charge_and_write(h, index, index * self.block_size, data)? {
            self.record(h, index, Entry::of(data));
        }
        Ok(())
    }

    /// Charge `lru_key` (a block, or a piece with [`pieces::PIECE_KEY`]) of version `h` and
    /// write `data` at `offset` of its data file. `Ok(false)`: not kept (it cannot fit); on a
    /// write error (logged) the charge is returned.
    fn charge_and_write(
        &self,
        h: u128,
        lru_key: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<bool, String> {
        if !self.charge(h, lru_key, data.len() as u64) {
            return Ok(false);
        }
        let written = OpenOptions::new()
            .write(true)
            .open(self.data_path(h))
            .and_then(|f| f.write_all_at(data, offset));
        if let Err(e) = written {
            self.write_failed(&e.to_string());
            let mut idx = self.lock();
            if let Some(s) = idx.lru.pop(&(h, lru_key)) {
                idx.total -= s;
            }
            return Err(e.to_string());
        }
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Record a written block (unless it was evicted meanwhile) and complete the version when
    /// it was the last one missing.
    fn record(&self, h: u128, index: u64, entry: Entry) {
        let (entry_at, now_complete, undo, io) = {
            let mut idx = self.lock();
            let charged = idx.lru.contains(&(h, index));
            match idx.objects.get_mut(&h) {
                Some(o) if charged && (index as usize) < o.meta.entries.len() => {
                    let slot = &mut o.meta.entries[index as usize];
                    if !slot.present() {
                        *slot = entry;
                        o.present += 1;
                    }
                    o.verified.insert(index);
                    let all = o.present == o.meta.entries.len() as u64;
                    let at = (o.meta.entry_offset(index), all && !o.meta.complete);
                    (at.0, at.1, None, self.supersede_pieces(&mut idx, h, index))
                }
                // Evicted while being written: the bytes must not outlive their index entry,
                // except those of pieces recorded inside the block.
                _ => (
                    0,
                    false,
                    Some(self.pieces_in_block(&idx, h, index)),
                    Vec::new(),
                ),
            }
        };
        if let Some(kept) = undo {
            if let Ok(f) = OpenOptions::new().write(true).open(self.data_path(h)) {
                let start = index * self.block_size;
                for (a, z) in pieces::gaps(start, start + entry.len as u64, &kept) {
                    punch_hole(&f, a, z - a);
                }
            }
            return;
        }
        self.do_io(io);
        let Ok(m) = OpenOptions::new().write(true).open(self.meta_path(h)) else {
            return;
        };
        let _ = m.write_all_at(&entry.encode(), entry_at);
        if now_complete {
            self.complete(h, &m);
        }
    }

    /// Sync a version whose blocks are all present and mark it complete.
    fn complete(&self, h: u128, meta_file: &File) {
        let synced = File::open(self.data_path(h))
            .and_then(|d| d.sync_data())
            .and_then(|_| meta_file.sync_data());
        if synced.is_err() {
            return;
        }
        let mut idx = self.lock();
        if let Some(o) = idx.objects.get_mut(&h) {
            if o.present == o.meta.entries.len() as u64
                && meta_file.write_all_at(&[1], meta::COMPLETE_OFFSET).is_ok()
            {
                o.meta.complete = true;
            }
        }
    }

    fn create_object(&self, h: u128, key: &str, etag: &str, size: u64) -> Result<(), String> {
        let mut idx = self.lock();
        if idx.objects.contains_key(&h) {
            return Ok(());
        }
        let meta = Meta::new(key, etag, size, self.block_size as u32);
        let data = self.data_path(h);
        (|| -> std::io::Result<()> {
            if let Some(parent) = data.parent() {
                fs::create_dir_all(parent)?;
                fs::set_permissions(parent, fs::Permissions::from_mode(0o700))?;
            }
            let open = |p: &Path| {
                OpenOptions::new()
                    .create(true)
                    .truncate(true)
                    .write(true)
                    .mode(0o600)
                    .open(p)
            };
            open(&data)?.set_len(size)?;
            open(&self.meta_path(h))?.write_all(&meta.encode())
        })()
        .map_err(|e| {
            self.remove_files(h);
            self.write_failed(&e.to_string());
            e.to_string()
        })?;
        idx.objects.insert(
            h,
            Obj {
                meta,
                present: 0,
                pins: 0,
                pieces: Default::default(),
                verified: Default::default(),
            },
        );
        Ok(())
    }

    fn write_failed(&self, e: &str) {
        // A full or failing disk only costs caching: reads go on. Say it once, not per block.
        if self.stats.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot write a cache block; reads go on uncached (later failures are counted, not logged)");
        } else {
            tracing::debug!(error = %e, "cannot write a cache block");
        }
    }

    /// The whole data file of `key` at version `etag` when every block is cached and synced,
    /// opened read-only, with a pin that keeps it from eviction until dropped.
    pub fn whole_file(self: &Arc<Self>, key: &str, etag: &str, size: u64) -> Option<(File, Pin)> {
        let h = object_hash(key, etag);
        {
            let mut idx = self.lock();
            let obj = idx.objects.get_mut(&h)?;
            if !obj.meta.complete || obj.meta.size != size {
                return None;
            }
            obj.pins += 1;
        }
        let pin = Pin {
            cache: self.clone(),
            h,
        };
        let file = File::open(self.data_path(h)).ok()?;
        {
            let mut idx = self.lock();
            for i in 0..size.div_ceil(self.block_size) {
                idx.lru.promote(&(h, i));
            }
        }
        self.stats.whole_files.fetch_add(1, Ordering::Relaxed);
        Some((file, pin))
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod pieces_tests;
