//! The narrow interface between the filesystem core and an object store.
//!
//! Keys handed to a [`Backend`] are relative to the mounted root (the backend adds the source
//! URL's prefix) and use `/` as the only separator. A directory is never an object of its own
//! here: it exists when a listing with its prefix returns anything (an implicit directory) or
//! when a marker object `dir/` exists (s3fs style), which [`Backend::list`] reports as a prefix
//! of its parent and hides inside its own listing.
//!
//! Implementations must never log or format secrets, and must map every failure onto
//! [`BackendError`] so that the core can turn it into one errno.

mod build;
pub(crate) mod error;
pub mod escaped;
#[cfg(test)]
pub mod fault;
pub mod gdrive;
mod hostile;
mod local;
pub mod memory;
pub mod meta;
pub mod mime;
pub mod offline;
pub mod part_size;
pub mod raw;
mod reloadable;
mod store;
pub mod xattr;

pub use build::{build_backend, BuiltBackend};
pub use error::BackendError;
pub use offline::{Connectivity, Guarded};
pub use reloadable::Reloadable;
pub use store::ObjectStoreBackend;

use async_trait::async_trait;
use bytes::Bytes;
use std::fmt::Debug;
use std::ops::Range;
use std::time::SystemTime;

pub use meta::PosixMeta;
pub use part_size::PartPlan;

/// What a listing or a HEAD says about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Key relative to the mounted root, without a trailing `/`.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification time reported by the server.
    pub mtime: SystemTime,
    /// Entity tag (or version) identifying this content, when the server gives one.
    pub etag: Option<String>,
    /// POSIX attributes stored with the object (only a HEAD reads them; listings do not).
    pub meta: PosixMeta,
    /// The size is not known before the content is read (a Google document, whose export is
    /// made at read time): `size` is 0, and reads go straight to the backend until it answers
    /// fewer bytes than asked.
    pub size_unknown: bool,
}

/// One page of a delimited listing (`/` is the delimiter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects directly under the prefix, sorted by key.
    pub objects: Vec<ObjectInfo>,
    /// Sub-directories directly under the prefix, as relative keys ending in `/`, sorted.
    pub prefixes: Vec<String>,
    /// Token for the next page; `None` on the last page.
    pub next_token: Option<String>,
    /// The prefix's own directory marker (an object named exactly `prefix`, or a real local
    /// directory) exists. An empty directory made by mkdir is known only by this.
    pub marker: bool,
}

impl ListPage {
    /// Whether this listing of `prefix/` proves a directory exists there (anything under it,
    /// or its marker).
    pub fn shows_directory(&self) -> bool {
        self.marker || !self.objects.is_empty() || !self.prefixes.is_empty()
    }
}

/// Where one part of an object being re-uploaded comes from (see
/// [`Backend::put_file_reusing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartSource {
    /// These bytes of the object version being replaced, copied on the server.
    Copy(Range<u64>),
    /// These bytes of the local file, sent.
    Send(Range<u64>),
}

/// What the server must hold for a conditional upload to replace it (see
/// [`Backend::put_file_if`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// No object of that name (`If-None-Match: *`).
    Absent,
    /// The object with this entity tag (`If-Match`).
    Matches(String),
}

/// Space on the store, for `statfs` (`df`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes the account may store; `None` when unlimited.
    pub total: Option<u64>,
    /// Bytes stored.
    pub used: u64,
}

/// A multipart upload in progress (see [`Backend::start_upload`]).
#[async_trait]
pub trait Upload: Send + Sync + Debug {
    /// Send the next part, given as pieces in order (not copied together); every part but
    /// the last must be at least 5 MiB. Waits while too many parts are in flight.
    async fn put_part(&mut self, data: Vec<Bytes>) -> Result<(), BackendError>;
    /// Finish: the object now exists with all parts, in order.
    async fn complete(self: Box<Self>, size: u64) -> Result<ObjectInfo, BackendError>;
    /// Give up; the parts sent are dropped by the store.
    async fn abort(self: Box<Self>);
}

