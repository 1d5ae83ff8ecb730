//! [`Backend`] over `object_store`: S3 and S3-compatibles, Azure Blob, GCS and a local directory.
//!
//! Paging: the cloud stores implement `PaginatedListStore`, so each [`Backend::list`] call is one
//! LIST request. The local directory store has no paged listing; its pages are cut from a full
//! listing of the one directory (local directories are cheap to list; documented limitation).

use super::{Backend, BackendError, ListPage, ObjectInfo, PosixMeta};
use async_trait::async_trait;
use bytes::Bytes;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
};
use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Parts of one multipart upload in flight at once.
const UPLOAD_CONCURRENCY: usize = 4;

mod keys;
mod stream;
mod upload;

use upload::StoreUpload;

/// A [`Backend`] on top of any `object_store` store.
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    /// The paged LIST of cloud stores; `None` for the local directory store.
    pager: Option<Arc<dyn PaginatedListStore>>,
    /// Key prefix of the mounted root inside the bucket: `""` or ending in `/`.
    root: String,
    /// Shown in logs and errors, e.g. `s3://bucket/prefix`.
    name: String,
    /// For the local directory store: its directory, to tell empty directories apart.
    local_dir: Option<std::path::PathBuf>,
    /// Server-side part copies (S3 and Azure).
    raw: Option<Arc<dyn super::raw::RawStore>>,
    /// The server refused a part copy for a reason other than a changed source (an
    /// S3-compatible without UploadPartCopy): whole uploads from then on.
    part_copies_refused: std::sync::atomic::AtomicBool,
    /// Keys hidden from listings (no file name can carry them).
    hidden: super::hostile::Hidden,
    /// Content-Types by file name (`-o mime=`); `None`: none is set.
    mime: Option<Arc<super::mime::MimeTypes>>,
    /// Most bytes of metadata names and values one object may carry, if the store limits it.
    meta_limit: Option<usize>,
}

