//! Requests object_store does not make, for S3 ([`s3`]) and Azure ([`azure`]), authorized
//! with object_store's own signers and credentials and sent through its HTTP client:
//!
//! - re-uploads that copy unchanged parts of the stored version on the server (S3
//!   UploadPartCopy, Azure Put Block From URL), so a small edit of a big object sends only the
//!   parts that changed. Every copy is conditional on the entity tag of the version being
//!   replaced, so a version written meanwhile is never mixed in; on any failure the upload is
//!   abandoned and the caller sends the file whole;
//! - directory marker objects (`dir/`, as s3fs writes them), whose names object_store's
//!   paths cannot hold.

pub mod azure;
pub mod list;
pub mod literal;
pub mod s3;

use super::{BackendError, PartSource, PosixMeta};
use async_trait::async_trait;
use bytes::Bytes;
use object_store::client::{HttpClient, HttpRequest, HttpRequestBody};
use std::ops::Range;

/// Parts sent or copied at once.
pub const PARTS_IN_FLIGHT: usize = 4;

/// The requests of one store that object_store does not make.
#[async_trait]
pub trait RawStore: Send + Sync + std::fmt::Debug {
    /// Create the directory marker object `key` (ending in `/`, full key in the bucket) with
    /// `meta`, replacing one that exists.
    async fn put_marker(&self, key: &str, meta: &PosixMeta) -> Result<(), BackendError>;

    /// Delete the directory marker object `key` (a missing one is fine).
    async fn delete_marker(&self, key: &str) -> Result<(), BackendError>;

