//! Ranged GETs handed out as the body arrives (for the background fill), not collected.

use super::ObjectStoreBackend;
use crate::backend::{Backend, BackendError, ByteStream};
use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange};
use std::ops::Range;

impl ObjectStoreBackend {
    /// [`Backend::get_range_stream`]: the body as it arrives. Keys only the raw requests can
    /// reach, and empty ranges, are fetched whole.
    pub(super) async fn stream_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<ByteStream, BackendError> {
        if range.is_empty() || self.escaped_key(key).is_some() {
            let data = self.get_range(key, range, etag).await?;
            return Ok(futures::stream::once(async move { Ok(data) }).boxed());
        }
        let path = self.path(key)?;
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range)),
            if_match: etag.map(str::to_string),
            ..Default::default()
        };
        let res = self.store.get_opts(&path, opts).await?;
        Ok(res.into_stream().map_err(BackendError::from).boxed())
    }
}
