//! `/upload/drive/v3/files[/{id}]`: `uploadType=media`, `multipart` and `resumable`.
//!
//! Resumable protocol (as Google documents it): the initiation request (metadata JSON body,
//! `X-Upload-Content-Type`, optional `X-Upload-Content-Length`) answers 200 with the session
//! URL in `Location`. Chunks are `PUT`s to it with `Content-Range: bytes a-b/total` (`total`
//! may be `*` until the last chunk); every chunk but the last must be a multiple of 256 KiB
//! and start where the stored bytes end. Unfinished → 308 with `Range: bytes=0-N` (no Range
//! when nothing is stored). A `PUT` with no body and `Content-Range: bytes */total` asks for
//! the status. The file appears or changes only when the upload completes.

use super::files::file_response;
use super::http::{empty, with_header, ApiError, Params, Resp};
use super::meta::{self, visible, Meta};
use super::multipart;
use super::Shared;
use bytes::Bytes;
use hyper::HeaderMap;
use std::collections::HashMap;
use std::sync::Arc;

/// Chunk granularity of resumable uploads.
pub(crate) const CHUNK_UNIT: u64 = 256 * 1024;

/// One resumable upload session.
struct Session {
    /// None for a create, the file for an update.
    file_id: Option<String>,
    meta: Meta,
    /// The initiation request's query (fields, supportsAllDrives, addParents…).
    params: Params,
    content_type: Option<String>,
    declared_len: Option<u64>,
    data: Vec<u8>,
    /// The file, once the upload completed.
    done: Option<String>,
    expired: bool,
}

/// The resumable sessions of one server.
#[derive(Default)]
pub(crate) struct Sessions {
    map: HashMap<String, Session>,
}

impl Sessions {
    /// Every session answers 404 from now on.
    pub fn expire_all(&mut self) {
        for s in self.map.values_mut() {
            s.expired = true;
        }
    }

    /// Sessions not yet completed nor expired.
    pub fn active(&self) -> usize {
        self.map
            .values()
            .filter(|s| s.done.is_none() && !s.expired)
            .count()
    }
}

