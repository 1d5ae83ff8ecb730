//! Azure block blobs: a Put Block List whose unchanged blocks are Put Block From URL requests
//! reading the version being replaced (`x-ms-source-if-match` on its ETag), the changed ones
//! Put Block. Requests are authorized by service SAS URLs that object_store's signer makes
//! with the account key (read for the source, write for the destination); a mount
//! authorized otherwise (a SAS token, Azure AD) gets no SAS from it and sends files whole.

use super::{deleted, etag_header, execute, meta_headers, read_range, RawStore, Request};
use super::{BackendError, PartSource, PosixMeta, PARTS_IN_FLIGHT};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use object_store::azure::MicrosoftAzure;
use object_store::client::{HttpClient, HttpConnector, ReqwestConnector};
use object_store::signer::Signer;
use object_store::ClientOptions;
use std::sync::Arc;
use std::time::Duration;

/// The service version the requests speak (Put Block From URL of blocks up to 4000 MiB).
const VERSION: &str = "2023-11-03";

/// How long the SAS URLs of one upload stay valid.
const SAS_LIFETIME: Duration = Duration::from_secs(3600);

/// The extra requests for one container.
pub struct AzureRaw {
    client: HttpClient,
    store: Arc<MicrosoftAzure>,
    /// `scheme://host[:port][/account]/container`, without a trailing `/`.
    container_url: String,
    account: String,
    /// Tries of a failed request after the first (`-o retries=`).
    retries: u32,
}

impl std::fmt::Debug for AzureRaw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureRaw").finish_non_exhaustive()
    }
}

impl AzureRaw {
    /// For blobs of `store`, in the container at `container_url` of storage account
    /// `account`.
    pub fn new(
        store: Arc<MicrosoftAzure>,
        options: &ClientOptions,
        container_url: &str,
        account: &str,
    ) -> Result<Self, String> {
        let client = ReqwestConnector::default()
            .connect(options)
            .map_err(|e| format!("HTTP client for Azure requests: {e}"))?;
        Ok(AzureRaw {
            client,
            store,
            container_url: container_url.trim_end_matches('/').to_string(),
            account: account.to_string(),
            retries: super::RETRIES,
        })
    }

    /// Try a failed request `retries` more times (`-o retries=`).
    pub fn retrying(mut self, retries: usize) -> Self {
        self.retries = u32::try_from(retries).unwrap_or(u32::MAX);
        self
    }

    /// Send `r` authorized with the store's credentials (shared key, SAS token or bearer).
    async fn send_authorized(
        &self,
        r: Request<'_>,
    ) -> Result<(http::HeaderMap, Bytes), BackendError> {
        super::with_retries(self.retries, || async {
            let mut request = r.build()?;
            let credential = self
                .store
                .credentials()
                .get_credential()
                .await
                .map_err(|e| BackendError::Denied(format!("{}: credentials: {e}", r.what)))?;
            object_store::azure::AzureAuthorizer::new(&credential, &self.account)
                .try_authorize(&mut request)
                .map_err(|e| BackendError::Other(format!("{}: {e}", r.what)))?;
            execute(&self.client, request, r.what).await
        })
        .await
    }

    fn blob_url(&self, key: &str) -> String {
        const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~')
            .remove(b'/');
        format!(
            "{}/{}",
            self.container_url,
            percent_encoding::utf8_percent_encode(key, PATH)
        )
    }

    async fn send(&self, r: Request<'_>) -> Result<(http::HeaderMap, Bytes), BackendError> {
        super::with_retries(self.retries, || async {
            execute(&self.client, r.build()?, r.what).await
        })
        .await
    }

    async fn sas(
        &self,
        method: http::Method,
        path: &object_store::path::Path,
    ) -> Result<String, BackendError> {
        self.store
            .signed_url(method, path, SAS_LIFETIME)
            .await
            .map(|u| u.to_string())
            .map_err(|e| BackendError::Unsupported(format!("a SAS URL for {path}: {e}")))
    }
}