/// [`BackendError::Changed`] unless the server holds what `cond` says now.
pub async fn check_precondition<B: Backend + ?Sized>(
    backend: &B,
    key: &str,
    cond: &Precondition,
) -> Result<(), BackendError> {
    let now = match backend.head(key).await {
        Ok(info) => Some(info.etag),
        Err(BackendError::NotFound(_)) => None,
        Err(e) => return Err(e),
    };
    let holds = match (cond, &now) {
        (Precondition::Absent, None) => true,
        (Precondition::Matches(e), Some(Some(now))) => now == e,
        _ => false,
    };
    if holds {
        Ok(())
    } else {
        Err(BackendError::Changed(format!(
            "{key}: the server no longer holds {cond:?}"
        )))
    }
}

/// Pieces of an object's bytes, in order (see [`Backend::get_range_stream`]).
pub type ByteStream = futures::stream::BoxStream<'static, Result<Bytes, BackendError>>;

/// The operations the filesystem needs from an object store.
#[async_trait]
pub trait Backend: Send + Sync + Debug + 'static {
    /// A human readable name of what is mounted, e.g. `s3://bucket/prefix` (no secrets).
    fn describe(&self) -> String;

    /// Metadata of one object; [`BackendError::NotFound`] when it does not exist.
    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError>;

    /// One page of the objects and sub-prefixes directly under `prefix` (`""` for the root,
    /// otherwise ending in `/`). At most `max_keys` items per page (objects plus prefixes).
    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError>;

    /// Bytes `range` of `key`. With `etag`, fails with [`BackendError::Changed`] when the
    /// object no longer has that entity tag (where the server supports conditional reads).
    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError>;

    /// Bytes `range` of `key` as pieces in order, as they arrive: for callers that write them
    /// out instead of holding the whole range (the background fill). The caller checks that the
    /// pieces add up to the range. Default: one [`Backend::get_range`].
    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<ByteStream, BackendError> {
        let data = self.get_range(key, range, etag).await?;
        Ok(Box::pin(futures::stream::once(async move { Ok(data) })))
    }

    /// Store `data` as `key` with the POSIX attributes `meta`, replacing any object of that name.
    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError>;

    /// Begin a multipart upload to `key` whose parts are sent as they come (a file still being
    /// written). Stores without one answer [`BackendError::Unsupported`] and the whole file is
    /// sent at close instead.
    async fn start_upload(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn Upload>, BackendError> {
        let _ = meta;
        Err(BackendError::Unsupported(format!(
            "streaming upload of {key} by {}",
            self.describe()
        )))
    }

    /// Store the `size` bytes of local file `path` as `key`. Stores that can should send files
    /// larger than `part_size` as a multipart upload of parallel parts of that size (the
    /// caller sizes it with [`PartPlan::whole`]); the default reads the file and calls
    /// [`Backend::put`].
    async fn put_file(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let _ = part_size;
        let data = store::read_exactly(file, size).await?;
        self.put(key, data, meta).await
    }

    /// [`Backend::put_file`], only while the server holds what `cond` says; otherwise
    /// [`BackendError::Changed`] and nothing is stored. Stores with conditional writes check
    /// it atomically (S3 and Azure `If-Match`/`If-None-Match`) for files sent in one request;
    /// the default, and larger files, check with a HEAD just before the upload.
    async fn put_file_if(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
        cond: &Precondition,
    ) -> Result<ObjectInfo, BackendError> {
        check_precondition(self, key, cond).await?;
        self.put_file(key, file, size, part_size, meta).await
    }

    /// Whether requests can reach the object or directory `key` (a mount key); why not. An
    /// escaped name may stand for a key no request can carry (a `.` or `..` segment), which a
    /// directory rename must know before it copies anything.
    fn addressable(&self, key: &str) -> Result<(), BackendError> {
        let _ = key;
        Ok(())
    }

    /// Most parts one multipart upload may have (see [`PartPlan`]).
    fn max_parts(&self) -> u64 {
        part_size::MAX_PARTS
    }

    /// Whether objects keep the POSIX attributes they are stored with (a local directory
    /// keeps none). Symbolic links need them.
    fn stores_metadata(&self) -> bool {
        true
    }

    /// Whether an object may carry metadata `pairs` (names without the store's prefix) within
    /// the store's limits on user metadata (S3: 2 KiB of names and values per object).
    fn metadata_fits(&self, pairs: &[(&'static str, String)]) -> bool {
        let _ = pairs;
        true
    }

    /// Replace the metadata of object `key`, which must still have entity tag `etag` (else
    /// `Changed`), with `meta`, without sending its content again; its new entity tag.
    /// `Unsupported` where the store cannot: the caller uploads the object again.
    async fn set_meta(
        &self,
        key: &str,
        meta: &PosixMeta,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        let _ = (meta, etag);
        Err(BackendError::Unsupported(format!(
            "{key}: metadata changes without an upload"
        )))
    }

    /// Whether [`Backend::put_file_reusing`] can copy parts on the server.
    fn copies_parts(&self) -> bool {
        false
    }

    /// Store the `size` bytes of local file `path` as `key` from `parts` (in order, covering
    /// the file; every part but the last at least 5 MiB): `Copy` parts are copied on the
    /// server from `key`'s current version, which must still have entity tag `etag`
    /// ([`BackendError::Changed`] otherwise), `Send` parts are sent from the file. Stores
    /// without server-side part copies answer [`BackendError::Unsupported`].
    async fn put_file_reusing(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        parts: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let _ = (file, size, parts, etag, meta);
        Err(BackendError::Unsupported(format!(
            "server-side part copies of {key} by {}",
            self.describe()
        )))
    }

    /// Create (or replace) the directory marker object `dir` (a key ending in `/`, as s3fs
    /// writes one) carrying `meta`. Stores that cannot answer [`BackendError::Unsupported`]
    /// (a new directory then exists only in the mount until a file lands in it).
    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        let _ = meta;
        Err(BackendError::Unsupported(format!(
            "directory marker {dir} on {}",
            self.describe()
        )))
    }

    /// Whether directory `dir` has a marker object, for stores whose [`Backend::list`] cannot
    /// tell ([`ListPage::marker`] is then always false); `None` when listings do tell.
    async fn has_marker(&self, dir: &str) -> Result<Option<bool>, BackendError> {
        let _ = dir;
        Ok(None)
    }

    /// The metadata stored on directory `dir`'s marker object (mode, owner, times, extended
    /// attributes, as s3fs writes them), where the store can read it; `None` when there is
    /// no marker or the store cannot tell.
    async fn marker_meta(&self, dir: &str) -> Result<Option<PosixMeta>, BackendError> {
        let _ = dir;
        Ok(None)
    }

    /// Delete the directory marker object `dir` (a missing one is fine).
    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        Err(BackendError::Unsupported(format!(
            "directory marker {dir} on {}",
            self.describe()
        )))
    }

    /// Server-side copy of `from` to `to`.
    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError>;

    /// Copy object `from` to `to` on the server with `meta` instead of the source's metadata
    /// (a renamed file's ctime moves), in the same request where the store can; elsewhere a
    /// copy with the source's metadata.
    async fn copy_with_meta(
        &self,
        from: &str,
        to: &str,
        meta: &PosixMeta,
    ) -> Result<(), BackendError> {
        let _ = meta;
        self.copy(from, to).await
    }

    /// Abort the multipart uploads the server holds unfinished under the mounted root that
    /// were started more than `older_than` ago, except those of keys in `keep` (content the
    /// mount still has to send); how many were aborted. Stores without such uploads: 0.
    async fn abort_stale_uploads(
        &self,
        older_than: std::time::Duration,
        keep: &std::collections::HashSet<String>,
    ) -> Result<usize, BackendError> {
        let _ = (older_than, keep);
        Ok(0)
    }

    /// The store's quota as last seen (Drive's `about`); `None` for stores without one.
    fn space(&self) -> Option<Space> {
        None
    }

    /// How often [`Backend::changes`] should be asked, for stores with a feed of changes made
    /// elsewhere (Drive); `None` for stores without one.
    fn change_interval(&self) -> Option<std::time::Duration> {
        None
    }

    /// What changed on the server since the last call, made by anyone: keys of files, and
    /// keys of directories whose listing changed (`""` for the root, else ending in `/`). The
    /// first call starts the feed and returns nothing.
    async fn changes(&self) -> Result<Vec<String>, BackendError> {
        Ok(Vec::new())
    }

    /// Whether [`Backend::rename`] moves a file or a whole directory on the server in one
    /// step (Drive, a local directory); otherwise the core copies and deletes every object.
    fn renames(&self) -> bool {
        false
    }

    /// Move `from` to `to` in one step, replacing what `to` names. Directory keys end in `/`
    /// and move with everything below them; the parent of `to` exists. Only called when
    /// [`Backend::renames`] says so.
    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        Err(BackendError::Unsupported(format!(
            "renaming {from} to {to} in one step on {}",
            self.describe()
        )))
    }

    /// Delete `key`; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), BackendError>;
}