    /// The metadata of the directory marker object `key` (full key); `None` without one.
    async fn marker_meta(&self, key: &str) -> Result<Option<PosixMeta>, BackendError> {
        if !self.addresses_keys() {
            return Ok(None);
        }
        match self.head_key(key.as_bytes()).await {
            Ok(h) => Ok(Some(h.meta)),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether the directory marker object `key` exists, for stores whose listings through
    /// object_store do not show it (Azure); `None` when listings do.
    async fn has_marker(&self, key: &str) -> Result<Option<bool>, BackendError> {
        let _ = key;
        Ok(None)
    }

    /// One page of the objects and common prefixes directly under the full key prefix
    /// `prefix` (delimiter `/`), with keys as bytes, for stores whose object_store listing
    /// fails on keys it cannot parse; `None` when object_store's listing is to be used.
    async fn list(
        &self,
        prefix: &[u8],
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<Option<list::RawPage>, BackendError> {
        let _ = (prefix, token, max_keys);
        Ok(None)
    }

    /// Multipart uploads left unfinished under the full key prefix `prefix` that were started
    /// before `before` (S3's ListMultipartUploads); stores without them answer none.
    async fn stale_uploads(
        &self,
        prefix: &str,
        before: std::time::SystemTime,
    ) -> Result<Vec<PendingUpload>, BackendError> {
        let _ = (prefix, before);
        Ok(Vec::new())
    }

    /// Abort the multipart upload `upload_id` of full key `key`.
    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), BackendError> {
        let _ = (key, upload_id);
        Ok(())
    }

    /// Replace the metadata of object `key` (full key) with `meta` and `content_type` without
    /// sending its content (S3: a copy onto itself; Azure: Set Blob Metadata), while its
    /// entity tag is still `etag` (else `Changed`); the new entity tag.
    async fn set_meta(
        &self,
        key: &[u8],
        meta: &PosixMeta,
        content_type: Option<&str>,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        let _ = (meta, content_type, etag);
        Err(BackendError::Unsupported(format!(
            "{}: metadata changes without an upload",
            String::from_utf8_lossy(key)
        )))
    }

    /// Whether the `*_key` requests below are offered.
    fn addresses_keys(&self) -> bool {
        false
    }

    /// Whether they also reach keys with a `.` or `..` segment (which need a URL path sent
    /// as written: [`literal`]).
    fn addresses_dot_keys(&self) -> bool {
        false
    }

    /// Metadata of the object with full key `key` (bytes: it need not be UTF-8), for keys
    /// object_store cannot address ([`crate::backend::escaped`]).
    async fn head_key(&self, key: &[u8]) -> Result<RawHead, BackendError> {
        Err(unsupported_key(key))
    }

    /// Bytes `range` of object `key` (see [`RawStore::head_key`]), while it is `etag`.
    async fn get_key(
        &self,
        key: &[u8],
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        let _ = (range, etag);
        Err(unsupported_key(key))
    }

    /// Store `data` as object `key` with `meta` (and `content_type`); its entity tag.
    async fn put_key(
        &self,
        key: &[u8],
        data: Bytes,
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<Option<String>, BackendError> {
        let _ = (data, meta, content_type);
        Err(unsupported_key(key))
    }

    /// Copy object `from` to `to` on the server, metadata included.
    async fn copy_key(&self, from: &[u8], to: &[u8]) -> Result<(), BackendError> {
        let _ = to;
        Err(unsupported_key(from))
    }

    /// Copy object `from` to `to` on the server with `meta` and `content_type` instead of the
    /// source's (s3fs sets a renamed object's Content-Type from its new name).
    async fn copy_key_retyped(
        &self,
        from: &[u8],
        to: &[u8],
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<(), BackendError> {
        let _ = (to, meta, content_type);
        Err(unsupported_key(from))
    }

    /// Delete object `key` (a missing one is fine).
    async fn delete_key(&self, key: &[u8]) -> Result<(), BackendError> {
        Err(unsupported_key(key))
    }

    /// Store open local file `file` as object `path` from `parts` (in order, covering it),
    /// the `Copy` ones taken from `path`'s current version, which must still be `etag`, with
    /// `meta` and `content_type`. Returns the new object's entity tag.
    async fn upload(
        &self,
        path: &object_store::path::Path,
        file: &std::fs::File,
        parts: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<Option<String>, BackendError>;
}

/// What a HEAD of an object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHead {
    /// Size in bytes.
    pub size: u64,
    /// Last modification.
    pub mtime: std::time::SystemTime,
    /// Entity tag, quotes included.
    pub etag: Option<String>,
    /// Stored POSIX attributes.
    pub meta: PosixMeta,
}

/// Refusal of a request for a key this store's raw requests cannot address.
pub fn unsupported_key(key: &[u8]) -> BackendError {
    BackendError::Unsupported(format!(
        "{:?}: this store cannot address the key with its own requests",
        String::from_utf8_lossy(key)
    ))
}

/// A multipart upload the server holds unfinished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    /// Full key in the bucket.
    pub key: String,
    /// The upload's id.
    pub upload_id: String,
    /// When it was started.
    pub initiated: std::time::SystemTime,
}

/// The POSIX attributes in the metadata headers named `prefix` + name of an answer.
pub fn meta_of_headers(headers: &http::HeaderMap, prefix: &str) -> PosixMeta {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().strip_prefix(prefix)?, v.to_str().ok()?)))
        .collect();
    PosixMeta::from_stored(pairs)
}

/// `meta` as metadata headers named `prefix` + name (`x-amz-meta-`, `x-ms-meta-`).
pub fn meta_headers(prefix: &str, meta: &PosixMeta) -> Vec<(String, String)> {
    meta.to_pairs()
        .into_iter()
        .map(|(n, v)| (format!("{prefix}{n}"), v))
        .collect()
}

/// The result of a delete: a missing object is fine.
pub fn deleted(r: Result<(http::HeaderMap, Bytes), BackendError>) -> Result<(), BackendError> {
    match r {
        Ok(_) | Err(BackendError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A request to make with [`execute`].
pub struct Request<'a> {
    /// HTTP method.
    pub method: http::Method,
    /// Full URL.
    pub url: &'a str,
    /// Extra headers.
    pub headers: &'a [(&'a str, String)],
    /// Body.
    pub body: Bytes,
    /// The operation's name, for errors (e.g. `UploadPartCopy`).
    pub what: &'a str,
}

