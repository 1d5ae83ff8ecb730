//! Uploads: a file up to the chunk size goes in one multipart request; a larger one as a
//! resumable upload in chunks of that size, resumed from the offset the server reports after
//! a dropped connection (`Content-Range: bytes */N`, answered by 308 and `Range`). An
//! existing file is updated in place (same id, sharing and comments), never created beside.
//! Every upload's MD5 is compared with the one Drive reports.

use super::api::Call;
use super::file::{self, format_time, DriveFile};
use super::tree::EntryKind;
use super::{names, ops::properties, split, DriveBackend};
use crate::backend::{BackendError, ObjectInfo, PosixMeta};
use bytes::Bytes;
use md5::{Digest, Md5};
use reqwest::Method;
use std::time::SystemTime;

/// Where an upload goes.
struct Target {
    /// The file it replaces (its id).
    existing: Option<String>,
    /// The folder it lands in.
    pid: String,
    /// Its Drive name (for a new file).
    name: String,
}

impl DriveBackend {
    async fn target(&self, key: &str) -> Result<Target, BackendError> {
        match self.entry(key).await {
            Ok((e, pid)) => match e.kind {
                EntryKind::File => Ok(Target {
                    existing: Some(e.id().to_string()),
                    pid,
                    name: e.file.name.clone(),
                }),
                EntryKind::Doc { .. } => Err(BackendError::Denied(format!(
                    "{key} is a Google document, shown as its export: it is read-only here"
                ))),
                EntryKind::Folder => Err(BackendError::Other(format!("{key} is a folder"))),
            },
            Err(BackendError::NotFound(_)) => {
                let (parent, name) = split(key);
                let pid = self.make_folder(parent, &PosixMeta::default()).await?;
                Ok(Target {
                    existing: None,
                    pid,
                    name: names::to_drive(name),
                })
            }
            Err(e) => Err(e),
        }
    }

    fn metadata(t: &Target, meta: &PosixMeta) -> serde_json::Value {
        let mtime = meta.mtime.unwrap_or_else(SystemTime::now);
        let mut m = serde_json::json!({
            "modifiedTime": format_time(mtime),
            "appProperties": properties(meta),
        });
        if t.existing.is_none() {
            m["name"] = t.name.clone().into();
            m["parents"] = serde_json::json!([t.pid]);
        }
        m
    }

    fn upload_call(&self, t: &Target, kind: &str, key: &str) -> Call {
        let (method, url) = match &t.existing {
            Some(id) => (Method::PATCH, self.upload_url(&format!("files/{id}"))),
            None => (Method::POST, self.upload_url("files")),
        };
        self.call(method, url, format!("upload {key}"))
            .q("uploadType", kind)
            .q("fields", file::FIELDS)
    }

    fn finish(
        &self,
        key: &str,
        t: &Target,
        f: DriveFile,
        md5: &str,
        size: u64,
    ) -> Result<ObjectInfo, BackendError> {
        if let Some(theirs) = f.md5_checksum.as_deref() {
            if theirs != md5 {
                return Err(BackendError::Other(format!(
                    "upload {key}: Google Drive holds MD5 {theirs}, the file has {md5}; the \
                     file stays staged and is sent again"
                )));
            }
        }
        if f.size() != size {
            return Err(BackendError::Other(format!(
                "upload {key}: Google Drive holds {} bytes of {size}",
                f.size()
            )));
        }
        let info = ObjectInfo {
            size_unknown: false,
            key: key.to_string(),
            size,
            mtime: f.mtime(),
            etag: f.etag(),
            meta: f.meta(),
        };
        self.patch_folder(&t.pid, Some((f, None)), None);
        Ok(info)
    }

