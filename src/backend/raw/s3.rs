//! S3: a multipart upload whose unchanged parts are UploadPartCopy requests from the version
//! being replaced (`x-amz-copy-source-if-match` on its ETag): CreateMultipartUpload,
//! UploadPart / UploadPartCopy, CompleteMultipartUpload, AbortMultipartUpload on failure.
//! Requests are signed with object_store's SigV4 signer and the store's credentials.

use super::{deleted, escape, etag_header, execute, meta_headers, read_range, xml_text};
use super::{xml_blocks, PendingUpload};
use super::{BackendError, PartSource, PosixMeta, PARTS_IN_FLIGHT};
use super::{RawHead, RawStore, Request};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::{HttpClient, HttpConnector, ReqwestConnector};
use object_store::ClientOptions;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Arc;
use std::time::Duration;

/// What S3 keeps unencoded in a path (RFC 3986 unreserved characters and `/`).
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// What a query value keeps unencoded (RFC 3986 unreserved characters).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

mod keys;

/// UploadPartCopy for one bucket.
pub struct S3Raw {
    client: HttpClient,
    store: Arc<AmazonS3>,
    /// `scheme://host[:port]/bucket` or `scheme://bucket.host`, without a trailing `/`.
    bucket_url: String,
    /// The bucket, for `x-amz-copy-source`.
    bucket: String,
    region: String,
    /// Hash bodies into signatures (see `MountConfig::signs_payload`).
    sign_payload: bool,
    /// Tries of a failed request after the first (`-o retries=`).
    retries: u32,
    /// For keys with `.`/`..` segments (see [`super::literal`]); `None`: such keys are refused.
    literal: Option<Arc<super::literal::LiteralClient>>,
}

impl std::fmt::Debug for S3Raw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Raw")
            .field("bucket_url", &self.bucket_url)
            .finish_non_exhaustive()
    }
}

impl S3Raw {
    /// For objects of `bucket` at `bucket_url`, with the credentials of `store`.
    pub fn new(
        store: Arc<AmazonS3>,
        options: &ClientOptions,
        bucket_url: String,
        bucket: &str,
        region: &str,
    ) -> Result<Self, String> {
        let client = ReqwestConnector::default()
            .connect(options)
            .map_err(|e| format!("HTTP client for server-side part copies: {e}"))?;
        Ok(S3Raw {
            client,
            store,
            bucket_url: bucket_url.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            region: region.to_string(),
            sign_payload: false,
            retries: super::RETRIES,
            literal: None,
        })
    }