impl Request<'_> {
    /// The HTTP request object_store's client sends.
    pub fn build(&self) -> Result<HttpRequest, BackendError> {
        let mut builder = http::Request::builder()
            .method(self.method.clone())
            .uri(self.url);
        for (name, value) in self.headers {
            builder = builder.header(*name, value.as_str());
        }
        builder
            .body(HttpRequestBody::from(self.body.clone()))
            .map_err(|e| BackendError::Other(format!("{}: {e}", self.what)))
    }
}

/// Send `request` (already authorized); the answer's headers and body when it succeeded.
/// A 200 answer whose body is an `<Error>` (S3's CompleteMultipartUpload can do that) fails.
pub async fn execute(
    client: &HttpClient,
    request: HttpRequest,
    what: &str,
) -> Result<(http::HeaderMap, Bytes), BackendError> {
    let response = client
        .execute(request)
        .await
        .map_err(|e| BackendError::Unreachable(format!("{what}: {e}")))?;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = body
        .bytes()
        .await
        .map_err(|e| BackendError::Other(format!("{what}: {e}")))?;
    answer(status, parts.headers, body, what)
}

/// What an answer means: its headers and body when it succeeded, else the error its status
/// (and S3 error code) says.
pub fn answer(
    status: http::StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
    what: &str,
) -> Result<(http::HeaderMap, Bytes), BackendError> {
    let text = String::from_utf8_lossy(&body);
    if status.is_success() && !text.contains("<Error>") {
        if !xml_complete(&text) {
            // Cut short (a wrong Content-Length, a proxy): a listing parsed from it would
            // silently miss entries.
            return Err(BackendError::Busy(format!(
                "{what}: the XML answer ends before its root element closes ({} bytes)",
                body.len()
            )));
        }
        return Ok((headers, body));
    }
    let code = xml_text(&text, "Code").unwrap_or_default();
    let message = format!("{what}: HTTP {status} {code}");
    Err(match status.as_u16() {
        401 | 403 => BackendError::Denied(message),
        404 => BackendError::NotFound(message),
        412 => BackendError::Changed(message),
        // Busy or failing for now: worth another try, and no reason to stop using the
        // request kind for good.
        408 | 429 | 500..=599 => BackendError::Busy(message),
        _ => BackendError::Other(message),
    })
}

/// Whether `text`, if it is an XML document, is whole: its root element is closed at the end.
/// Anything that does not start like XML counts as whole (empty answers, other formats).
pub fn xml_complete(text: &str) -> bool {
    let mut t = text.trim();
    if let Some(rest) = t.strip_prefix("<?xml") {
        match rest.find("?>") {
            Some(end) => t = rest[end + 2..].trim_start(),
            None => return false,
        }
    }
    let Some(rest) = t.strip_prefix('<') else {
        return !text.trim_start().starts_with("<?xml");
    };
    let name_len = rest
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(rest.len());
    let root = &rest[..name_len];
    if root.is_empty() {
        return false;
    }
    let first_end = rest.find('>').unwrap_or(rest.len());
    if rest[..first_end].ends_with('/') && rest[first_end..].trim() == ">" {
        return true;
    }
    t.trim_end().ends_with(&format!("</{root}>"))
}

/// Tries of a raw request after the first, when the server could not be reached or answered
/// that it is busy or failing (timeouts, 429, 5xx), unless `-o retries=` says otherwise.
pub const RETRIES: u32 = 3;