/// The id of block `i`: base64 of 32 characters, the length object_store's ids have (a blob's
/// uncommitted blocks must all have ids of one length, and an abandoned upload of either kind
/// leaves its blocks behind until the next commit).
fn block_id(i: usize) -> String {
    base64(format!("{i:032}").as_bytes())
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[async_trait]
impl RawStore for AzureRaw {
    async fn put_marker(&self, key: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        let mut headers = vec![
            ("x-ms-blob-type", "BlockBlob".to_string()),
            ("content-length", "0".to_string()),
            (
                "x-ms-blob-content-type",
                "application/x-directory".to_string(),
            ),
        ];
        let names = meta_headers("x-ms-meta-", meta);
        headers.extend(names.iter().map(|(n, v)| (n.as_str(), v.clone())));
        self.send_authorized(Request {
            method: http::Method::PUT,
            url: &self.blob_url(key),
            headers: &headers,
            body: Bytes::new(),
            what: "Put Blob (directory marker)",
        })
        .await
        .map(|_| ())
    }

    async fn list(
        &self,
        prefix: &[u8],
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<Option<super::list::RawPage>, BackendError> {
        const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let enc = |s: &[u8]| percent_encoding::percent_encode(s, QUERY).to_string();
        let mut url = format!(
            "{}?restype=container&comp=list&delimiter=%2F&maxresults={}&prefix={}",
            self.container_url,
            max_keys.clamp(1, 5000),
            enc(prefix)
        );
        if let Some(t) = token {
            url.push_str(&format!("&marker={}", enc(t.as_bytes())));
        }
        let (_, body) = self
            .send_authorized(Request {
                method: http::Method::GET,
                url: &url,
                headers: &[("x-ms-version", VERSION.to_string())],
                body: Bytes::new(),
                what: "List Blobs",
            })
            .await?;
        Ok(Some(super::list::parse_list_blobs(
            &String::from_utf8_lossy(&body),
        )))
    }

    async fn set_meta(
        &self,
        key: &[u8],
        meta: &PosixMeta,
        content_type: Option<&str>,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        // Set Blob Metadata keeps the content and its Content-Type.
        let _ = content_type;
        let key = std::str::from_utf8(key).map_err(|_| super::unsupported_key(key))?;
        let mut headers = vec![
            ("content-length", "0".to_string()),
            ("if-match", etag.to_string()),
        ];
        let names = meta_headers("x-ms-meta-", meta);
        headers.extend(names.iter().map(|(n, v)| (n.as_str(), v.clone())));
        let (answer, _) = self
            .send_authorized(Request {
                method: http::Method::PUT,
                url: &format!("{}?comp=metadata", self.blob_url(key)),
                headers: &headers,
                body: Bytes::new(),
                what: "Set Blob Metadata",
            })
            .await?;
        Ok(Some(super::etag_header(&answer, "Set Blob Metadata")?))
    }

    async fn marker_meta(&self, key: &str) -> Result<Option<PosixMeta>, BackendError> {
        let head = self
            .send_authorized(Request {
                method: http::Method::HEAD,
                url: &self.blob_url(key),
                headers: &[],
                body: Bytes::new(),
                what: "Get Blob Properties (directory marker)",
            })
            .await;
        match head {
            Ok((headers, _)) => Ok(Some(super::meta_of_headers(&headers, "x-ms-meta-"))),
            Err(BackendError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn has_marker(&self, key: &str) -> Result<Option<bool>, BackendError> {
        Ok(Some(self.marker_meta(key).await?.is_some()))
    }

    async fn delete_marker(&self, key: &str) -> Result<(), BackendError> {
        deleted(
            self.send_authorized(Request {
                method: http::Method::DELETE,
                url: &self.blob_url(key),
                headers: &[],
                body: Bytes::new(),
                what: "Delete Blob (directory marker)",
            })
            .await,
        )
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
        let source = self.sas(http::Method::GET, path).await?;
        let dest = self.sas(http::Method::PUT, path).await?;
        let results: Vec<Result<(), BackendError>> =
            futures::stream::iter(parts.iter().cloned().enumerate())
                .map(|(i, part)| {
                    let id = block_id(i);
                    let id = percent_encoding::utf8_percent_encode(
                        &id,
                        percent_encoding::NON_ALPHANUMERIC,
                    );
                    let url = format!("{dest}&comp=block&blockid={id}");
                    let source = source.clone();
                    async move {
                        let (headers, body, what) = match part {
                            PartSource::Copy(r) => (
                                vec![
                                    ("x-ms-version", VERSION.to_string()),
                                    // Required, and what tells the request apart from Copy Blob.
                                    ("content-length", "0".to_string()),
                                    ("x-ms-copy-source", source),
                                    (
                                        "x-ms-source-range",
                                        format!("bytes={}-{}", r.start, r.end - 1),
                                    ),
                                    ("x-ms-source-if-match", etag.to_string()),
                                ],
                                Bytes::new(),
                                "Put Block From URL",
                            ),
                            PartSource::Send(r) => (
                                vec![("x-ms-version", VERSION.to_string())],
                                read_range(file, r).await?,
                                "Put Block",
                            ),
                        };
                        self.send(Request {
                            method: http::Method::PUT,
                            url: &url,
                            headers: &headers,
                            body,
                            what,
                        })
                        .await
                        .map(|_| ())
                    }
                })
                .buffered(PARTS_IN_FLIGHT)
                .collect()
                .await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        // Blocks staged but never committed are dropped by the service after a week, so a
        // failure above needs no clean-up.
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
        for i in 0..parts.len() {
            xml.push_str(&format!("<Latest>{}</Latest>", block_id(i)));
        }
        xml.push_str("</BlockList>");
        let mut headers = vec![("x-ms-version", VERSION.to_string())];
        let names = meta_headers("x-ms-meta-", meta);
        headers.extend(names.iter().map(|(n, v)| (n.as_str(), v.clone())));
        if let Some(t) = content_type {
            headers.push(("x-ms-blob-content-type", t.to_string()));
        }
        let (answer, _) = self
            .send(Request {
                method: http::Method::PUT,
                url: &format!("{dest}&comp=blocklist"),
                headers: &headers,
                body: Bytes::from(xml),
                what: "Put Block List",
            })
            .await?;
        Ok(etag_header(&answer, "Put Block List").ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_are_base64_of_32_characters() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        assert_eq!(block_id(7), "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDc=");
        assert_eq!(block_id(49_999).len(), 44);
    }
}
