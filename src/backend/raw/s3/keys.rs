//! S3 requests for one object named by its key as bytes, for keys object_store's paths cannot
//! hold (`a//b`, control characters, invalid UTF-8: [`crate::backend::escaped`]).
//!
//! A key with a `.` or `..` segment cannot be sent in a URL at all: the HTTP client resolves
//! dot segments, even percent-encoded ones (`dir/%2E%2E/x` goes out as `x`), so such a
//! request would reach another key. Those keys are refused here, except for deletes, which go
//! in the body of a DeleteObjects request instead.

use super::super::{deleted, escape, etag_header, meta_headers, unsupported_key, xml_text};
use super::super::{BackendError, PosixMeta, RawHead, Request};
use super::{S3Raw, PATH};
use crate::backend::escaped::has_dot_segment;
use base64::Engine;
use bytes::Bytes;
use md5::Digest;
use percent_encoding::percent_encode;
use std::ops::Range;

impl S3Raw {
    /// The URL of object `key`, or why it cannot have one.
    fn key_url(&self, key: &[u8], query: &str) -> Result<String, BackendError> {
        if has_dot_segment(key) {
            return Err(BackendError::Unsupported(format!(
                "{:?}: a key with a `.` or `..` segment cannot be sent in a URL (HTTP clients \
                 resolve dot segments, so the request would reach another key); use the \
                 store's own tools for it",
                String::from_utf8_lossy(key)
            )));
        }
        Ok(format!(
            "{}/{}{query}",
            self.bucket_url,
            percent_encode(key, PATH)
        ))
    }

    pub(super) async fn head_bytes(&self, key: &[u8]) -> Result<RawHead, BackendError> {
        let (headers, _) = self
            .send(Request {
                method: http::Method::HEAD,
                url: &self.key_url(key, "")?,
                headers: &[],
                body: Bytes::new(),
                what: "HeadObject",
            })
            .await?;
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let size = text("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| BackendError::Other("HeadObject: no Content-Length".into()))?;
        let mtime = text("last-modified")
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map_or(std::time::SystemTime::UNIX_EPOCH, |t| {
                std::time::SystemTime::from(t.with_timezone(&chrono::Utc))
            });
        let pairs: Vec<(String, String)> = headers
            .iter()
            .filter_map(|(n, v)| {
                let name = n.as_str().strip_prefix("x-amz-meta-")?;
                Some((name.to_string(), v.to_str().ok()?.to_string()))
            })
            .collect();
        Ok(RawHead {
            size,
            mtime,
            etag: text("etag").map(str::to_string),
            meta: PosixMeta::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        })
    }

    pub(super) async fn get_bytes(
        &self,
        key: &[u8],
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let mut headers = vec![("range", format!("bytes={}-{}", range.start, range.end - 1))];
        if let Some(e) = etag {
            headers.push(("if-match", e.to_string()));
        }
        let (_, body) = self
            .send(Request {
                method: http::Method::GET,
                url: &self.key_url(key, "")?,
                headers: &headers,
                body: Bytes::new(),
                what: "GetObject",
            })
            .await?;
        Ok(body)
    }

    pub(super) async fn put_bytes(
        &self,
        key: &[u8],
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<Option<String>, BackendError> {
        let names = meta_headers("x-amz-meta-", meta);
        let headers: Vec<(&str, String)> =
            names.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        let (headers, _) = self
            .send(Request {
                method: http::Method::PUT,
                url: &self.key_url(key, "")?,
                headers: &headers,
                body: data,
                what: "PutObject",
            })
            .await?;
        Ok(etag_header(&headers, "PutObject").ok())
    }

    pub(super) async fn copy_bytes(&self, from: &[u8], to: &[u8]) -> Result<(), BackendError> {
        if has_dot_segment(from) {
            return Err(unsupported_key(from));
        }
        let source = format!("/{}/{}", self.bucket, percent_encode(from, PATH));
        let (_, body) = self
            .send(Request {
                method: http::Method::PUT,
                url: &self.key_url(to, "")?,
                headers: &[("x-amz-copy-source", source)],
                body: Bytes::new(),
                what: "CopyObject",
            })
            .await?;
        match xml_text(&String::from_utf8_lossy(&body), "ETag") {
            Some(_) => Ok(()),
            None => Err(BackendError::Other(
                "CopyObject: no ETag in the answer".into(),
            )),
        }
    }

    pub(super) async fn delete_bytes(&self, key: &[u8]) -> Result<(), BackendError> {
        if !has_dot_segment(key) {
            return deleted(
                self.send(Request {
                    method: http::Method::DELETE,
                    url: &self.key_url(key, "")?,
                    headers: &[],
                    body: Bytes::new(),
                    what: "DeleteObject",
                })
                .await,
            );
        }
        // The key goes in the body, where nothing resolves it.
        let Ok(text) = std::str::from_utf8(key) else {
            return Err(unsupported_key(key));
        };
        if text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(unsupported_key(key));
        }
        let xml = format!(
            "<Delete><Quiet>true</Quiet><Object><Key>{}</Key></Object></Delete>",
            escape(text)
        );
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&xml));
        let (_, body) = self
            .send(Request {
                method: http::Method::POST,
                url: &format!("{}/?delete", self.bucket_url),
                headers: &[("content-md5", md5)],
                body: Bytes::from(xml),
                what: "DeleteObjects",
            })
            .await?;
        let answer = String::from_utf8_lossy(&body);
        match xml_text(&answer, "Code") {
            Some(code) if answer.contains("<Error>") => Err(BackendError::Other(format!(
                "DeleteObjects {text:?}: {code}"
            ))),
            _ => Ok(()),
        }
    }
}
