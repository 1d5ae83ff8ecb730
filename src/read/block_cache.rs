//! The persistent, bounded, block-granular disk cache.
//!
//! Layout: one directory per mounted source (`<cache>/<source id>/`, mode 0700), locked with
//! `flock` for the mount's life so two mounts never write one cache; block files (mode 0600)
//! under `blocks/<2 hex>/<32 hex>`, named by a stable hash of (object key, ETag, block index).
//!
//! Block file: `MAGIC | key_len u32 | etag_len u32 | index u64 | data_len u64 | crc32 u32 |
//! key | etag | data` (little endian). A block is served only when the magic, key, ETag, index,
//! length and CRC-32 of the data all match, so a changed object (new ETag) can never return old
//! bytes, and a corrupt or truncated file is a miss (deleted, then fetched again), never an error.
//!
//! Size limit: the in-memory index (an LRU of file sizes) is charged *before* a file is written
//! and evicts until the total fits, so the bytes on disk never exceed `max_bytes`, also under
//! concurrent fills. The index is rebuilt at open from the files present (oldest first), so the
//! cache survives restarts. Every method does blocking file I/O: call it from a blocking thread.

use lru::LruCache;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

const MAGIC: &[u8; 8] = b"CMBLK001";
const HEADER: usize = 8 + 4 + 4 + 8 + 8 + 4;

/// Counters of one cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Blocks served from disk.
    pub hits: AtomicU64,
    /// Lookups that found nothing usable.
    pub misses: AtomicU64,
    /// Block files that failed validation (and were removed).
    pub corrupt: AtomicU64,
    /// Blocks written.
    pub writes: AtomicU64,
    /// Blocks evicted to stay under the limit.
    pub evictions: AtomicU64,
    /// Blocks that could not be written (disk full, I/O error).
    pub write_errors: AtomicU64,
}

#[derive(Debug)]
struct Index {
    lru: LruCache<u128, u64>,
    total: u64,
}

/// A disk cache of fixed-size blocks of objects.
#[derive(Debug)]
pub struct DiskBlockCache {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    tmp_seq: AtomicU64,
    /// Hit, miss and eviction counters.
    pub stats: CacheStats,
    _lock: nix::fcntl::Flock<File>,
}