/// What a chunk request leads to.
pub(crate) enum Chunk {
    Answer(Resp),
    /// Close the connection without answering (an injected dropped chunk).
    Drop,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Creates or updates the file with `content` and answers with it.
fn finish(
    shared: &Shared,
    file_id: Option<&str>,
    m: &Meta,
    content: Bytes,
    media_type: Option<&str>,
    p: &Params,
) -> Result<(String, Resp), ApiError> {
    let f = {
        let mut store = shared.store();
        match file_id {
            None => {
                let all = p.flag("supportsAllDrives", false)?;
                let id = meta::create(&mut store, m, Some(content), media_type, all)?;
                visible(&store, &id, true)?
            }
            Some(id) => meta::update(&mut store, id, m, Some(content), p)?,
        }
    };
    Ok((f.id.clone(), file_response(shared, p, &f)?))
}

/// `POST /upload/drive/v3/files` and `PATCH /upload/drive/v3/files/{id}` (no `upload_id`).
pub(crate) fn start(
    shared: &Arc<Shared>,
    id: Option<&str>,
    p: &Params,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Resp, ApiError> {
    let update = id.is_some();
    let content_type = header(headers, "content-type");
    match p.get("uploadType").unwrap_or("media") {
        "media" => Ok(finish(shared, id, &Meta::default(), body, content_type, p)?.1),
        "multipart" => {
            let b = content_type.and_then(multipart::boundary).ok_or_else(|| {
                ApiError::bad_request(
                    "Multipart uploads need Content-Type multipart/related with a boundary.",
                )
            })?;
            let parts = multipart::parse(&body, &b)?;
            let m = meta::parse(&parts.metadata, update)?;
            Ok(finish(shared, id, &m, parts.media, parts.media_type.as_deref(), p)?.1)
        }
        "resumable" => initiate(shared, id, p, headers, &body),
        _ => Err(ApiError::invalid_value("uploadType")),
    }
}

fn initiate(
    shared: &Arc<Shared>,
    id: Option<&str>,
    p: &Params,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let m = meta::parse(body, id.is_some())?;
    let declared_len = match header(headers, "x-upload-content-length") {
        None => None,
        Some(v) => Some(
            v.trim()
                .parse::<u64>()
                .map_err(|_| ApiError::bad_request("Invalid X-Upload-Content-Length header."))?,
        ),
    };
    let all = p.flag("supportsAllDrives", false)?;
    // Check the target now, as Drive does, so a bad request fails before any bytes are sent.
    let file_id = {
        let store = shared.store();
        match id {
            Some(id) => {
                let f = visible(&store, id, all)?;
                if store.is_root(&f.id) || f.is_folder() {
                    return Err(ApiError::forbidden(
                        "insufficientFilePermissions",
                        "The user does not have sufficient permissions for this file.",
                    ));
                }
                Some(f.id)
            }
            None => {
                let parent = m
                    .parents
                    .as_ref()
                    .and_then(|p| p.first())
                    .map_or("root", String::as_str);
                let pf = visible(&store, parent, all)?;
                if !pf.is_folder() {
                    return Err(ApiError::bad_request(
                        "The specified parent is not a folder.",
                    ));
                }
                None
            }
        }
    };
    let upload_id = super::ids::secret("ADPycd");
    shared.uploads().map.insert(
        upload_id.clone(),
        Session {
            file_id: file_id.clone(),
            meta: m,
            params: p.clone(),
            content_type: header(headers, "x-upload-content-type").map(str::to_string),
            declared_len,
            data: Vec::new(),
            done: None,
            expired: false,
        },
    );
    let path = match &file_id {
        Some(f) => format!("/upload/drive/v3/files/{f}"),
        None => "/upload/drive/v3/files".to_string(),
    };
    let location = format!(
        "{}{path}?uploadType=resumable&upload_id={upload_id}",
        shared.base
    );
    let r = with_header(empty(200), "location", &location);
    Ok(with_header(r, "x-guploader-uploadid", &upload_id))
}

/// `bytes a-b/total`, `bytes */total`; total is None for `*`.
#[derive(Debug, PartialEq)]
enum ContentRange {
    Bytes(u64, u64, Option<u64>),
    Status(Option<u64>),
}

fn parse_content_range(v: &str) -> Option<ContentRange> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if range.trim() == "*" {
        return Some(ContentRange::Status(total));
    }
    let (a, b) = range.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (b >= a).then_some(ContentRange::Bytes(a, b, total))
}

fn incomplete(stored: usize) -> Resp {
    let r = empty(308);
    if stored == 0 {
        r
    } else {
        with_header(r, "range", &format!("bytes=0-{}", stored - 1))
    }
}

/// A `PUT` to a session URL: a chunk or a status query.
pub(crate) fn chunk(
    shared: &Arc<Shared>,
    upload_id: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Chunk, ApiError> {
    let gone = || {
        ApiError::new(
            404,
            "notFound",
            "The upload session was not found or has expired.",
        )
    };
    let mut sessions = shared.uploads();
    let s = sessions
        .map
        .get_mut(upload_id)
        .filter(|s| !s.expired)
        .ok_or_else(gone)?;
    if let Some(id) = s.done.clone() {
        let f = visible(&shared.store(), &id, true)?;
        return Ok(Chunk::Answer(file_response(shared, &s.params, &f)?));
    }
    let stored = s.data.len() as u64;
    let len = body.len() as u64;
    let range = match header(headers, "content-range") {
        None if len == 0 => ContentRange::Status(None),
        None => ContentRange::Bytes(stored, stored + len - 1, Some(stored + len)),
        Some(v) => parse_content_range(v)
            .ok_or_else(|| ApiError::bad_request(format!("Invalid Content-Range header: {v}")))?,
    };
    let total = match range {
        ContentRange::Bytes(_, _, t) | ContentRange::Status(t) => t,
    };
    if let (Some(t), Some(d)) = (total, s.declared_len) {
        if t != d {
            return Err(ApiError::bad_request(format!(
                "The total size {t} does not match X-Upload-Content-Length {d}."
            )));
        }
    }
    let (a, b) = match range {
        ContentRange::Status(_) if len != 0 => {
            return Err(ApiError::bad_request(
                "A status query must have an empty body.",
            ))
        }
        ContentRange::Status(Some(t)) if t == stored => (stored, None),
        ContentRange::Status(_) => return Ok(Chunk::Answer(incomplete(stored as usize))),
        ContentRange::Bytes(a, b, _) => (a, Some(b)),
    };
    if let Some(b) = b {
        if (b - a).checked_add(1) != Some(len) {
            return Err(ApiError::bad_request(format!(
                "Content-Range bytes {a}-{b} does not match the body length {len}."
            )));
        }
        if a != stored {
            return Err(ApiError::bad_request(format!(
                "Invalid request. The chunk starts at byte {a} but the upload has stored {stored} bytes; resume from byte {stored}."
            )));
        }
        if total.is_some_and(|t| b >= t) {
            return Err(ApiError::bad_request(format!(
                "Content-Range end {b} is beyond the total size."
            )));
        }
    }
    let last = total.is_some_and(|t| a + len == t);
    if !last && len % CHUNK_UNIT != 0 {
        return Err(ApiError::bad_request(format!(
            "Invalid request. The number of bytes uploaded is required to be equal or greater than 262144, except for the final request (it's recommended to be the exact multiple of 262144). The received request contained {len} bytes, which does not meet this requirement."
        )));
    }
    if len > 0 {
        if let Some(after) = shared.faults.take_drop_chunk() {
            let keep = (after as u64).min(len) / CHUNK_UNIT * CHUNK_UNIT;
            s.data.extend_from_slice(&body[..keep as usize]);
            return Ok(Chunk::Drop);
        }
    }
    s.data.extend_from_slice(&body);
    if !last {
        return Ok(Chunk::Answer(incomplete(s.data.len())));
    }
    let content = Bytes::from(std::mem::take(&mut s.data));
    let (file_id, m, params, ct) = (
        s.file_id.clone(),
        s.meta.clone(),
        s.params.clone(),
        s.content_type.clone(),
    );
    // Keep the session lock while finishing so that a concurrent status query waits for it.
    match finish(
        shared,
        file_id.as_deref(),
        &m,
        content.clone(),
        ct.as_deref(),
        &params,
    ) {
        Ok((id, resp)) => {
            if let Some(s) = sessions.map.get_mut(upload_id) {
                s.done = Some(id);
            }
            Ok(Chunk::Answer(resp))
        }
        Err(e) => {
            // The bytes stay stored; the client may retry the status query.
            if let Some(s) = sessions.map.get_mut(upload_id) {
                s.data = content.to_vec();
            }
            Err(e)
        }
    }
}
