//! S3 multipart uploads that copy unchanged parts on the server (UploadPartCopy), so a small
//! edit of a big object sends only the parts that changed.
//!
//! object_store has no UploadPartCopy, so these few requests are made here, signed with
//! object_store's own SigV4 signer and credentials and sent through its HTTP client:
//! CreateMultipartUpload, UploadPart, UploadPartCopy (with `x-amz-copy-source-if-match`, so a
//! version replaced meanwhile is never mixed in), CompleteMultipartUpload, and
//! AbortMultipartUpload on any failure.

use super::{BackendError, PartSource, PosixMeta};
use bytes::Bytes;
use futures::StreamExt;
use object_store::aws::{AmazonS3, AwsAuthorizer};
use object_store::client::HttpConnector;
use object_store::client::{HttpClient, HttpRequest, HttpRequestBody, ReqwestConnector};
use object_store::ClientOptions;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

/// Parts sent or copied at once.
const PARTS_IN_FLIGHT: usize = 4;

/// What S3 keeps unencoded in a path (RFC 3986 unreserved characters and `/`).
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// The few S3 requests object_store does not make.
pub struct S3PartCopier {
    client: HttpClient,
    store: Arc<AmazonS3>,
    /// `scheme://host[:port]/bucket` or `scheme://bucket.host`, without a trailing `/`.
    bucket_url: String,
    /// The bucket, for `x-amz-copy-source`.
    bucket: String,
    region: String,
}

impl std::fmt::Debug for S3PartCopier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3PartCopier")
            .field("bucket_url", &self.bucket_url)
            .finish_non_exhaustive()
    }
}