    /// Reach keys with `.`/`..` segments too, through a client that sends URL paths as
    /// written (requests time out after `timeout`); without TLS roots it stays off.
    pub fn literal_requests(mut self, timeout: Duration, connect_timeout: Duration) -> Self {
        match super::literal::LiteralClient::new(timeout, connect_timeout) {
            Ok(c) => self.literal = Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!(error = %e, "keys with `.` or `..` segments cannot be read or written")
            }
        }
        self
    }

    /// Try a failed request `retries` more times (`-o retries=`).
    pub fn retrying(mut self, retries: usize) -> Self {
        self.retries = u32::try_from(retries).unwrap_or(u32::MAX);
        self
    }

    /// Hash request bodies into their signatures.
    pub fn signing_payloads(mut self, sign: bool) -> Self {
        self.sign_payload = sign;
        self
    }

    fn url(&self, key: &str, query: &str) -> String {
        format!(
            "{}/{}{query}",
            self.bucket_url,
            utf8_percent_encode(key, PATH)
        )
    }

    /// Sign and send one request.
    async fn send(&self, r: Request<'_>) -> Result<(http::HeaderMap, Bytes), BackendError> {
        self.send_via(r, None).await
    }

    /// Sign and send one request, through `literal` when given (its URL path goes out as
    /// written).
    async fn send_via(
        &self,
        r: Request<'_>,
        literal: Option<&super::literal::LiteralClient>,
    ) -> Result<(http::HeaderMap, Bytes), BackendError> {
        super::with_retries(self.retries, || async {
            let mut request = r.build()?;
            let credential = self
                .store
                .credentials()
                .get_credential()
                .await
                .map_err(|e| BackendError::Denied(format!("{}: credentials: {e}", r.what)))?;
            AwsAuthorizer::new(&credential, "s3", &self.region)
                .with_sign_payload(self.sign_payload)
                .try_authorize(&mut request, None)
                .map_err(|e| BackendError::Other(format!("{}: {e}", r.what)))?;
            match literal {
                Some(l) => l.execute(request, r.body.clone(), r.what).await,
                None => execute(&self.client, request, r.what).await,
            }
        })
        .await
    }

    /// Send or copy every part, a few at a time; their ETags in order.
    async fn parts(
        &self,
        key: &str,
        file: &std::fs::File,
        parts: &[PartSource],
        etag: &str,
        upload_id: &str,
    ) -> Result<Vec<String>, BackendError> {
        let id = utf8_percent_encode(upload_id, PATH).to_string();
        let source = format!("/{}/{}", self.bucket, utf8_percent_encode(key, PATH));
        let results: Vec<Result<String, BackendError>> =
            futures::stream::iter(parts.iter().cloned().enumerate())
                .map(|(i, part)| {
                    let url = self.url(key, &format!("?partNumber={}&uploadId={id}", i + 1));
                    let source = source.clone();
                    async move {
                        match part {
                            PartSource::Copy(r) => {
                                let headers = [
                                    ("x-amz-copy-source", source),
                                    (
                                        "x-amz-copy-source-range",
                                        format!("bytes={}-{}", r.start, r.end - 1),
                                    ),
                                    ("x-amz-copy-source-if-match", etag.to_string()),
                                ];
                                let (_, body) = self
                                    .send(Request {
                                        method: http::Method::PUT,
                                        url: &url,
                                        headers: &headers,
                                        body: Bytes::new(),
                                        what: "UploadPartCopy",
                                    })
                                    .await?;
                                xml_text(&String::from_utf8_lossy(&body), "ETag").ok_or_else(|| {
                                    BackendError::Other(
                                        "UploadPartCopy: no ETag in the answer".into(),
                                    )
                                })
                            }
                            PartSource::Send(r) => {
                                let data = read_range(file, r).await?;
                                let (headers, _) = self
                                    .send(Request {
                                        method: http::Method::PUT,
                                        url: &url,
                                        headers: &[],
                                        body: data,
                                        what: "UploadPart",
                                    })
                                    .await?;
                                etag_header(&headers, "UploadPart")
                            }
                        }
                    }
                })
                .buffered(PARTS_IN_FLIGHT)
                .collect()
                .await;
        results.into_iter().collect()
    }

    async fn complete(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<Option<String>, BackendError> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                escape(e)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let query = format!("?uploadId={}", utf8_percent_encode(upload_id, PATH));
        let (_, body) = self
            .send(Request {
                method: http::Method::POST,
                url: &self.url(key, &query),
                headers: &[],
                body: Bytes::from(xml),
                what: "CompleteMultipartUpload",
            })
            .await?;
        Ok(xml_text(&String::from_utf8_lossy(&body), "ETag"))
    }
}

#[async_trait]
impl RawStore for S3Raw {
    async fn put_marker(&self, key: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        let mut headers = vec![("content-type", "application/x-directory".to_string())];
        let names = meta_headers("x-amz-meta-", meta);
        headers.extend(names.iter().map(|(n, v)| (n.as_str(), v.clone())));
        self.send(Request {
            method: http::Method::PUT,
            url: &self.url(key, ""),
            headers: &headers,
            body: Bytes::new(),
            what: "PutObject (directory marker)",
        })
        .await
        .map(|_| ())
    }

    async fn delete_marker(&self, key: &str) -> Result<(), BackendError> {
        deleted(
            self.send(Request {
                method: http::Method::DELETE,
                url: &self.url(key, ""),
                headers: &[],
                body: Bytes::new(),
                what: "DeleteObject (directory marker)",
            })
            .await,
        )
    }