/// Run `attempt` until it succeeds, fails for a reason a retry cannot fix, or `retries` more
/// tries failed (waiting 200 ms, 400 ms, 800 ms… between them). Every raw request is
/// idempotent or harmless to repeat (a repeated completion of an upload that went through
/// fails, and the caller then sends the file whole).
pub async fn with_retries<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T, BackendError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BackendError>>,
{
    let mut wait = std::time::Duration::from_millis(200);
    for _ in 0..retries {
        match attempt().await {
            Err(BackendError::Unreachable(e) | BackendError::Busy(e)) => {
                tracing::debug!(error = %e, ?wait, "raw request failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            done => return done,
        }
    }
    attempt().await
}

/// Bytes `range` of the open local file `file` (read on the blocking pool, through the
/// caller's descriptor: the file is never opened again by path).
pub async fn read_range(file: &std::fs::File, range: Range<u64>) -> Result<Bytes, BackendError> {
    use std::os::unix::fs::FileExt;
    let local =
        |e: std::io::Error| BackendError::Other(format!("cannot read the staged file: {e}"));
    let file = file.try_clone().map_err(local)?;
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    let read = tokio::task::spawn_blocking(move || {
        file.read_exact_at(&mut buf, range.start).map(|()| buf)
    })
    .await
    .map_err(|e| local(std::io::Error::other(e.to_string())))?;
    Ok(Bytes::from(read.map_err(local)?))
}

/// The entity tag in the headers of an answer.
pub fn etag_header(headers: &http::HeaderMap, what: &str) -> Result<String, BackendError> {
    headers
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| BackendError::Other(format!("{what}: no ETag in the answer")))
}

/// The text of the first `<tag>` element of an XML answer, entities decoded.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

/// The contents of every `<tag>…</tag>` element of `xml`, in order (not unescaped).
pub fn xml_blocks<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let Some(len) = body.find(&close) else {
            break;
        };
        out.push(&body[..len]);
        rest = &body[len + close.len()..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `s` as XML text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_xml_answers_are_told_from_whole_ones() {
        let whole = "<?xml version=\"1.0\"?>\n<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>\n";
        assert!(xml_complete(whole));
        assert!(xml_complete("<Empty/>"));
        assert!(xml_complete(""));
        assert!(xml_complete("not xml"));
        for cut in 1..whole.trim_end().len() {
            assert!(!xml_complete(&whole[..cut]), "{:?}", &whole[..cut]);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn busy_answers_are_tried_again_and_others_are_not() {
        let tries = std::sync::atomic::AtomicU32::new(0);
        let r: Result<(), _> = with_retries(RETRIES, || async {
            let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match n {
                0 => Err(BackendError::Busy("503".into())),
                1 => Err(BackendError::Unreachable("reset".into())),
                _ => Ok(()),
            }
        })
        .await;
        assert!(r.is_ok());
        assert_eq!(tries.load(std::sync::atomic::Ordering::Relaxed), 3);
        tries.store(0, std::sync::atomic::Ordering::Relaxed);
        let r: Result<(), _> = with_retries(RETRIES, || async {
            tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(BackendError::Denied("403".into()))
        })
        .await;
        assert!(matches!(r, Err(BackendError::Denied(_))));
        assert_eq!(tries.load(std::sync::atomic::Ordering::Relaxed), 1);
        tries.store(0, std::sync::atomic::Ordering::Relaxed);
        let r: Result<(), _> = with_retries(RETRIES, || async {
            tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(BackendError::Unreachable("down".into()))
        })
        .await;
        assert!(r.is_err());
        assert_eq!(
            tries.load(std::sync::atomic::Ordering::Relaxed),
            RETRIES + 1
        );
    }

    #[test]
    fn xml_answers_are_read_and_etags_escaped() {
        let a = "<?xml version=\"1.0\"?><InitiateMultipartUploadResult><Bucket>b</Bucket>\
                 <UploadId>abc&amp;def</UploadId></InitiateMultipartUploadResult>";
        assert_eq!(xml_text(a, "UploadId").as_deref(), Some("abc&def"));
        let c = "<CopyPartResult><ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag></CopyPartResult>";
        assert_eq!(
            xml_text(c, "ETag").as_deref(),
            Some("\"9b2cf535f27731c974343645a3985328\"")
        );
        assert_eq!(xml_text(c, "Missing"), None);
        assert_eq!(escape("\"x\""), "&quot;x&quot;");
    }
}
