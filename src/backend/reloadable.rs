//! A backend that can be replaced while the mount serves: SIGHUP builds a new one from
//! re-read credentials and swaps it in; requests already running finish on the old one.

use super::{Backend, BackendError, ListPage, ObjectInfo, PartSource, PosixMeta, Upload};
use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;
use std::sync::{Arc, RwLock};

/// Delegates every call to the backend it holds now.
#[derive(Debug)]
pub struct Reloadable {
    inner: RwLock<Arc<dyn Backend>>,
}

impl Reloadable {
    /// Start with `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        Reloadable {
            inner: RwLock::new(backend),
        }
    }

    /// Use `backend` for every later call.
    pub fn replace(&self, backend: Arc<dyn Backend>) {
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = backend;
    }

    fn now(&self) -> Arc<dyn Backend> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Backend for Reloadable {
    fn describe(&self) -> String {
        self.now().describe()
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        self.now().head(key).await
    }

    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        self.now().list(prefix, token, max_keys).await
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        self.now().get_range(key, range, etag).await
    }

    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<super::ByteStream, BackendError> {
        self.now().get_range_stream(key, range, etag).await
    }

    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.now().put(key, data, meta).await
    }

    async fn start_upload(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn Upload>, BackendError> {
        self.now().start_upload(key, meta).await
    }

    async fn put_file(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.now().put_file(key, file, size, part_size, meta).await
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
        self.now()
            .put_file_if(key, file, size, part_size, meta, cond)
            .await
    }

    fn max_parts(&self) -> u64 {
        self.now().max_parts()
    }

    fn addressable(&self, key: &str) -> Result<(), BackendError> {
        self.now().addressable(key)
    }

    fn stores_metadata(&self) -> bool {
        self.now().stores_metadata()
    }

    fn copies_parts(&self) -> bool {
        self.now().copies_parts()
    }

    async fn put_file_reusing(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        parts: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.now()
            .put_file_reusing(key, file, size, parts, etag, meta)
            .await
    }

    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        self.now().put_marker(dir, meta).await
    }

    async fn marker_meta(&self, dir: &str) -> Result<Option<PosixMeta>, BackendError> {
        self.now().marker_meta(dir).await
    }

    async fn has_marker(&self, dir: &str) -> Result<Option<bool>, BackendError> {
        self.now().has_marker(dir).await
    }

    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        self.now().delete_marker(dir).await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.now().copy(from, to).await
    }

    async fn copy_with_meta(
        &self,
        from: &str,
        to: &str,
        meta: &PosixMeta,
    ) -> Result<(), BackendError> {
        self.now().copy_with_meta(from, to, meta).await
    }

    fn metadata_fits(&self, pairs: &[(&'static str, String)]) -> bool {
        self.now().metadata_fits(pairs)
    }

    async fn set_meta(
        &self,
        key: &str,
        meta: &PosixMeta,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        self.now().set_meta(key, meta, etag).await
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.now().delete(key).await
    }

    fn renames(&self) -> bool {
        self.now().renames()
    }

    fn change_interval(&self) -> Option<std::time::Duration> {
        self.now().change_interval()
    }

    async fn abort_stale_uploads(
        &self,
        older_than: std::time::Duration,
        keep: &std::collections::HashSet<String>,
    ) -> Result<usize, BackendError> {
        self.now().abort_stale_uploads(older_than, keep).await
    }

    fn space(&self) -> Option<super::Space> {
        self.now().space()
    }

    async fn changes(&self) -> Result<Vec<String>, BackendError> {
        self.now().changes().await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.now().rename(from, to).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    #[tokio::test]
    async fn calls_go_to_the_backend_held_now() {
        let a = Arc::new(MemoryBackend::new());
        a.insert("x", b"from a".to_vec());
        let b = Arc::new(MemoryBackend::new());
        b.insert("x", b"from b".to_vec());
        let r = Reloadable::new(a);
        assert_eq!(&r.get_range("x", 0..6, None).await.unwrap()[..], b"from a");
        r.replace(b);
        assert_eq!(&r.get_range("x", 0..6, None).await.unwrap()[..], b"from b");
    }
}
