//! Objects whose mount key holds an escaped name ([`crate::backend::escaped`]): object_store's
//! paths cannot hold their real keys, so they go through the store's raw requests, by key
//! bytes. Streaming and part-copy uploads are not offered for them (a close sends the file
//! whole).

use super::super::raw::RawStore;
use super::super::{escaped, BackendError, ObjectInfo, PosixMeta};
use super::ObjectStoreBackend;
use bytes::Bytes;
use std::ops::Range;
use std::sync::Arc;

impl ObjectStoreBackend {
    /// The full key in the bucket of mount key `key`, when object_store's paths cannot carry
    /// it: a name in it is an escape, or holds an ASCII control character (which file names
    /// may: CR, LF, tab).
    pub(super) fn escaped_key(&self, key: &str) -> Option<Vec<u8>> {
        let real = escaped::store_key(key).or_else(|| {
            key.bytes()
                .any(|b| b.is_ascii_control())
                .then(|| key.as_bytes().to_vec())
        })?;
        let mut full = self.root.as_bytes().to_vec();
        full.extend_from_slice(&real);
        Some(full)
    }

    /// The full key in the bucket of any mount key, as bytes.
    pub(super) fn key_bytes(&self, key: &str) -> Vec<u8> {
        self.escaped_key(key)
            .unwrap_or_else(|| self.full_key(key).into_bytes())
    }

    /// See [`crate::backend::Backend::addressable`].
    pub(super) fn check_addressable(&self, key: &str) -> Result<(), BackendError> {
        let Some(full) = self.escaped_key(key) else {
            return Ok(());
        };
        let why = match &self.raw {
            Some(raw) if raw.addresses_keys() => {
                if !escaped::has_dot_segment(&full) || raw.addresses_dot_keys() {
                    return Ok(());
                }
                "it has a `.` or `..` segment, and no client that sends URL paths as written \
                 could be set up"
            }
            _ => "this store has no requests for keys its paths cannot hold",
        };
        Err(BackendError::Unsupported(format!(
            "{:?}: {why}; use the store's own tools for it",
            String::from_utf8_lossy(&full)
        )))
    }

    fn raw_for(&self, key: &str) -> Result<&Arc<dyn RawStore>, BackendError> {
        self.raw.as_ref().ok_or_else(|| {
            BackendError::Unsupported(format!(
                "{key}: {} has no requests for keys its paths cannot hold",
                self.name
            ))
        })
    }

    pub(super) async fn head_escaped(
        &self,
        key: &str,
        full: &[u8],
    ) -> Result<ObjectInfo, BackendError> {
        let raw = self.raw_for(key)?;
        if escaped::has_dot_segment(full) && !raw.addresses_dot_keys() {
            // No HEAD reaches it; a one-key listing from it does (the key is in the query).
            let page = raw.list(full, None, 1).await?;
            let o = page
                .and_then(|p| p.objects.into_iter().find(|o| o.key == full))
                .ok_or_else(|| BackendError::NotFound(key.to_string()))?;
            return Ok(ObjectInfo {
                key: key.to_string(),
                size: o.size,
                mtime: o.mtime,
                etag: o.etag,
                meta: PosixMeta::default(),
                size_unknown: false,
            });
        }
        let h = raw.head_key(full).await?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size: h.size,
            mtime: h.mtime,
            etag: h.etag,
            meta: h.meta,
            size_unknown: false,
        })
    }

    pub(super) async fn get_escaped(
        &self,
        key: &str,
        full: &[u8],
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        let want = range.end - range.start;
        let data = self.raw_for(key)?.get_key(full, range, etag).await?;
        if data.len() as u64 > want {
            return Err(BackendError::Other(format!(
                "GET {key}: {} bytes for a range of {want}",
                data.len()
            )));
        }
        Ok(data)
    }

    pub(super) async fn put_escaped(
        &self,
        key: &str,
        full: &[u8],
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let size = data.len() as u64;
        let kind = self.content_type(&String::from_utf8_lossy(full));
        let etag = self.raw_for(key)?.put_key(full, data, meta, kind).await?;
        Ok(ObjectInfo {
            key: key.to_string(),
            size,
            mtime: std::time::SystemTime::now(),
            etag,
            meta: meta.clone(),
            size_unknown: false,
        })
    }

    pub(super) async fn copy_escaped(&self, from: &str, to: &str) -> Result<(), BackendError> {
        let (a, b) = (self.key_bytes(from), self.key_bytes(to));
        self.raw_for(from)?.copy_key(&a, &b).await
    }

    pub(super) async fn delete_escaped(&self, key: &str, full: &[u8]) -> Result<(), BackendError> {
        self.raw_for(key)?.delete_key(full).await
    }
}