impl fmt::Debug for ObjectStoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectStoreBackend")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ObjectStoreBackend {
    /// Wrap `store`; `root` is the key prefix of the mounted directory (may be empty).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        pager: Option<Arc<dyn PaginatedListStore>>,
        root: &str,
        name: String,
    ) -> Self {
        let trimmed = root.trim_matches('/');
        let root = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{trimmed}/")
        };
        ObjectStoreBackend {
            store,
            pager,
            root,
            name,
            local_dir: None,
            raw: None,
            part_copies_refused: Default::default(),
            hidden: Default::default(),
            mime: None,
            meta_limit: None,
        }
    }

    /// Set each upload's Content-Type from its name, by `types`.
    pub fn with_mime(mut self, types: Option<super::mime::MimeTypes>) -> Self {
        self.mime = types.map(Arc::new);
        self
    }

    /// Limit the metadata of each object to `bytes` of names and values (S3: 2 KiB; Azure and
    /// GCS: 8 KiB).
    pub fn with_meta_limit(mut self, bytes: usize) -> Self {
        self.meta_limit = Some(bytes);
        self
    }

    /// The Content-Type to store object `key` with, if any.
    fn content_type(&self, key: &str) -> Option<&str> {
        self.mime.as_deref().map(|m| m.of(key))
    }

    /// Re-upload edited objects by copying their unchanged parts with `copier`.
    pub fn with_raw(mut self, copier: impl super::raw::RawStore + 'static) -> Self {
        self.raw = Some(Arc::new(copier));
        self
    }

    /// A backend over a local directory (which has no paged listing).
    pub fn local(store: Arc<dyn ObjectStore>, dir: std::path::PathBuf, name: String) -> Self {
        ObjectStoreBackend {
            local_dir: Some(dir),
            ..Self::new(store, None, "", name)
        }
    }

    fn full_key(&self, key: &str) -> String {
        format!("{}{}", self.root, key)
    }

    fn path(&self, key: &str) -> Result<Path, BackendError> {
        let full = self.full_key(key);
        if self.escaped_key(key).is_some() {
            // Only the raw requests can reach its key (store/keys.rs).
            return Err(BackendError::InvalidKey {
                key: full,
                reason: "an escaped name cannot go through object_store".into(),
            });
        }
        Path::parse(&full).map_err(|e| BackendError::InvalidKey {
            key: full,
            reason: e.to_string(),
        })
    }

    /// Strip the mount root from a key the store returned; `None` when outside the root.
    fn relative<'a>(&self, full: &'a str) -> Option<&'a str> {
        full.strip_prefix(self.root.as_str())
    }

    fn info(&self, meta: ObjectMeta) -> Option<ObjectInfo> {
        let key = self.relative(meta.location.as_ref())?.to_string();
        Some(ObjectInfo {
            size_unknown: false,
            key,
            size: meta.size,
            mtime: meta.last_modified.into(),
            etag: meta.e_tag.or(meta.version),
            meta: PosixMeta::default(),
        })
    }

    /// Begin a multipart upload of `key` carrying `meta`.
    async fn begin_multipart(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn object_store::MultipartUpload>, BackendError> {
        let opts = PutMultipartOptions {
            attributes: self.attributes(key, meta),
            ..Default::default()
        };
        Ok(self
            .store
            .put_multipart_opts(&self.path(key)?, opts)
            .await?)
    }

    /// `meta` as object metadata, and the Content-Type of `key`; the local directory store
    /// keeps none.
    fn attributes(&self, key: &str, meta: &PosixMeta) -> Attributes {
        let mut a = Attributes::new();
        if let (Some(t), None) = (self.content_type(key), &self.local_dir) {
            a.insert(Attribute::ContentType, AttributeValue::from(t.to_string()));
        }
        if self.local_dir.is_none() {
            for (k, v) in meta.to_pairs() {
                a.insert(
                    Attribute::Metadata(Cow::Borrowed(k)),
                    AttributeValue::from(v),
                );
            }
        }
        a
    }

    /// Turn a store listing of `prefix` into a page: drop the directory's own marker (`dir/`
    /// comes back as the object `dir`) and anything outside the prefix.
    fn page(
        &self,
        prefix: &str,
        result: object_store::ListResult,
        next: Option<String>,
    ) -> ListPage {
        let own_marker = prefix.strip_suffix('/');
        let mut marker = false;
        let objects = result
            .objects
            .into_iter()
            .filter_map(|m| self.info(m))
            .filter(|o| {
                marker |= own_marker == Some(o.key.as_str());
                o.key.len() > prefix.len() && o.key.starts_with(prefix)
            })
            .collect();
        let prefixes = result
            .common_prefixes
            .into_iter()
            .filter_map(|p| self.relative(p.as_ref()).map(|r| format!("{r}/")))
            .filter(|p| p.len() > prefix.len() && p.starts_with(prefix))
            .collect();
        ListPage {
            objects,
            prefixes,
            next_token: next,
            marker,
        }
    }

    async fn list_local(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        let full = self.full_key(prefix);
        let path = if full.is_empty() {
            None
        } else {
            Some(self.path(prefix)?)
        };
        let exists = self
            .local_dir
            .as_ref()
            .is_some_and(|d| d.join(&full).is_dir());
        if !exists {
            return Ok(ListPage::default());
        }
        let all = self.store.list_with_delimiter(path.as_ref()).await?;
        let mut page = self.page(prefix, all, None);
        page.marker = !prefix.is_empty();
        // Merge objects and prefixes in key order, then cut the page after `token`.
        let mut items: Vec<(String, Option<ObjectInfo>)> = page
            .objects
            .drain(..)
            .map(|o| (o.key.clone(), Some(o)))
            .chain(page.prefixes.drain(..).map(|p| (p, None)))
            .filter(|(k, _)| token.is_none_or(|t| k.as_str() > t))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let more = items.len() > max_keys;
        items.truncate(max_keys);
        let next_token = if more {
            items.last().map(|(k, _)| k.clone())
        } else {
            None
        };
        for (k, o) in items {
            match o {
                Some(o) => page.objects.push(o),
                None => page.prefixes.push(k),
            }
        }
        page.next_token = next_token;
        Ok(page)
    }
}

#[async_trait]
impl Backend for ObjectStoreBackend {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn stores_metadata(&self) -> bool {
        self.local_dir.is_none()
    }

    fn addressable(&self, key: &str) -> Result<(), BackendError> {
        self.check_addressable(key)
    }

