//! Sending staged content to the store: whole, or, for an edited object on a store that
//! copies parts on the server, only the changed parts; fetching the stored bytes a staged
//! file does not hold yet where a read or an upload needs them; and finishing the uploads a
//! killed daemon left in the journal.

use super::{parent_key, CloudFs};
use crate::backend::{BackendError, ObjectInfo, PartSource, PosixMeta};
use crate::write::Staged;
use std::ops::Range;

impl CloudFs {
    /// Fetch the stored bytes `range` of `st` still lacks (the version it started as; a
    /// version replaced meanwhile fails with [`BackendError::Changed`] rather than mixing).
    pub(super) async fn fetch_missing(
        &self,
        st: &mut Staged,
        range: Range<u64>,
    ) -> Result<(), BackendError> {
        let part = self.cfg.upload_part_size.max(1 << 20);
        for gap in st.missing(range) {
            let mut at = gap.start;
            while at < gap.end {
                let end = (at + part).min(gap.end);
                let data = match self
                    .backend
                    .get_range(&st.key, at..end, st.base_etag.as_deref())
                    .await
                {
                    Ok(d) => d,
                    Err(e @ BackendError::Changed(_)) => {
                        tracing::warn!(key = %st.key, staged = %st.path().display(), "the object was replaced on the server while open for writing, and the bytes this file did not change cannot be fetched any more; what was written stays in the staged file");
                        return Err(e);
                    }
                    Err(e) => return Err(e),
                };
                st.fill(at, &data)
                    .map_err(|e| BackendError::Other(format!("staging: {e}")))?;
                at = end;
            }
        }
        Ok(())
    }

    /// Send staged content whole, or, for an edited object on a store that copies parts on
    /// the server, only its changed parts (copying the rest from `base`, the entity tag of
    /// the version it started as, which the server still has; the copies are conditional on
    /// it too). Fetches the stored bytes the upload needs and the file lacks.
    pub(super) async fn put_staged(
        &self,
        st: &mut Staged,
        base: Option<String>,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let size = st.size();
        // Whole MiB parts, within S3's 10,000 parts.
        let part = self
            .cfg
            .upload_part_size
            .max(size.div_ceil(10_000).div_ceil(1 << 20) << 20);
        let plan = match (base, self.backend.copies_parts()) {
            (Some(etag), true) => st.reuse_plan(part).map(|p| (etag, p)),
            _ => None,
        };
        if let Some((etag, plan)) = plan {
            match self.put_reusing(st, &plan, &etag, meta).await {
                Ok(info) => return Ok(info),
                Err(e) => {
                    tracing::debug!(key = %st.key, error = %e, "server-side part copies failed; sending the whole file");
                }
            }
        }
        self.fetch_missing(st, 0..size).await?;
        self.backend
            .put_file(&st.key, st.path(), size, self.cfg.upload_part_size, meta)
            .await
    }

    async fn put_reusing(
        &self,
        st: &mut Staged,
        plan: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let mut sent = 0;
        for p in plan {
            if let PartSource::Send(r) = p {
                self.fetch_missing(st, r.clone()).await?;
                sent += r.end - r.start;
            }
        }
        let size = st.size();
        let info = self
            .backend
            .put_file_reusing(&st.key, st.path(), size, plan, etag, meta)
            .await?;
        tracing::info!(key = %st.key, size, sent, copied = size - sent, "uploaded the changed parts; the rest was copied on the server");
        Ok(info)
    }

    /// Upload closed content an earlier run left pending (it was killed, or the store was
    /// unreachable at close). Runs once after mounting; what fails stays for the next mount.
    pub async fn resume_uploads(&self) {
        let Some(area) = &self.staging else {
            return;
        };
        for p in area.pending() {
            let mut st = match area.reopen(&p) {
                Ok(st) => st,
                Err(e) => {
                    tracing::warn!(staged = %p.data.display(), error = %e, "cannot read a pending upload; it is tried again at the next mount");
                    continue;
                }
            };
            let key = st.key.clone();
            let _counted = self.activity.uploading();
            tracing::info!(%key, size = st.size(), staged = %p.data.display(), "resuming an upload left by an earlier run");
            // The rest of partly staged content comes from the version it started as.
            let base = match &st.base_etag {
                Some(b) => match self.backend.head(&key).await {
                    Ok(now) if now.etag.as_deref() == Some(b.as_str()) => Some(b.clone()),
                    _ => None,
                },
                None => None,
            };
            match self.put_staged(&mut st, base, &p.record.meta).await {
                Ok(_) => {
                    self.dirs.invalidate(&parent_key(&key));
                    tracing::info!(%key, "resumed upload done");
                }
                Err(e) => {
                    st.keep();
                    tracing::warn!(%key, error = %e, staged = %p.data.display(), "resumed upload failed; it is tried again at the next mount");
                }
            }
        }
    }
}