impl S3PartCopier {
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
        Ok(S3PartCopier {
            client,
            store,
            bucket_url: bucket_url.trim_end_matches('/').to_string(),
            bucket: bucket.to_string(),
            region: region.to_string(),
        })
    }

    fn url(&self, key: &str, query: &str) -> String {
        format!(
            "{}/{}{query}",
            self.bucket_url,
            utf8_percent_encode(key, PATH)
        )
    }

    /// Sign and send one request; the answer's headers and body when it succeeded.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, String)],
        body: Bytes,
        what: &str,
    ) -> Result<(http::HeaderMap, Bytes), BackendError> {
        let fail = |e: String| BackendError::Other(format!("{what}: {e}"));
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, value.as_str());
        }
        let mut request: HttpRequest = builder
            .body(HttpRequestBody::from(body))
            .map_err(|e| fail(e.to_string()))?;
        let credential = self
            .store
            .credentials()
            .get_credential()
            .await
            .map_err(|e| BackendError::Denied(format!("{what}: credentials: {e}")))?;
        AwsAuthorizer::new(&credential, "s3", &self.region)
            .with_sign_payload(false)
            .try_authorize(&mut request, None)
            .map_err(|e| fail(e.to_string()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| BackendError::Unreachable(format!("{what}: {e}")))?;
        let status = response.status();
        let (parts, body) = response.into_parts();
        let body = body.bytes().await.map_err(|e| fail(e.to_string()))?;
        // CompleteMultipartUpload may fail with status 200 and an <Error> body.
        if status.is_success() && !String::from_utf8_lossy(&body).contains("<Error>") {
            return Ok((parts.headers, body));
        }
        let text = String::from_utf8_lossy(&body);
        let code = xml_text(&text, "Code").unwrap_or_default();
        let message = format!("HTTP {status} {code}");
        Err(match status.as_u16() {
            403 => BackendError::Denied(format!("{what}: {message}")),
            404 => BackendError::NotFound(format!("{what}: {message}")),
            412 => BackendError::Changed(format!("{what}: {message}")),
            _ => BackendError::Other(format!("{what}: {message}")),
        })
    }

    /// Store local file `path` as `full_key` from `parts` (in order, covering the file), the
    /// `Copy` ones taken from `full_key`'s current version, which must still be `etag`.
    /// Returns the new object's ETag.
    pub async fn upload(
        &self,
        full_key: &str,
        path: &Path,
        parts: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<Option<String>, BackendError> {
        let headers: Vec<(String, String)> = meta
            .to_pairs()
            .into_iter()
            .map(|(n, v)| (format!("x-amz-meta-{n}"), v))
            .collect();
        let headers: Vec<(&str, String)> = headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        let (_, body) = self
            .send(
                http::Method::POST,
                &self.url(full_key, "?uploads"),
                &headers,
                Bytes::new(),
                "CreateMultipartUpload",
            )
            .await?;
        let text = String::from_utf8_lossy(&body);
        let upload_id = xml_text(&text, "UploadId").ok_or_else(|| {
            BackendError::Other("CreateMultipartUpload: no UploadId in the answer".into())
        })?;
        match self.parts(full_key, path, parts, etag, &upload_id).await {
            Ok(etags) => self.complete(full_key, &upload_id, &etags).await,
            Err(e) => {
                let query = format!("?uploadId={}", utf8_percent_encode(&upload_id, PATH));
                let abort = self
                    .send(
                        http::Method::DELETE,
                        &self.url(full_key, &query),
                        &[],
                        Bytes::new(),
                        "AbortMultipartUpload",
                    )
                    .await;
                if let Err(a) = abort {
                    tracing::debug!(key = full_key, error = %a, "abort failed; a lifecycle rule must clean the parts");
                }
                Err(e)
            }
        }
    }

    /// Send or copy every part, a few at a time; their ETags in order.
    async fn parts(
        &self,
        full_key: &str,
        path: &Path,
        parts: &[PartSource],
        etag: &str,
        upload_id: &str,
    ) -> Result<Vec<String>, BackendError> {
        let id = utf8_percent_encode(upload_id, PATH).to_string();
        let source = format!("/{}/{}", self.bucket, utf8_percent_encode(full_key, PATH));
        let results: Vec<Result<String, BackendError>> =
            futures::stream::iter(parts.iter().cloned().enumerate())
                .map(|(i, part)| {
                    let url = self.url(full_key, &format!("?partNumber={}&uploadId={id}", i + 1));
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
                                    .send(
                                        http::Method::PUT,
                                        &url,
                                        &headers,
                                        Bytes::new(),
                                        "UploadPartCopy",
                                    )
                                    .await?;
                                xml_text(&String::from_utf8_lossy(&body), "ETag").ok_or_else(|| {
                                    BackendError::Other(
                                        "UploadPartCopy: no ETag in the answer".into(),
                                    )
                                })
                            }
                            PartSource::Send(r) => {
                                let data = read_range(path, r).await?;
                                let (headers, _) = self
                                    .send(http::Method::PUT, &url, &[], data, "UploadPart")
                                    .await?;
                                headers
                                    .get("etag")
                                    .and_then(|v| v.to_str().ok())
                                    .map(str::to_string)
                                    .ok_or_else(|| {
                                        BackendError::Other(
                                            "UploadPart: no ETag in the answer".into(),
                                        )
                                    })
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
        full_key: &str,
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
            .send(
                http::Method::POST,
                &self.url(full_key, &query),
                &[],
                Bytes::from(xml),
                "CompleteMultipartUpload",
            )
            .await?;
        Ok(xml_text(&String::from_utf8_lossy(&body), "ETag"))
    }
}

/// Bytes `range` of local file `path`.
async fn read_range(path: &Path, range: Range<u64>) -> Result<Bytes, BackendError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let local =
        |e: std::io::Error| BackendError::Other(format!("cannot read {}: {e}", path.display()));
    let mut f = tokio::fs::File::open(path).await.map_err(local)?;
    f.seek(std::io::SeekFrom::Start(range.start))
        .await
        .map_err(local)?;
    let mut buf = vec![0u8; (range.end - range.start) as usize];
    f.read_exact(&mut buf).await.map_err(local)?;
    Ok(Bytes::from(buf))
}

/// The text of the first `<tag>` element of an S3 XML answer, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn keys_are_encoded_as_s3_signs_them() {
        assert_eq!(
            utf8_percent_encode("dir/a b+c~d_e.f(1)", PATH).to_string(),
            "dir/a%20b%2Bc~d_e.f%281%29"
        );
    }
}