    fn metadata_fits(&self, pairs: &[(&'static str, String)]) -> bool {
        let used: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
        self.meta_limit.is_none_or(|limit| used <= limit)
    }

    async fn set_meta(
        &self,
        key: &str,
        meta: &PosixMeta,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        match &self.raw {
            Some(raw) => {
                let kind = self.content_type(key);
                raw.set_meta(&self.key_bytes(key), meta, kind, etag).await
            }
            None => Err(BackendError::Unsupported(format!(
                "{key}: metadata changes without an upload"
            ))),
        }
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        if let Some(full) = self.escaped_key(key) {
            return self.head_escaped(key, &full).await;
        }
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        let res = self.store.get_opts(&self.path(key)?, opts).await?;
        let pairs: Vec<(String, String)> = res
            .attributes
            .iter()
            .filter_map(|(k, v)| match k {
                Attribute::Metadata(name) => Some((name.to_string(), v.to_string())),
                _ => None,
            })
            .collect();
        let mut info = self
            .info(res.meta.clone())
            .ok_or_else(|| BackendError::NotFound(key.to_string()))?;
        info.meta = PosixMeta::from_stored(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Ok(info)
    }

    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        let Some(pager) = &self.pager else {
            return self.list_local(prefix, token, max_keys).await;
        };
        // A raw listing where the store has one: one odd key must not fail the directory.
        if let Some(raw) = &self.raw {
            let full = self.key_bytes(prefix);
            let listed = self
                .hidden
                .list(raw.as_ref(), &self.name, (prefix, &full), token, max_keys)
                .await?;
            if let Some(page) = listed {
                return Ok(page);
            }
        }
        let full = self.full_key(prefix);
        let opts = PaginatedListOptions {
            delimiter: Some(Cow::Borrowed("/")),
            max_keys: Some(max_keys.max(1)),
            page_token: token.map(str::to_string),
            ..Default::default()
        };
        let prefix_arg = if full.is_empty() {
            None
        } else {
            Some(full.as_str())
        };
        let res = pager.list_paginated(prefix_arg, opts).await?;
        Ok(self.page(prefix, res.result, res.page_token))
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        if let Some(full) = self.escaped_key(key) {
            return self.get_escaped(key, &full, range, etag).await;
        }
        let path = self.path(key)?;
        // A body shorter than the range the answer says it holds (a wrong Content-Length, a
        // proxy that cut it) is never returned as content: tried once more, then an error.
        let mut cut = String::new();
        for _ in 0..2 {
            let opts = GetOptions {
                range: Some(GetRange::Bounded(range.clone())),
                if_match: etag.map(str::to_string),
                ..Default::default()
            };
            let res = self.store.get_opts(&path, opts).await?;
            let want = res.range.end - res.range.start;
            let data = res.bytes().await?;
            if data.len() as u64 == want {
                return Ok(data);
            }
            cut = format!(
                "GET {key} bytes {}-{}: the answer held {} of its {want} bytes",
                range.start,
                range.end - 1,
                data.len()
            );
            tracing::debug!("{cut}; trying again");
        }
        Err(BackendError::Busy(cut))
    }

    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<super::ByteStream, BackendError> {
        self.stream_range(key, range, etag).await
    }

    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        if let Some(full) = self.escaped_key(key) {
            return self.put_escaped(key, &full, data, meta).await;
        }
        let size = data.len() as u64;
        let opts = PutOptions {
            attributes: self.attributes(key, meta),
            ..Default::default()
        };
        let res = self
            .store
            .put_opts(&self.path(key)?, PutPayload::from(data), opts)
            .await?;
        Ok(written(key, size, res, meta))
    }

    async fn put_file_if(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
        cond: &super::Precondition,
    ) -> Result<ObjectInfo, BackendError> {
        // Conditional PUTs by ETag on S3 and Azure (the stores with raw requests); object_store
        // wants a generation for GCS and has none for a local directory, and multipart
        // completions carry no condition: a HEAD checks there.
        let escaped = self.escaped_key(key).is_some();
        if size > part_size || self.raw.is_none() || self.local_dir.is_some() || escaped {
            super::check_precondition(self, key, cond).await?;
            return self.put_file(key, file, size, part_size, meta).await;
        }
        let data = read_exactly(file, size).await?;
        let mode = match cond {
            super::Precondition::Absent => object_store::PutMode::Create,
            super::Precondition::Matches(e) => {
                object_store::PutMode::Update(object_store::UpdateVersion {
                    e_tag: Some(e.clone()),
                    version: None,
                })
            }
        };
        let opts = PutOptions {
            attributes: self.attributes(key, meta),
            mode,
            ..Default::default()
        };
        let res = self
            .store
            .put_opts(&self.path(key)?, PutPayload::from(data), opts)
            .await?;
        Ok(written(key, size, res, meta))
    }

    async fn start_upload(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn super::Upload>, BackendError> {
        if self.escaped_key(key).is_some() {
            return Err(BackendError::Unsupported(format!(
                "streaming upload of the escaped name {key}"
            )));
        }
        let upload = self.begin_multipart(key, meta).await?;
        Ok(Box::new(StoreUpload::new(key, meta, upload)))
    }

    async fn put_file(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        if size <= part_size || self.escaped_key(key).is_some() {
            let data = read_exactly(file, size).await?;
            return self.put(key, data, meta).await;
        }
        // Within the part limit whatever the caller asked (PartPlan::whole is idempotent).
        let part_size = super::PartPlan::new(part_size, super::part_size::MAX_PARTS).whole(size);
        let upload = self.begin_multipart(key, meta).await?;
        let mut writer =
            object_store::WriteMultipart::new_with_chunk_size(upload, part_size as usize);
        let mut at = 0;
        while at < size {
            // Parts in flight are bounded, so memory is too (UPLOAD_CONCURRENCY parts).
            if let Err(e) = writer.wait_for_capacity(UPLOAD_CONCURRENCY).await {
                return Err(e.into());
            }
            let end = (at + part_size).min(size);
            match super::raw::read_range(file, at..end).await {
                Ok(data) => writer.put(data),
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e);
                }
            }
            at = end;
        }
        let res = writer.finish().await?;
        Ok(written(key, size, res, meta))
    }

    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        let full = self.full_key(dir);
        if let Some(root) = &self.local_dir {
            let path = root.join(full.trim_end_matches('/'));
            return tokio::fs::create_dir_all(&path).await.map_err(|e| {
                BackendError::Other(format!("cannot create {}: {e}", path.display()))
            });
        }
        if let Some(full) = self.escaped_key(dir) {
            return self
                .put_escaped(dir, &full, Bytes::new(), meta)
                .await
                .map(|_| ());
        }
        match &self.raw {
            Some(raw) => raw.put_marker(&full, meta).await,
            None => Err(BackendError::Unsupported(format!(
                "directory marker {full} on {}",
                self.name
            ))),
        }
    }

    async fn marker_meta(&self, dir: &str) -> Result<Option<PosixMeta>, BackendError> {
        match &self.raw {
            Some(raw) if self.local_dir.is_none() => match self.escaped_key(dir) {
                Some(_) if !raw.addresses_keys() => Ok(None),
                Some(full) => match raw.head_key(&full).await {
                    Ok(h) => Ok(Some(h.meta)),
                    Err(BackendError::NotFound(_)) => Ok(None),
                    Err(e) => Err(e),
                },
                None => raw.marker_meta(&self.full_key(dir)).await,
            },
            _ => Ok(None),
        }
    }

    async fn has_marker(&self, dir: &str) -> Result<Option<bool>, BackendError> {
        match &self.raw {
            Some(raw) if self.local_dir.is_none() => raw.has_marker(&self.full_key(dir)).await,
            _ => Ok(None),
        }
    }

    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        let full = self.full_key(dir);
        if let Some(root) = &self.local_dir {
            let path = root.join(full.trim_end_matches('/'));
            return match tokio::fs::remove_dir(&path).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(BackendError::Other(format!(
                    "cannot remove {}: {e}",
                    path.display()
                ))),
            };
        }
        if let Some(full) = self.escaped_key(dir) {
            return self.delete_escaped(dir, &full).await;
        }
        match &self.raw {
            Some(raw) => raw.delete_marker(&full).await,
            None => Err(BackendError::Unsupported(format!(
                "directory marker {full} on {}",
                self.name
            ))),
        }
    }

    fn copies_parts(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.raw.is_some() && !self.part_copies_refused.load(Ordering::Relaxed)
    }

    async fn put_file_reusing(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        parts: &[super::PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let Some(copier) = &self.raw else {
            return Err(BackendError::Unsupported(format!(
                "server-side part copies by {}",
                self.name
            )));
        };
        if self.escaped_key(key).is_some() {
            return Err(BackendError::Unsupported(format!(
                "part copies for the escaped name {key}"
            )));
        }
        let full = self.path(key)?;
        let new_etag = match copier
            .upload(&full, file, parts, etag, meta, self.content_type(key))
            .await
        {
            Ok(e) => e,
            Err(e @ (BackendError::Other(_) | BackendError::Unsupported(_))) => {
                use std::sync::atomic::Ordering;
                if !self.part_copies_refused.swap(true, Ordering::Relaxed) {
                    tracing::warn!(store = %self.name, error = %e, "server-side part copies (UploadPartCopy / Put Block From URL) failed; edited files are uploaded whole from now on");
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        Ok(ObjectInfo {
            size_unknown: false,
            key: key.to_string(),
            size,
            mtime: std::time::SystemTime::now(),
            etag: new_etag,
            meta: meta.clone(),
        })
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError> {
        // A new name with another type: the copy takes the type of its name, as in s3fs.
        if let (Some(raw), Some(kind)) = (&self.raw, self.content_type(to)) {
            if raw.addresses_keys() && self.content_type(from) != Some(kind) {
                let meta = self.head(from).await?.meta;
                let (a, b) = (self.key_bytes(from), self.key_bytes(to));
                return raw.copy_key_retyped(&a, &b, &meta, Some(kind)).await;
            }
        }
        if self.escaped_key(from).is_some() || self.escaped_key(to).is_some() {
            return self.copy_escaped(from, to).await;
        }
        Ok(self.store.copy(&self.path(from)?, &self.path(to)?).await?)
    }

    async fn copy_with_meta(
        &self,
        from: &str,
        to: &str,
        meta: &PosixMeta,
    ) -> Result<(), BackendError> {
        match &self.raw {
            Some(raw) if raw.addresses_keys() => {
                let (a, b) = (self.key_bytes(from), self.key_bytes(to));
                raw.copy_key_retyped(&a, &b, meta, self.content_type(to))
                    .await
            }
            _ => self.copy(from, to).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        if let Some(full) = self.escaped_key(key) {
            return self.delete_escaped(key, &full).await;
        }
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn renames(&self) -> bool {
        self.local_dir.is_some()
    }

    async fn abort_stale_uploads(
        &self,
        older_than: std::time::Duration,
        keep: &std::collections::HashSet<String>,
    ) -> Result<usize, BackendError> {
        let Some(raw) = &self.raw else { return Ok(0) };
        let before = std::time::SystemTime::now() - older_than;
        let mut aborted = 0;
        for u in raw.stale_uploads(&self.root, before).await? {
            let known = self.relative(&u.key).is_some_and(|k| keep.contains(k));
            if known || !u.key.starts_with(&self.root) {
                continue;
            }
            raw.abort_upload(&u.key, &u.upload_id).await?;
            tracing::info!(key = %u.key, "aborted a multipart upload left unfinished");
            aborted += 1;
        }
        Ok(aborted)
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        match &self.local_dir {
            Some(dir) => super::local::rename(dir, from, to).await,
            None => Err(BackendError::Unsupported(format!(
                "one-step rename on {}",
                self.name
            ))),
        }
    }
}

/// What a finished PUT or multipart upload of `size` bytes to `key` left on the server.
fn written(key: &str, size: u64, res: object_store::PutResult, meta: &PosixMeta) -> ObjectInfo {
    ObjectInfo {
        size_unknown: false,
        key: key.to_string(),
        size,
        mtime: std::time::SystemTime::now(),
        etag: res.e_tag.or(res.version),
        meta: meta.clone(),
    }
}

/// The first `size` bytes of the open local file `file` (a file that grew past `size`, as
/// after a write that failed half way, sends only what `size` says; a shorter one is an
/// error).
pub(super) async fn read_exactly(file: &std::fs::File, size: u64) -> Result<Bytes, BackendError> {
    super::raw::read_range(file, 0..size).await
}
