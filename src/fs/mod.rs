//! The filesystem core: what every FUSE operation means for an object store, with no `fuser`
//! types, so it is testable with [`crate::backend::memory::MemoryBackend`] and no kernel.
//!
//! Owns: the inode table ([`inode`]), open file and directory handles, the metadata TTLs, the
//! negative-lookup cache ([`negative`]) and the listing cache ([`dir_cache`]).
//! Never: holds a `std` lock across an `.await`, or lists a whole directory to answer a lookup
//! when a HEAD and a one-key LIST can.
//!
//! Lookup order: a fresh inode → the negative cache → a fresh cached listing of the parent →
//! the store (HEAD `key` and LIST `key/` at once; the directory wins a name clash and the file
//! stays reachable as `name` + `conflict_suffix`).

pub mod attr;
mod bursts;
mod changes;
pub mod dir_cache;
mod dir_handle;
mod dir_times;
mod error;
mod file_handle;
pub mod inode;
mod kernel_writes;
mod lifecycle;
pub mod listing;
mod lookup;
mod namespace;
pub mod negative;
mod offline;
mod report;
mod sessions;
mod special;
mod upload;
mod warm;
mod write_ops;
pub mod xattr;

pub use attr::{Attr, Entry, Kind, Stat};
pub use error::{FsError, FsResult};
pub use lifecycle::FsStats;
pub use write_ops::Access;

use crate::backend::{Backend, BackendError, Connectivity, Guarded};
use crate::config::MountConfig;
use crate::metrics::Metrics;
use crate::read::{
    BlockSource, DiskBlockCache, MemoryBudget, ObjectRef, Pin, PrefetchConfig, Prefetcher,
};
use crate::write::StagingArea;
use attr::AttrPolicy;
use bytes::Bytes;
use dir_cache::DirCache;
use dir_handle::DirHandle;
use file_handle::FileHandle;
use inode::{InodeTable, Node, ROOT_INO};
use listing::{ListRules, Listed};
use negative::NegativeCache;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Longest object key S3 accepts, in bytes.
const MAX_KEY_LEN: usize = 1024;