    /// Store `data` as `key` in one multipart request.
    pub(super) async fn upload_bytes(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let t = self.target(key).await?;
        let md5 = hex(&Md5::digest(&data));
        let size = data.len() as u64;
        let boundary = format!("cloudmount-{}", md5);
        let mut body = Vec::with_capacity(data.len() + 1024);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n",
                Self::metadata(&t, meta)
            )
            .as_bytes(),
        );
        body.extend_from_slice(&data);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let mut call = self.upload_call(&t, "multipart", key).h(
            "content-type",
            format!("multipart/related; boundary={boundary}"),
        );
        call.body = Some(Bytes::from(body));
        let f: DriveFile = self.api.json(&call).await?;
        self.finish(key, &t, f, &md5, size)
    }

    /// Store the `size` bytes of open file `file` as `key`.
    pub(super) async fn upload_file(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        if size <= self.settings.chunk_size {
            let data = crate::backend::raw::read_range(file, 0..size).await?;
            return self.upload_bytes(key, data, meta).await;
        }
        let t = self.target(key).await?;
        let mut restarted = false;
        loop {
            match self.resumable(key, &t, file, size, meta).await {
                Err(BackendError::NotFound(e)) if !restarted => {
                    tracing::warn!(key, error = %e, "the resumable upload session is gone; starting the upload again");
                    restarted = true;
                }
                r => return r,
            }
        }
    }

    /// MD5 of the `size` bytes of `file`, read in chunks.
    async fn md5_of(&self, file: &std::fs::File, size: u64) -> Result<String, BackendError> {
        let mut hasher = Md5::new();
        let mut at = 0;
        while at < size {
            let end = (at + self.settings.chunk_size).min(size);
            hasher.update(&crate::backend::raw::read_range(file, at..end).await?);
            at = end;
        }
        Ok(hex(&hasher.finalize()))
    }

    /// A new resumable session for `t`.
    async fn start_session(
        &self,
        key: &str,
        t: &Target,
        size: u64,
        meta: &PosixMeta,
    ) -> Result<String, BackendError> {
        let start = self
            .upload_call(t, "resumable", key)
            .h("x-upload-content-type", "application/octet-stream")
            .h("x-upload-content-length", size.to_string())
            .json(&Self::metadata(t, meta));
        let r = self.api.send(&start).await?;
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                BackendError::Other(format!("upload {key}: Google Drive gave no upload session"))
            })
    }

    /// Ask session `uri` how much it holds: 308 (with `Range`) or the finished file.
    async fn session_status(
        &self,
        key: &str,
        uri: &str,
        size: u64,
    ) -> Result<reqwest::Response, BackendError> {
        let mut status = Call::new(
            Method::PUT,
            uri.to_string(),
            format!("upload {key}: status"),
        )
        .h("content-range", format!("bytes */{size}"));
        status.body = Some(Bytes::new());
        self.api.send(&status).await
    }

    async fn resumable(
        &self,
        key: &str,
        t: &Target,
        file: &std::fs::File,
        size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        let md5 = self.md5_of(file, size).await?;
        // A session an earlier run left for this very content goes on where it stopped.
        let skey = format!("{}\n{key}", crate::backend::Backend::describe(self));
        let kept = self.sessions.find(&skey, size, &md5);
        let (session, first) = match kept {
            Some(uri) => match self.session_status(key, &uri, size).await {
                Ok(r) => {
                    tracing::info!(key, "resuming the upload an earlier run started");
                    (uri, Some(r))
                }
                Err(e) => {
                    tracing::info!(key, error = %e, "the upload session an earlier run started is gone; starting again");
                    self.sessions.forget(&skey, size, &md5);
                    (self.start_session(key, t, size, meta).await?, None)
                }
            },
            None => (self.start_session(key, t, size, meta).await?, None),
        };
        self.sessions.keep(&skey, size, &md5, &session);
        let result = self
            .send_chunks(key, t, file, size, &session, first, &md5)
            .await;
        match &result {
            Ok(_) | Err(BackendError::NotFound(_)) | Err(BackendError::Changed(_)) => {
                self.sessions.forget(&skey, size, &md5)
            }
            Err(_) => {}
        }
        result
    }

    /// Send what session `uri` does not hold yet (`first`: its answer to a status query; none
    /// for a new session, which holds nothing).
    #[allow(clippy::too_many_arguments)]
    async fn send_chunks(
        &self,
        key: &str,
        t: &Target,
        file: &std::fs::File,
        size: u64,
        uri: &str,
        first: Option<reqwest::Response>,
        md5: &str,
    ) -> Result<ObjectInfo, BackendError> {
        let most_failures = self.settings.limits.retries * 2 + 2;
        let mut failures = 0usize;
        let mut offset = 0u64;
        let mut pending = first;
        loop {
            if let Some(r) = pending.take() {
                if r.status().as_u16() != 308 {
                    let body = r.bytes().await.map_err(|e| {
                        BackendError::Unreachable(format!("upload {key}: {}", super::api::why(&e)))
                    })?;
                    let f: DriveFile = serde_json::from_slice(&body).map_err(|e| {
                        BackendError::Other(format!(
                            "upload {key}: Google Drive answered something unexpected: {e}"
                        ))
                    })?;
                    return self.finish(key, t, f, md5, size);
                }
                offset = stored(&r);
            }
            if offset >= size {
                // Everything is there but the server did not say the file is done: ask again.
                failures += 1;
                if failures > most_failures {
                    return Err(BackendError::Other(format!(
                        "upload {key}: Google Drive holds every byte but never finished the file"
                    )));
                }
                pending = Some(self.session_status(key, uri, size).await?);
                continue;
            }
            let end = (offset + self.settings.chunk_size).min(size);
            let data = crate::backend::raw::read_range(file, offset..end).await?;
            let mut put = Call::new(
                Method::PUT,
                uri.to_string(),
                format!("upload {key} at {offset}"),
            )
            .h(
                "content-range",
                format!("bytes {offset}-{}/{size}", end - 1),
            );
            put.body = Some(data);
            put.once = true;
            pending = Some(match self.api.send(&put).await {
                Ok(r) => r,
                Err(BackendError::NotFound(e)) => return Err(BackendError::NotFound(e)),
                Err(e) => {
                    failures += 1;
                    if failures > most_failures {
                        return Err(e);
                    }
                    tracing::info!(key, offset, error = %e, "a chunk of a resumable upload failed; asking the server how much it has");
                    self.session_status(key, uri, size).await?
                }
            });
        }
    }
}

/// The bytes a 308 answer says the server holds (`Range: bytes=0-N`; none without it).
fn stored(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes=0-"))
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |n| n + 1)
}

/// Lower-case hex.
pub(super) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
