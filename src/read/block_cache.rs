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

pub mod meta;
mod range;

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
    /// Remove both files of a version with no block left.
    Remove(u128),
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
    /// Open (creating it 0700) the cache of `source` under `root`, with blocks of `block_size`
    /// bytes, lock it, and index what is already there. Fails when another mount holds the lock.
    pub fn open(
        root: &Path,
        source: &str,
        max_bytes: u64,
        block_size: u64,
    ) -> Result<Self, String> {
        Self::open_waiting(root, source, max_bytes, block_size, LOCK_WAIT)
    }

    /// [`DiskBlockCache::open`], waiting at most `wait` for another mount to release the lock.
    pub fn open_waiting(
        root: &Path,
        source: &str,
        max_bytes: u64,
        block_size: u64,
        wait: std::time::Duration,
    ) -> Result<Self, String> {
        let dir = root.join(source_id(source));
        for d in [root, dir.as_path(), dir.join("objects").as_path()] {
            private_dir(d)?;
        }
        let lock_path = dir.join("lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        let lock = lock_with_patience(lock_file, wait).map_err(|_| {
            format!(
                "cache directory {} is in use by another cloudmount mount of {source}; \
                 give this mount its own with -o cache=DIR (or -o cache=off)",
                dir.display()
            )
        })?;
        OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(dir.join("source"))
            .and_then(|mut f| f.write_all(source.as_bytes()))
            .map_err(|e| format!("cannot write in {}: {e}", dir.display()))?;
        // The one-file-per-block layout of earlier versions is not read any more.
        if dir.join("blocks").exists() {
            tracing::info!(dir = %dir.display(), "removing a cache of an older format");
            let _ = fs::remove_dir_all(dir.join("blocks"));
        }
        let cache = DiskBlockCache {
            dir,
            max_bytes,
            block_size: block_size.clamp(4096, u32::MAX as u64),
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                total: 0,
                objects: HashMap::new(),
            }),
            stats: CacheStats::default(),
            _lock: lock,
        };
        cache.load_index()?;
        Ok(cache)
    }

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

    /// Index the records present, oldest first; drop files without a usable record.
    fn load_index(&self) -> Result<(), String> {
        let mut found: Vec<(std::time::SystemTime, u128, Meta)> = Vec::new();
        let objects = self.dir.join("objects");
        let subdirs = fs::read_dir(&objects)
            .map_err(|e| format!("cannot read {}: {e}", objects.display()))?;
        for sub in subdirs.flatten() {
            let Ok(files) = fs::read_dir(sub.path()) else {
                continue;
            };
            let mut datas = Vec::new();
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(".meta") else {
                    datas.push(f.path());
                    continue;
                };
                let h = u128::from_str_radix(stem, 16)
                    .ok()
                    .filter(|_| stem.len() == 32);
                let meta = fs::read(f.path()).ok().and_then(|b| Meta::decode(&b));
                let data_ok = |m: &Meta| {
                    fs::metadata(f.path().with_extension(""))
                        .is_ok_and(|d| d.is_file() && d.len() == m.size)
                };
                match (h, meta) {
                    (Some(h), Some(m))
                        if m.block_size as u64 == self.block_size
                            && object_hash(&m.key, &m.etag) == h
                            && data_ok(&m) =>
                    {
                        let age = f.metadata().and_then(|m| m.modified());
                        found.push((age.unwrap_or(std::time::UNIX_EPOCH), h, m));
                    }
                    _ => {
                        let _ = fs::remove_file(f.path());
                    }
                }
            }
            // Data files whose record is gone are leftovers.
            for d in datas {
                if !d.with_extension("meta").exists() {
                    let _ = fs::remove_file(d);
                }
            }
        }
        found.sort_by_key(|(age, h, _)| (*age, *h));
        for (_, h, meta) in found {
            let present: Vec<(u64, u64)> = (0..)
                .zip(&meta.entries)
                .filter(|(_, e)| e.present())
                .map(|(i, e)| (i, e.len as u64))
                .collect();
            if present.is_empty() {
                self.remove_files(h);
                continue;
            }
            self.lock().objects.insert(
                h,
                Obj {
                    present: present.len() as u64,
                    meta,
                    pins: 0,
                },
            );
            for (i, len) in present {
                self.charge(h, i, len);
            }
        }
        Ok(())
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
        let was_complete = std::mem::take(&mut obj.meta.complete);
        if obj.present == 0 {
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
            }
        }
    }

    fn remove_files(&self, h: u128) {
        let _ = fs::remove_file(self.meta_path(h));
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
            None => {
                if let Err(e) = self.create_object(h, key, etag, size) {
                    self.write_failed(&e);
                    return Err(e);
                }
            }
        }
        if !self.charge(h, index, data.len() as u64) {
            return Ok(());
        }
        let written = OpenOptions::new()
            .write(true)
            .open(self.data_path(h))
            .and_then(|f| f.write_all_at(data, index * self.block_size));
        if let Err(e) = written {
            self.write_failed(&e.to_string());
            let mut idx = self.lock();
            if let Some(s) = idx.lru.pop(&(h, index)) {
                idx.total -= s;
            }
            return Err(e.to_string());
        }
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        self.record(h, index, Entry::of(data));
        Ok(())
    }

    /// Record a written block (unless it was evicted meanwhile) and complete the version when
    /// it was the last one missing.
    fn record(&self, h: u128, index: u64, entry: Entry) {
        let (entry_at, now_complete, undo) = {
            let mut idx = self.lock();
            let charged = idx.lru.contains(&(h, index));
            match idx.objects.get_mut(&h) {
                Some(o) if charged && (index as usize) < o.meta.entries.len() => {
                    let slot = &mut o.meta.entries[index as usize];
                    if !slot.present() {
                        *slot = entry;
                        o.present += 1;
                    }
                    let all = o.present == o.meta.entries.len() as u64;
                    (o.meta.entry_offset(index), all && !o.meta.complete, false)
                }
                _ => (0, false, true),
            }
        };
        if undo {
            // Evicted while being written: the bytes must not outlive their index entry.
            if let Ok(f) = OpenOptions::new().write(true).open(self.data_path(h)) {
                punch_hole(&f, index * self.block_size, entry.len as u64);
            }
            return;
        }
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
            e.to_string()
        })?;
        idx.objects.insert(
            h,
            Obj {
                meta,
                present: 0,
                pins: 0,
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

/// Free the disk space of `len` bytes at `offset` (the file keeps its size).
fn punch_hole(f: &File, offset: u64, len: u64) {
    use nix::fcntl::{fallocate, FallocateFlags};
    let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    if fallocate(f, flags, offset as i64, len as i64).is_err() {
        // Filesystems without hole punching: overwrite with zeros (the record is gone anyway).
        let _ = f.write_all_at(&vec![0u8; len as usize], offset);
    }
}

/// How long `open` waits for the lock: a daemon that was just unmounted still finishes its
/// cache writes before it exits, and an immediate remount should wait for it, not fail.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `flock` the file exclusively, retrying for up to `wait`.
fn lock_with_patience(
    mut file: File,
    wait: std::time::Duration,
) -> Result<nix::fcntl::Flock<File>, File> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, _)) if std::time::Instant::now() < deadline => {
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err((f, _)) => return Err(f),
        }
    }
}

/// Create `d` with mode 0700, or tighten an existing one that others could enter.
fn private_dir(d: &Path) -> Result<(), String> {
    match fs::metadata(d) {
        Ok(m) if !m.is_dir() => Err(format!(
            "cache path {} exists and is not a directory",
            d.display()
        )),
        Ok(m) => {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(dir = %d.display(), "cache directory was open to other users; set to 0700");
                fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(|e| {
                    format!(
                        "cache directory {} is open to other users and cannot be fixed: {e}",
                        d.display()
                    )
                })?;
            }
            Ok(())
        }
        Err(_) => {
            fs::create_dir_all(d).map_err(|e| {
                format!(
                    "cannot create cache directory {}: {e}; choose another with -o cache=DIR \
                     or mount without a disk cache with -o cache=off",
                    d.display()
                )
            })?;
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot set 0700 on {}: {e}", d.display()))
        }
    }
}

#[cfg(test)]
mod tests;
