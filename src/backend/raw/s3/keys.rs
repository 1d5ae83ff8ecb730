//! S3 requests for one object named by its key as bytes, for keys object_store's paths cannot
//! hold (`a//b`, control characters, invalid UTF-8: [`crate::backend::escaped`]).
//!
//! A key with a `.` or `..` segment goes through [`super::super::literal`]: reqwest resolves
//! dot segments, even percent-encoded ones (`dir/%2E%2E/x` goes out as `x`), so through it the
//! request would reach another key. Without that client such keys are refused, except for
//! deletes, which then go in the body of a DeleteObjects request.

use super::super::literal::LiteralClient;
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
    /// The URL of object `key`, and the client that must send it (`None`: the usual one), or
    /// why no request can reach it.
    fn key_url(
        &self,
        key: &[u8],
        query: &str,
    ) -> Result<(String, Option<&LiteralClient>), BackendError> {
        let url = format!("{}/{}{query}", self.bucket_url, percent_encode(key, PATH));
        if !has_dot_segment(key) {
            return Ok((url, None));
        }
        match &self.literal {
            Some(l) => Ok((url, Some(l))),
            None => Err(BackendError::Unsupported(format!(
                "{:?}: a key with a `.` or `..` segment needs its URL path sent as written, and \
                 no such client could be set up (see the log at mount time); use the store's own \
                 tools for it",
                String::from_utf8_lossy(key)
            ))),
        }
    }

    /// Send request `r` for object `key` (whose URL `r.url` is).
    async fn send_key(
        &self,
        r: Request<'_>,
        literal: Option<&LiteralClient>,
    ) -> Result<(http::HeaderMap, Bytes), BackendError> {
        self.send_via(r, literal).await
    }

    pub(super) async fn head_bytes(&self, key: &[u8]) -> Result<RawHead, BackendError> {
        let (url, via) = self.key_url(key, "")?;
        let (headers, _) = self
            .send_key(
                Request {
                    method: http::Method::HEAD,
                    url: &url,
                    headers: &[],
                    body: Bytes::new(),
                    what: "HeadObject",
                },
                via,
            )
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
        Ok(RawHead {
            size,
            mtime,
            etag: text("etag").map(str::to_string),
            meta: super::super::meta_of_headers(&headers, "x-amz-meta-"),
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
        let (url, via) = self.key_url(key, "")?;
        let (_, body) = self
            .send_key(
                Request {
                    method: http::Method::GET,
                    url: &url,
                    headers: &headers,
                    body: Bytes::new(),
                    what: "GetObject",
                },
                via,
            )
            .await?;
        Ok(body)
    }

    pub(super) async fn put_bytes(
        &self,
        key: &[u8],
        data: Bytes,
        meta: &PosixMeta,
        content_type: Option<&str>,
    ) -> Result<Option<String>, BackendError> {
        let names = meta_headers("x-amz-meta-", meta);
        let mut headers: Vec<(&str, String)> =
            names.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        if let Some(t) = content_type {
            headers.push(("content-type", t.to_string()));
        }
        let (url, via) = self.key_url(key, "")?;
        let (headers, _) = self
            .send_key(
                Request {
                    method: http::Method::PUT,
                    url: &url,
                    headers: &headers,
                    body: data,
                    what: "PutObject",
                },
                via,
            )
            .await?;
        Ok(etag_header(&headers, "PutObject").ok())
    }

    /// CopyObject; with `replace`, the copy gets that metadata and Content-Type instead of
    /// the source's; with `if_match`, only while the source has that entity tag. The copy's
    /// entity tag.
    pub(super) async fn copy_bytes(
        &self,
        from: &[u8],
        to: &[u8],
        replace: Option<(&PosixMeta, Option<&str>)>,
        if_match: Option<&str>,
    ) -> Result<String, BackendError> {
        // The source goes in a header, which nothing resolves; the target is the URL.
        let source = format!("/{}/{}", self.bucket, percent_encode(from, PATH));
        let names = replace.map_or_else(Vec::new, |(m, _)| meta_headers("x-amz-meta-", m));
        let mut headers: Vec<(&str, String)> = vec![("x-amz-copy-source", source)];
        if let Some((_, kind)) = replace {
            headers.push(("x-amz-metadata-directive", "REPLACE".to_string()));
            if let Some(kind) = kind {
                headers.push(("content-type", kind.to_string()));
            }
            headers.extend(names.iter().map(|(n, v)| (n.as_str(), v.clone())));
        }
        if let Some(etag) = if_match {
            headers.push(("x-amz-copy-source-if-match", etag.to_string()));
        }
        let (url, via) = self.key_url(to, "")?;
        let (_, body) = self
            .send_key(
                Request {
                    method: http::Method::PUT,
                    url: &url,
                    headers: &headers,
                    body: Bytes::new(),
                    what: "CopyObject",
                },
                via,
            )
            .await?;
        // A copy can fail after its 200 status line; only an ETag in the answer is success.
        xml_text(&String::from_utf8_lossy(&body), "ETag")
            .ok_or_else(|| BackendError::Other("CopyObject: no ETag in the answer".into()))
    }

    pub(super) async fn delete_bytes(&self, key: &[u8]) -> Result<(), BackendError> {
        if let Ok((url, via)) = self.key_url(key, "") {
            let r = Request {
                method: http::Method::DELETE,
                url: &url,
                headers: &[],
                body: Bytes::new(),
                what: "DeleteObject",
            };
            return deleted(self.send_key(r, via).await);
        }
        // No client sends its URL path as written: the key goes in the body instead, where
        // nothing resolves it.
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
