//! Opening a cache directory: the lock, the layout check, and the index rebuilt from the
//! records present (blocks and pieces), oldest first.

use super::files::{lock_with_patience, private_dir, LOCK_WAIT};
use super::meta::Meta;
use super::{object_hash, pieces, source_id, CacheStats, DiskBlockCache, Index, Obj};
use lru::LruCache;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

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
            let pieces = self.load_pieces(h, meta.size, |b| {
                present.binary_search_by_key(&b, |p| p.0).is_ok()
            });
            if present.is_empty() && pieces.is_empty() {
                self.remove_files(h);
                continue;
            }
            let piece_lens: Vec<(u64, u64)> =
                pieces.iter().map(|(p, e)| (*p, e.len as u64)).collect();
            self.lock().objects.insert(
                h,
                Obj {
                    present: present.len() as u64,
                    meta,
                    pins: 0,
                    pieces,
                    verified: Default::default(),
                },
            );
            for (i, len) in present {
                self.charge(h, i, len);
            }
            for (p, len) in piece_lens {
                self.charge(h, pieces::PIECE_KEY | p, len);
            }
        }
        Ok(())
    }
}