    async fn list(
        &self,
        prefix: &[u8],
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<Option<super::list::RawPage>, BackendError> {
        let enc = |s: &str| utf8_percent_encode(s, QUERY).to_string();
        let mut query = format!(
            "?list-type=2&delimiter=%2F&encoding-type=url&max-keys={}&prefix={}",
            max_keys.clamp(1, 1000),
            percent_encoding::percent_encode(prefix, QUERY)
        );
        if let Some(t) = token {
            query.push_str(&format!("&continuation-token={}", enc(t)));
        }
        let url = format!("{}/{query}", self.bucket_url);
        let (_, body) = self
            .send(Request {
                method: http::Method::GET,
                url: &url,
                headers: &[],
                body: Bytes::new(),
                what: "ListObjectsV2",
            })
            .await?;
        Ok(Some(super::list::parse_list_v2(&String::from_utf8_lossy(
            &body,
        ))))
    }

    async fn stale_uploads(
        &self,
        prefix: &str,
        before: std::time::SystemTime,
    ) -> Result<Vec<PendingUpload>, BackendError> {
        let enc = |s: &str| utf8_percent_encode(s, QUERY).to_string();
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        // Bounded: 1,000 pages of 1,000 uploads.
        for _ in 0..1000 {
            let mut query = format!("?uploads=&prefix={}", enc(prefix));
            if !key_marker.is_empty() {
                query.push_str(&format!(
                    "&key-marker={}&upload-id-marker={}",
                    enc(&key_marker),
                    enc(&id_marker)
                ));
            }
            let url = format!("{}/{query}", self.bucket_url);
            let (_, body) = self
                .send(Request {
                    method: http::Method::GET,
                    url: &url,
                    headers: &[],
                    body: Bytes::new(),
                    what: "ListMultipartUploads",
                })
                .await?;
            let text = String::from_utf8_lossy(&body);
            for u in xml_blocks(&text, "Upload") {
                let (Some(key), Some(id)) = (xml_text(u, "Key"), xml_text(u, "UploadId")) else {
                    continue;
                };
                let initiated = xml_text(u, "Initiated")
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| std::time::SystemTime::from(t.with_timezone(&chrono::Utc)));
                if let Some(initiated) = initiated.filter(|t| *t < before) {
                    out.push(PendingUpload {
                        key,
                        upload_id: id,
                        initiated,
                    });
                }
            }
            if xml_text(&text, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            key_marker = xml_text(&text, "NextKeyMarker").unwrap_or_default();
            id_marker = xml_text(&text, "NextUploadIdMarker").unwrap_or_default();
            if key_marker.is_empty() {
                return Ok(out);
            }
        }
        Ok(out)
    }

    async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), BackendError> {
        let query = format!("?uploadId={}", utf8_percent_encode(upload_id, QUERY));
        deleted(
            self.send(Request {
                method: http::Method::DELETE,
                url: &self.url(key, &query),
                headers: &[],
                body: Bytes::new(),
                what: "AbortMultipartUpload",
            })
            .await,
        )
    }

    fn addresses_keys(&self) -> bool {
        true
    }

    fn addresses_dot_keys(&self) -> bool {
        self.literal.is_some()
    }

    async fn head_key(&self, key: &[u8]) -> Result<RawHead, BackendError> {
        self.head_bytes(key).await
    }

    async fn get_key(
        &self,
        key: &[u8],
        range: std::ops::Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        self.get_bytes(key, range, etag).await
    }

    async fn put_key(
        &self,
        key: &[u8],
        data: Bytes,
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<Option<String>, BackendError> {
        self.put_bytes(key, data, meta, content_type).await
    }

    async fn copy_key(&self, from: &[u8], to: &[u8]) -> Result<(), BackendError> {
        self.copy_bytes(from, to, None, None).await.map(|_| ())
    }

    async fn set_meta(
        &self,
        key: &[u8],
        meta: &PosixMeta,
        content_type: Option<&str>,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        let etag = self
            .copy_bytes(key, key, Some((meta, content_type)), Some(etag))
            .await?;
        Ok(Some(etag))
    }

    async fn copy_key_retyped(
        &self,
        from: &[u8],
        to: &[u8],
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<(), BackendError> {
        self.copy_bytes(from, to, Some((meta, content_type)), None)
            .await
            .map(|_| ())
    }

    async fn delete_key(&self, key: &[u8]) -> Result<(), BackendError> {
        self.delete_bytes(key).await
    }

    async fn upload(
        &self,
        path: &object_store::path::Path,
        file: &std::fs::File,
        parts: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<Option<String>, BackendError> {
        let key = path.as_ref();
        let headers = meta_headers("x-amz-meta-", meta);
        let mut headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        if let Some(t) = content_type {
            headers.push(("content-type", t.to_string()));
        }
        let (_, body) = self
            .send(Request {
                method: http::Method::POST,
                url: &self.url(key, "?uploads"),
                headers: &headers,
                body: Bytes::new(),
                what: "CreateMultipartUpload",
            })
            .await?;
        let upload_id = xml_text(&String::from_utf8_lossy(&body), "UploadId").ok_or_else(|| {
            BackendError::Other("CreateMultipartUpload: no UploadId in the answer".into())
        })?;
        match self.parts(key, file, parts, etag, &upload_id).await {
            Ok(etags) => self.complete(key, &upload_id, &etags).await,
            Err(e) => {
                let query = format!("?uploadId={}", utf8_percent_encode(&upload_id, PATH));
                let abort = self
                    .send(Request {
                        method: http::Method::DELETE,
                        url: &self.url(key, &query),
                        headers: &[],
                        body: Bytes::new(),
                        what: "AbortMultipartUpload",
                    })
                    .await;
                if let Err(a) = abort {
                    tracing::debug!(key, error = %a, "abort failed; a lifecycle rule must clean the parts");
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_as_s3_signs_them() {
        assert_eq!(
            utf8_percent_encode("dir/a b+c~d_e.f(1)", PATH).to_string(),
            "dir/a%20b%2Bc~d_e.f%281%29"
        );
    }
}