/// `ENAMETOOLONG` for a name or a key a store cannot take.
fn check_name(dir_key: &str, name: &str, name_max: usize) -> FsResult<()> {
    if name.len() > name_max || dir_key.len() + name.len() > MAX_KEY_LEN {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

/// `statfs` answers: object stores have no capacity, so report a large, fixed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Blocks available to unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Longest name.
    pub namelen: u32,
}

/// The answer to `open`.
#[derive(Debug)]
pub struct Opened {
    /// The handle number.
    pub fh: u64,
    /// The kernel may keep its cached pages of this file (same ETag as the last open).
    pub keep_cache: bool,
    /// The object's complete cache file, when passthrough is on and the whole version is
    /// cached: the kernel may read it directly. Keeps the version from eviction while held.
    pub whole: Option<WholeFile>,
    /// The version (ETag) a read handle reads; `None` for write handles.
    pub version: Option<String>,
    /// The kernel must send every read to the daemon, past the size it knows too (a file
    /// whose size is unknown until read).
    pub direct_io: bool,
    /// For a write handle: its session's staging file, for the kernel to write directly
    /// (FUSE passthrough).
    pub staging: Option<StagingOffer>,
}

/// A write session's staging file, offered to the kernel to write directly.
#[derive(Debug)]
pub struct StagingOffer {
    /// The staging file (the same one for every handle of the session).
    pub file: Arc<std::fs::File>,
    /// The mount allows kernel writes and this open alone starts the content empty, so the
    /// kernel may start writing the file, after [`CloudFs::write_by_kernel`] (which must come
    /// before the open is answered). Otherwise it may only join where the kernel writes it.
    pub fresh: bool,
}

/// A cached object version as one local file, pinned in the cache while this value lives.
#[derive(Debug)]
pub struct WholeFile {
    /// The data file, opened read-only.
    pub file: std::fs::File,
    _pin: Pin,
}

impl WholeFile {
    /// `file`, kept in the cache by `pin`.
    pub fn new(file: std::fs::File, pin: Pin) -> Self {
        WholeFile { file, _pin: pin }
    }
}

/// Receives directory entries for one `readdir` reply.
pub trait DirReplier: Send {
    /// Add an entry whose next offset is `offset`; returns `true` when the reply is full (the
    /// entry was not added).
    fn add(&mut self, name: &str, attr: &Attr, offset: u64) -> bool;
}

/// Settings the core needs, derived from [`MountConfig`].
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Metadata TTL (and the kernel's attribute TTL).
    pub attr_timeout: Duration,
    /// The kernel's entry TTL.
    pub entry_timeout: Duration,
    /// See [`MountConfig::conflict_suffix`], [`MountConfig::list_page_size`] and
    /// [`MountConfig::meta_probe_size`].
    pub listing: ListRules,
    /// Read-ahead tuning.
    pub prefetch: PrefetchConfig,
    /// See [`MountConfig::passthrough`].
    pub passthrough: bool,
    /// Both [`MountConfig::passthrough`] and [`MountConfig::write_passthrough`].
    pub write_passthrough: bool,
    /// See [`MountConfig::read_only`].
    pub read_only: bool,
    /// See [`MountConfig::upload_part_size`].
    pub upload_part_size: u64,
    /// See [`MountConfig::stream_staging_max`].
    pub stream_staging_max: u64,
    /// See [`MountConfig::rename_dir_limit`].
    pub rename_dir_limit: usize,
    /// See [`MountConfig::upload_unclosed`].
    pub upload_unclosed: bool,
    /// See [`MountConfig::max_open_writes`].
    pub max_open_writes: usize,
    /// See [`MountConfig::offline`].
    pub offline: bool,
    /// See [`MountConfig::xattr`].
    pub xattr: bool,
    /// See [`MountConfig::acl`].
    pub acl: bool,
}

impl From<&MountConfig> for CoreConfig {
    fn from(c: &MountConfig) -> Self {
        CoreConfig {
            attr_timeout: c.attr_timeout,
            entry_timeout: c.entry_timeout,
            listing: ListRules {
                suffix: c.conflict_suffix.clone(),
                page_size: c.list_page_size,
                probe_max: c.meta_probe_size,
                name_max: c.name_max,
            },
            prefetch: PrefetchConfig {
                max_window: c.read_ahead_max,
                part_size: c.part_size,
                ..PrefetchConfig::default()
            },
            passthrough: c.passthrough,
            write_passthrough: c.passthrough && c.write_passthrough,
            read_only: c.read_only,
            upload_part_size: c.upload_part_size,
            rename_dir_limit: c.rename_dir_limit,
            upload_unclosed: c.upload_unclosed,
            stream_staging_max: c.stream_staging_max,
            max_open_writes: c.max_open_writes,
            offline: c.offline,
            xattr: c.xattr,
            acl: c.acl,
        }
    }
}

/// The filesystem of one mount.
#[derive(Debug)]
pub struct CloudFs {
    /// Every request goes through `guard`, which reports to `conn`.
    backend: Arc<dyn Backend>,
    guard: Arc<Guarded>,
    conn: Arc<Connectivity>,
    /// Journal records of an earlier run not replayed because the store did not answer.
    unsent_records: Mutex<Vec<crate::write::Pending>>,
    blocks: Arc<BlockSource>,
    budget: Arc<MemoryBudget>,
    cfg: CoreConfig,
    policy: AttrPolicy,
    inodes: InodeTable,
    negative: NegativeCache,
    /// Directories whose times are to be written onto their markers.
    dirty_dirs: dir_times::DirtyDirs,
    dirs: DirCache,
    /// Lookups per directory, to answer a burst of them with one listing.
    bursts: bursts::LookupBursts,
    /// Lock order: `files` and `dir_handles` are never held together, nor with `inodes`.
    files: Mutex<HashMap<u64, Arc<FileHandle>>>,
    dir_handles: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<DirHandle>>>>,
    next_fh: AtomicU64,
    mounted_at: SystemTime,
    /// Where written data is staged; `None` makes the mount read-only.
    staging: Option<StagingArea>,
    /// Staging files may be offered to the kernel to write (see `write::kernel`).
    kernel_writes: bool,
    /// Inodes open for writing: one write session each.
    sessions: sessions::Sessions,
    /// Uploads in flight and errors, for `cloudmount status`.
    activity: lifecycle::Activity,
    /// Counters of requests, operations and errors (`-o metrics=`, `cloudmount stats`).
    metrics: Arc<Metrics>,
}

impl CloudFs {
    /// A filesystem over `backend` with the options of `mount`, without a disk cache.
    pub fn new(backend: Arc<dyn Backend>, mount: &MountConfig) -> Self {
        Self::with_cache(backend, mount, None)
    }

    /// A filesystem over `backend` whose blocks are cached in `cache`.
    pub fn with_cache(
        backend: Arc<dyn Backend>,
        mount: &MountConfig,
        cache: Option<Arc<DiskBlockCache>>,
    ) -> Self {
        let now = SystemTime::now();
        let staging = staging_area(cache.as_deref());
        let kernel_writes = mount.passthrough
            && mount.write_passthrough
            && staging.as_ref().is_some_and(|a| {
                let why = crate::write::kernel::supported(a.dir());
                if let Some(why) = &why {
                    tracing::info!(reason = %why, "writes go through the daemon (no write passthrough)");
                }
                why.is_none()
            });
        let conn = Connectivity::new(mount.offline);
        let metrics = Metrics::new();
        let guard = Arc::new(Guarded::new(backend, conn.clone(), metrics.clone()));
        let backend: Arc<dyn Backend> = guard.clone();
        CloudFs {
            guard,
            conn,
            unsent_records: Mutex::new(Vec::new()),
            blocks: BlockSource::new(backend.clone(), cache, mount.cache_block_size),
            budget: MemoryBudget::new(mount.max_memory),
            backend,
            cfg: CoreConfig::from(mount),
            policy: AttrPolicy::new(mount),
            inodes: InodeTable::new(Stat {
                size_unknown: false,
                size: 0,
                mtime: now,
                etag: None,
                meta: Default::default(),
            }),
            negative: NegativeCache::new(mount.negative_timeout),
            dirty_dirs: Default::default(),
            dirs: DirCache::new(mount.dir_cache_timeout, mount.dir_cache_max_entries),
            bursts: Default::default(),
            files: Mutex::new(HashMap::new()),
            dir_handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            mounted_at: now,
            staging,
            kernel_writes,
            sessions: Default::default(),
            activity: Default::default(),
            metrics,
        }
    }

    /// Where file blocks come from (request counters, cache).
    pub fn blocks(&self) -> &Arc<BlockSource> {
        &self.blocks
    }

    /// The read-ahead memory budget.
    pub fn budget(&self) -> &Arc<MemoryBudget> {
        &self.budget
    }

    /// The backend this filesystem reads.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// How long the kernel may keep a name → inode mapping.
    pub fn entry_ttl(&self) -> Duration {
        self.cfg.entry_timeout
    }

    /// Whether extended attributes, and POSIX ACLs, are kept (`-o xattr`, `-o acl`).
    pub fn xattr_support(&self) -> (bool, bool) {
        (self.cfg.xattr, self.cfg.acl)
    }

    /// Number of inodes currently known (for tests and metrics).
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    fn node(&self, ino: u64) -> FsResult<Node> {
        self.inodes.get(ino).ok_or(FsError::UnknownInode(ino))
    }

    fn expiry(&self) -> Instant {
        Instant::now() + self.cfg.attr_timeout
    }

    fn entry(&self, node: &Node) -> Entry {
        Entry {
            attr: self.policy.attr(node.ino, node.kind, &node.stat),
            entry_ttl: self.ttl(node, self.cfg.entry_timeout),
            attr_ttl: self.ttl(node, self.cfg.attr_timeout),
        }
    }

    /// The kernel dropped `n` references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    /// Open a file for reading. `keep_cache` tells the kernel it may keep the pages it cached
    /// from an earlier open, because the object's ETag has not changed since.
    pub async fn open(&self, ino: u64, access: Access) -> FsResult<Opened> {
        self.open_joining(ino, access, None).await
    }

    /// [`CloudFs::open`]; a write open with `session` may only join the write session whose
    /// staging file that is (the kernel writes it), else it fails with nothing changed.
    pub async fn open_joining(
        &self,
        ino: u64,
        access: Access,
        session: Option<Arc<std::fs::File>>,
    ) -> FsResult<Opened> {
        if access == Access::ReadTruncate {
            self.truncate_at_open(ino).await?;
        }
        let node = match access {
            // What it stores besides its content is kept by the upload.
            Access::Write { .. } => self.node_with_meta(ino).await?,
            Access::Read | Access::Exec | Access::ReadTruncate => self.fresh_node(ino).await?,
        };
        if node.kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        if let Access::Write { truncate } = access {
            self.writable()?;
            if node.stat.size_unknown {
                return Err(FsError::Backend(BackendError::Denied(format!(
                    "{} is read-only (an exported document)",
                    node.key
                ))));
            }
            self.stage_joining(&node, truncate, session.as_ref())
                .await?;
            let fh = self.add_handle(&node, true, false);
            return Ok(Opened {
                fh,
                keep_cache: false,
                whole: None,
                version: None,
                direct_io: false,
                staging: self.offer_staging(ino, truncate),
            });
        }
        let being_written = self.is_open_for_write(ino);
        let keep_cache = self.inodes.note_open(ino, node.stat.etag.as_deref()) && !being_written;
        let obj = ObjectRef {
            key: node.key.clone(),
            etag: node.stat.etag.clone(),
            size: node.stat.size,
        };
        // Pages the kernel kept from the last open are the fastest source of all; otherwise the
        // complete cache file (passthrough) is.
        let whole = if keep_cache || being_written || node.stat.size_unknown {
            None
        } else {
            self.whole_file(&obj).await
        };
        let fh = self.add_handle(&node, false, access == Access::Exec);
        Ok(Opened {
            fh,
            keep_cache: keep_cache && !node.stat.size_unknown,
            whole,
            version: node.stat.etag.clone(),
            direct_io: node.stat.size_unknown,
            staging: None,
        })
    }

    /// Open `ino` is served by the kernel from the cache file: it caches no pages of the
    /// object itself, so the next open must not keep any.
    pub fn served_by_kernel(&self, ino: u64) {
        self.inodes.forget_open_version(ino);
    }

    /// The complete cache file of `obj`, if passthrough is on and every block is cached.
    async fn whole_file(&self, obj: &ObjectRef) -> Option<WholeFile> {
        if !self.cfg.passthrough || obj.size == 0 {
            return None;
        }
        let (cache, etag) = (self.blocks.cache()?.clone(), obj.etag.clone()?);
        let (key, size) = (obj.key.clone(), obj.size);
        tokio::task::spawn_blocking(move || cache.whole_file(&key, &etag, size))
            .await
            .ok()
            .flatten()
            .map(|(file, pin)| WholeFile { file, _pin: pin })
    }

    /// Read from an open file (from the staged content while the file is open for writing).
    pub async fn read(&self, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let handle = lock(&self.files)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle(fh))?;
        if let Some(staged) = self.read_staged(handle.ino, offset, size).await {
            return staged;
        }
        if handle.size_unknown {
            // Straight from the backend, which answers fewer bytes at the end.
            let key = &handle.reader.object().key;
            let end = offset.saturating_add(u64::from(size));
            return Ok(self.backend.get_range(key, offset..end, None).await?);
        }
        match handle.reader.read(offset, size as u64).await {
            Ok(b) => {
                handle.served.store(true, Ordering::Relaxed);
                Ok(b)
            }
            Err(BackendError::Changed(_)) if !handle.served.load(Ordering::Relaxed) => {
                // Changed before this open, within the attribute TTL (the open trusted the
                // version it knew): nothing was read yet, so the handle takes the new one.
                self.inodes.expire(handle.ino);
                let node = self.fresh_node(handle.ino).await?;
                tracing::debug!(key = %node.key, "a newer version than the one known at open; reading it");
                self.set_handle(fh, &node, handle.write, handle.exec);
                let handle = self.handle(fh)?;
                let data = handle.reader.read(offset, size as u64).await;
                handle.served.store(true, Ordering::Relaxed);
                self.stale_if_changed(&handle, data)
            }
            r => self.stale_if_changed(&handle, r),
        }
    }

    /// A read's result; a change of the object on the server while open is `ESTALE`.
    fn stale_if_changed(
        &self,
        handle: &FileHandle,
        r: Result<Bytes, BackendError>,
    ) -> FsResult<Bytes> {
        match r {
            Ok(b) => Ok(b),
            Err(BackendError::Changed(msg)) => {
                tracing::warn!(key = %handle.reader.object().key, %msg, "object changed on the server while open");
                self.inodes.expire(handle.ino);
                Err(FsError::Stale)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Open a directory; returns the handle number.
    pub fn opendir(&self, ino: u64) -> FsResult<u64> {
        let node = self.node(ino)?;
        if node.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        let mtime = if ino == ROOT_INO {
            self.mounted_at
        } else {
            node.stat.mtime
        };
        let handle = DirHandle::open(
            ino,
            node.parent,
            &node.key,
            &self.dirs,
            &self.cfg.listing,
            mtime,
        )
        .with_extras(self.local_entries(ino));
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dir_handles).insert(fh, Arc::new(tokio::sync::Mutex::new(handle)));
        Ok(fh)
    }

    /// Fill one `readdir` (or, with `plus`, `readdirplus`) reply starting at kernel `offset`.
    /// With `plus`, every entry added counts one kernel reference.
    pub async fn readdir(
        &self,
        fh: u64,
        offset: u64,
        plus: bool,
        out: &mut dyn DirReplier,
    ) -> FsResult<()> {
        let handle = lock(&self.dir_handles)
            .get(&fh)
            .cloned()
            .ok_or(FsError::BadHandle(fh))?;
        let mut h = handle.lock().await;
        let dot = [(".", h.ino), ("..", h.parent)];
        for (i, (name, ino)) in dot.iter().enumerate().skip(offset as usize) {
            let node = self.node(*ino).or_else(|_| self.node(ROOT_INO))?;
            let mut attr = self.policy.attr(node.ino, Kind::Dir, &node.stat);
            attr.ino = *ino;
            if out.add(name, &attr, i as u64 + 1) {
                return Ok(());
            }
        }
        let dir_ino = h.ino;
        let start = offset.saturating_sub(2);
        let expires = self.expiry();
        let mut emit = |e: &Listed, index: u64| -> bool {
            let known = if plus {
                let ino =
                    self.inodes
                        .upsert(dir_ino, &e.name, &e.key, e.kind, e.stat.clone(), expires);
                self.inodes.get(ino)
            } else {
                self.inodes.child(dir_ino, &e.name)
            };
            // What the table knows (a HEAD's metadata, a symbolic link) beats the listing.
            let attr = match known {
                Some(n) => self.policy.attr(n.ino, n.kind, &n.stat),
                None => self.policy.attr(self.inodes.alloc_ino(), e.kind, &e.stat),
            };
            let ino = attr.ino;
            if out.add(&e.name, &attr, index + 3) {
                return false;
            }
            if plus {
                self.inodes.remember(ino);
            }
            self.negative.remove(dir_ino, &e.name);
            true
        };
        match h
            .feed(start, self.backend.as_ref(), &self.dirs, &mut emit)
            .await
        {
            // The store does not answer: the directory's last listing, however old, if the
            // listing had not started.
            Err(e) if self.serves_offline(&e) && h.use_stale(&self.dirs) => {
                self.activity.served_stale();
                h.feed(start, self.backend.as_ref(), &self.dirs, &mut emit)
                    .await?;
            }
            done => done?,
        }
        Ok(())
    }

    /// Entries an open directory handle holds in memory (for tests and metrics).
    pub async fn dir_handle_in_memory(&self, fh: u64) -> Option<usize> {
        let handle = lock(&self.dir_handles).get(&fh).cloned()?;
        let n = handle.lock().await.in_memory();
        Some(n)
    }

    /// Close an open directory.
    pub fn releasedir(&self, fh: u64) {
        lock(&self.dir_handles).remove(&fh);
    }

    /// Filesystem statistics.
    pub fn statfs(&self) -> StatFs {
        // The store's quota where it has one (Drive); else 1 PiB in 4 KiB blocks, like other
        // object-store mounts, so `df` and space checks pass.
        let unlimited = 1u64 << 50;
        let (total, used) = match self.backend.space() {
            Some(s) => (s.total.unwrap_or(unlimited), s.used),
            None => (unlimited, 0),
        };
        let blocks = total / 4096;
        let free = total.saturating_sub(used) / 4096;
        StatFs {
            blocks,
            bfree: free,
            bavail: free,
            files: 1 << 32,
            ffree: 1 << 32,
            bsize: 4096,
            namelen: u32::try_from(self.cfg.listing.name_max).unwrap_or(255),
        }
    }
}

/// The staging area: inside the cache directory when there is one, else a private directory
/// under the system's temporary directory. `None` (writes refused) when neither can be made.
fn staging_area(cache: Option<&DiskBlockCache>) -> Option<StagingArea> {
    let area = match cache {
        Some(c) => StagingArea::open(&c.dir().join("staging")),
        None => StagingArea::temporary(),
    };
    match area {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::warn!(error = %e, "writes are refused");
            None
        }
    }
}

/// The key of the directory holding `key` (`a/b` → `a/`, `a/b/` → `a/`, `b` → ``).
fn parent_key(key: &str) -> String {
    let trimmed = key.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) => trimmed[..=i].to_string(),
        None => String::new(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // No code panics while holding these locks; if one ever did, the map is still consistent.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests;