/// Stable 128-bit FNV-1a over the parts (file names must not change between builds).
fn block_hash(key: &str, etag: &str, index: u64) -> u128 {
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

/// A stable identifier of a source (for its cache directory name).
pub fn source_id(source: &str) -> String {
    format!("{:032x}", block_hash(source, "", 0))
}

/// Encode one block file.
pub fn encode_block(key: &str, etag: &str, index: u64, data: &[u8]) -> Vec<u8> {
    let mut out = encode_header(key, etag, index, data);
    out.extend_from_slice(data);
    out
}

/// The part of a block file before the data.
fn encode_header(key: &str, etag: &str, index: u64, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + key.len() + etag.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&(etag.len() as u32).to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(etag.as_bytes());
    out
}

/// Decode a block file; `None` unless it is exactly the block asked for, intact.
pub fn decode_block<'a>(buf: &'a [u8], key: &str, etag: &str, index: u64) -> Option<&'a [u8]> {
    let u32_at = |o: usize| {
        buf.get(o..o + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let u64_at = |o: usize| {
        buf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if buf.get(..8)? != MAGIC {
        return None;
    }
    let (klen, elen) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let (idx, dlen, crc) = (u64_at(16)?, u64_at(24)? as usize, u32_at(32)?);
    let k = buf.get(HEADER..HEADER + klen)?;
    let e = buf.get(HEADER + klen..HEADER + klen + elen)?;
    let data = buf.get(HEADER + klen + elen..)?;
    let ok = idx == index && k == key.as_bytes() && e == etag.as_bytes() && data.len() == dlen;
    (ok && crc32fast::hash(data) == crc).then_some(data)
}

impl DiskBlockCache {
    /// Open (creating it 0700) the cache of `source` under `root`, lock it, and index what is
    /// already there. Fails when another mount holds the lock.
    pub fn open(root: &Path, source: &str, max_bytes: u64) -> Result<Self, String> {
        Self::open_waiting(root, source, max_bytes, LOCK_WAIT)
    }

    /// [`DiskBlockCache::open`], waiting at most `wait` for another mount to release the lock.
    pub fn open_waiting(
        root: &Path,
        source: &str,
        max_bytes: u64,
        wait: std::time::Duration,
    ) -> Result<Self, String> {
        let dir = root.join(source_id(source));
        for d in [root, dir.as_path(), dir.join("blocks").as_path()] {
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
        let cache = DiskBlockCache {
            dir,
            max_bytes,
            index: Mutex::new(Index {
                lru: LruCache::unbounded(),
                total: 0,
            }),
            tmp_seq: AtomicU64::new(0),
            stats: CacheStats::default(),
            _lock: lock,
        };
        cache.load_index()?;
        Ok(cache)
    }

    /// The directory of this source's cache.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes currently charged to the cache (never more than the limit).
    pub fn used_bytes(&self) -> u64 {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn path_of(&self, h: u128) -> PathBuf {
        let name = format!("{h:032x}");
        self.dir.join("blocks").join(&name[..2]).join(name)
    }

    /// Index existing block files, oldest first; drop leftovers of interrupted writes.
    fn load_index(&self) -> Result<(), String> {
        let mut found: Vec<(std::time::SystemTime, u128, u64)> = Vec::new();
        let blocks = self.dir.join("blocks");
        let subdirs =
            fs::read_dir(&blocks).map_err(|e| format!("cannot read {}: {e}", blocks.display()))?;
        for sub in subdirs.flatten() {
            let Ok(files) = fs::read_dir(sub.path()) else {
                continue;
            };
            for f in files.flatten() {
                let name = f.file_name().to_string_lossy().into_owned();
                match (u128::from_str_radix(&name, 16), f.metadata()) {
                    (Ok(h), Ok(m)) if name.len() == 32 && m.is_file() => {
                        found.push((m.modified().unwrap_or(std::time::UNIX_EPOCH), h, m.len()))
                    }
                    _ => {
                        let _ = fs::remove_file(f.path());
                    }
                }
            }
        }
        found.sort();
        for (_, h, size) in found {
            self.charge(h, size);
        }
        Ok(())
    }

    /// Add `h` to the index and evict least recently used blocks until the total fits.
    fn charge(&self, h: u128, size: u64) {
        let mut evict = Vec::new();
        {
            let mut idx = self.lock();
            if let Some(old) = idx.lru.put(h, size) {
                idx.total -= old;
            }
            idx.total += size;
            while idx.total > self.max_bytes {
                match idx.lru.pop_lru() {
                    Some((victim, vsize)) => {
                        idx.total -= vsize;
                        evict.push(victim);
                    }
                    None => break,
                }
            }
        }
        for v in evict {
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            let _ = fs::remove_file(self.path_of(v));
        }
    }

    fn forget(&self, h: u128) {
        let mut idx = self.lock();
        if let Some(size) = idx.lru.pop(&h) {
            idx.total -= size;
        }
    }

    /// The data of block `index` of `key` at version `etag`, if cached and intact.
    pub fn get(&self, key: &str, etag: &str, index: u64) -> Option<bytes::Bytes> {
        let h = block_hash(key, etag, index);
        let path = self.path_of(h);
        // One read into a buffer of the file's exact size; the data is then a view into it.
        let read = File::open(&path).and_then(|mut f| {
            let len = f.metadata()?.len() as usize;
            let mut buf = Vec::with_capacity(len);
            f.read_to_end(&mut buf).map(|_| buf)
        });
        let Ok(buf) = read else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let Some(data) = decode_block(&buf, key, etag, index) else {
            tracing::warn!(path = %path.display(), "corrupt cache block removed; it will be fetched again");
            self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            self.forget(h);
            let _ = fs::remove_file(&path);
            return None;
        };
        let start = buf.len() - data.len();
        self.lock().lru.promote(&h);
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some(bytes::Bytes::from(buf).slice(start..))
    }

    /// Store block `index` of `key` at version `etag`. Failures are logged, never fatal.
    pub fn put(&self, key: &str, etag: &str, index: u64, data: &[u8]) {
        let header = encode_header(key, etag, index, data);
        let size = (header.len() + data.len()) as u64;
        if size > self.max_bytes {
            return;
        }
        let h = block_hash(key, etag, index);
        self.charge(h, size);
        let path = self.path_of(h);
        let tmp = self.dir.join(format!(
            "blocks/tmp.{}.{}",
            std::process::id(),
            self.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
                fs::set_permissions(parent, fs::Permissions::from_mode(0o700))?;
            }
            let mut f = OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&header)?;
            f.write_all(data)?;
            fs::rename(&tmp, &path)
        })();
        match written {
            Ok(()) => {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
                // Evicted while being written: the file must not outlive its index entry.
                if !self.lock().lru.contains(&h) {
                    let _ = fs::remove_file(&path);
                }
            }
            Err(e) => {
                // A full or failing disk only costs caching: reads go on. Say it once, not per block.
                if self.stats.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(error = %e, dir = %self.dir.display(), "cannot write a cache block; reads go on uncached (later failures are counted, not logged)");
                } else {
                    tracing::debug!(error = %e, "cannot write a cache block");
                }
                let _ = fs::remove_file(&tmp);
                self.forget(h);
            }
        }
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
