//! A streaming upload through object_store's multipart API (files still being written).

use super::super::{BackendError, ObjectInfo, PosixMeta};
use super::{written, UPLOAD_CONCURRENCY};
use async_trait::async_trait;
use bytes::Bytes;
use object_store::PutPayload;
use std::fmt;

/// A streaming multipart upload through object_store: every `put_part` is one part, as the
/// caller sized it (see [`super::PartPlan::stream`]), at most `UPLOAD_CONCURRENCY` in flight
/// (the mutexes only make it `Sync`; every use has `&mut self`).
pub(super) struct StoreUpload {
    key: String,
    meta: PosixMeta,
    upload: tokio::sync::Mutex<Option<Box<dyn object_store::MultipartUpload>>>,
    in_flight: tokio::sync::Mutex<tokio::task::JoinSet<object_store::Result<()>>>,
}

impl StoreUpload {
    /// Stream parts of `key` (carrying `meta`) into `upload`, begun already.
    pub(super) fn new(
        key: &str,
        meta: &PosixMeta,
        upload: Box<dyn object_store::MultipartUpload>,
    ) -> Self {
        StoreUpload {
            key: key.to_string(),
            meta: meta.clone(),
            upload: tokio::sync::Mutex::new(Some(upload)),
            in_flight: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
        }
    }
}

impl fmt::Debug for StoreUpload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreUpload")
            .field("key", &self.key)
            .finish()
    }
}

/// Wait for one part in flight; its error, if it failed.
async fn one_part(
    set: &mut tokio::task::JoinSet<object_store::Result<()>>,
) -> Result<(), BackendError> {
    match set.join_next().await {
        Some(Ok(Ok(()))) | None => Ok(()),
        Some(Ok(Err(e))) => Err(e.into()),
        Some(Err(e)) => Err(BackendError::Other(format!("a part upload ended: {e}"))),
    }
}

#[async_trait]
impl super::super::Upload for StoreUpload {
    async fn put_part(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
        let set = self.in_flight.get_mut();
        while set.len() >= UPLOAD_CONCURRENCY {
            one_part(set).await?;
        }
        let upload =
            self.upload.get_mut().as_mut().ok_or_else(|| {
                BackendError::Other(format!("upload of {} already ended", self.key))
            })?;
        set.spawn(upload.put_part(PutPayload::from_iter(data)));
        Ok(())
    }

    async fn complete(mut self: Box<Self>, size: u64) -> Result<ObjectInfo, BackendError> {
        let mut upload =
            self.upload.get_mut().take().ok_or_else(|| {
                BackendError::Other(format!("upload of {} already ended", self.key))
            })?;
        let set = self.in_flight.get_mut();
        while !set.is_empty() {
            if let Err(e) = one_part(set).await {
                set.abort_all();
                let _ = upload.abort().await;
                return Err(e);
            }
        }
        let res = match upload.complete().await {
            Ok(r) => r,
            Err(e) => {
                let _ = upload.abort().await;
                return Err(e.into());
            }
        };
        Ok(written(&self.key, size, res, &self.meta))
    }

    async fn abort(mut self: Box<Self>) {
        self.in_flight.get_mut().abort_all();
        if let Some(mut u) = self.upload.get_mut().take() {
            let _ = u.abort().await;
        }
    }
}
