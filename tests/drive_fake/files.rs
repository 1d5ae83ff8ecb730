//! The metadata routes of `/drive/v3/files`: list, get (metadata and `alt=media`), create,
//! update, delete, copy and emptyTrash.

use super::fields::{self, apply, Schema, FILE_DEFAULT, LIST_DEFAULT};
use super::http::{from_nanos, nanos};
use super::http::{
    json_response, parse_range, response, with_header, ApiError, Params, RangeReq, Resp,
};
use super::meta::{self, visible};
use super::query;
use super::store::{is_google_type, FileSnapshot, Key};
use super::Shared;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

/// Which files a listing may return (corpora / driveId / includeItemsFromAllDrives).
enum Corpus {
    MyDrive,
    Drive(String),
    All,
    Nothing,
}

fn corpus(shared: &Shared, p: &Params) -> Result<Corpus, ApiError> {
    let all_drives = p.flag("supportsAllDrives", false)?;
    let include = p.flag("includeItemsFromAllDrives", false)?;
    if include && !all_drives {
        return Err(ApiError::forbidden(
            "incompatibleParameters",
            "The includeItemsFromAllDrives parameter can only be set to true when supportsAllDrives is also set to true.",
        ));
    }
    let drive_id = p.get("driveId");
    let only_drive_id = || {
        ApiError::bad_request(
            "The driveId parameter must be specified if and only if corpora is set to drive.",
        )
        .at("parameter", "driveId")
    };
    match p.get("corpora").unwrap_or("user") {
        "drive" => {
            let Some(d) = drive_id else {
                return Err(only_drive_id());
            };
            if !include {
                return Err(ApiError::forbidden(
                    "teamDriveIncludeItemsRequired",
                    "The includeItemsFromAllDrives parameter must be set to true when driveId is specified.",
                ));
            }
            if !shared.store().drives().iter().any(|(id, _)| id == d) {
                return Err(
                    ApiError::new(404, "notFound", format!("Shared drive not found: {d}"))
                        .at("parameter", "driveId"),
                );
            }
            Ok(Corpus::Drive(d.to_string()))
        }
        _ if drive_id.is_some() => Err(only_drive_id()),
        "user" | "domain" => Ok(Corpus::MyDrive),
        "allDrives" if include => Ok(Corpus::All),
        "allDrives" => Ok(Corpus::MyDrive),
        _ => Err(ApiError::invalid_value("corpora")),
    }
}

fn encode_token(k: &Key) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", nanos(k.0), k.1))
}

fn decode_token(t: &str) -> Option<Key> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(t).ok()?).ok()?;
    let (n, id) = raw.split_once(':')?;
    Some((from_nanos(n.parse().ok()?)?, id.to_string()))
}

/// `GET /drive/v3/files`.
pub(crate) fn list(shared: &Arc<Shared>, p: &Params) -> Result<Resp, ApiError> {
    let sel = fields::select(p, LIST_DEFAULT, Schema::FileList)?;
    let page_size = p.page_size(100, 1000)?;
    let corpus = match p.get("spaces").unwrap_or("drive") {
        "drive" => corpus(shared, p)?,
        "appDataFolder" => Corpus::Nothing,
        s if s
            .split(',')
            .all(|x| matches!(x.trim(), "drive" | "appDataFolder")) =>
        {
            corpus(shared, p)?
        }
        _ => return Err(ApiError::invalid_value("spaces")),
    };
    let q = match p.get("q").map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(query::parse(s).map_err(|_| ApiError::invalid_value("q"))?),
    };
    let after = match p.get("pageToken") {
        None | Some("") => None,
        Some(t) => Some(decode_token(t).ok_or_else(|| ApiError::invalid_value("pageToken"))?),
    };
    let store = shared.store();
    let empty: BTreeSet<Key> = BTreeSet::new();
    let keys = match (&corpus, q.as_ref().and_then(query::Expr::parent_hint)) {
        (Corpus::Nothing, _) => &empty,
        (_, Some(parent)) => store.children_keys(&parent).unwrap_or(&empty),
        (_, None) => store.all_keys(),
    };
    let lower = match &after {
        Some(k) => Bound::Excluded(k),
        None => Bound::Unbounded,
    };
    let mut files: Vec<Value> = Vec::new();
    let mut last: Option<&Key> = None;
    let mut more = false;
    for key in keys.range::<Key, _>((lower, Bound::Unbounded)) {
        let Some(f) = store.snapshot(&key.1) else {
            continue;
        };
        let in_corpus = match &corpus {
            Corpus::MyDrive => f.drive_id.is_none(),
            Corpus::Drive(d) => f.drive_id.as_deref() == Some(d.as_str()),
            Corpus::All => true,
            Corpus::Nothing => false,
        };
        if !in_corpus || !q.as_ref().is_none_or(|e| e.matches(&f)) {
            continue;
        }
        if files.len() == page_size {
            more = true;
            break;
        }
        files.push(shared.file_value(&store, &f));
        last = Some(key);
    }
    let mut v = json!({"kind": "drive#fileList", "incompleteSearch": false, "files": files});
    if let (true, Some(k)) = (more, last) {
        v["nextPageToken"] = json!(encode_token(k));
    }
    Ok(json_response(200, &apply(&v, &sel)))
}

/// The JSON answer for one file with the request's `fields`.
pub(crate) fn file_response(
    shared: &Shared,
    p: &Params,
    f: &FileSnapshot,
) -> Result<Resp, ApiError> {
    let sel = fields::select(p, FILE_DEFAULT, Schema::File)?;
    let v = shared.file_value(&shared.store(), f);
    Ok(json_response(200, &apply(&v, &sel)))
}

/// `GET /drive/v3/files/{id}` (metadata, or content with `alt=media`).
pub(crate) fn get(
    shared: &Arc<Shared>,
    id: &str,
    p: &Params,
    range: Option<&str>,
) -> Result<Resp, ApiError> {
    let f = shared.visible_file(id, p)?;
    match p.get("alt").unwrap_or("json") {
        "json" => file_response(shared, p, &f),
        "media" => {
            if is_google_type(&f.mime_type) {
                return Err(ApiError::forbidden(
                    "fileNotDownloadable",
                    "Only files with binary content can be downloaded. Use Export with Docs Editors files.",
                )
                .at("parameter", "alt"));
            }
            let size = f.content.len() as u64;
            Ok(match parse_range(range, size) {
                RangeReq::Full => response(200, &f.mime_type, f.content.clone()),
                RangeReq::Part(a, b) => with_header(
                    response(206, &f.mime_type, f.content.slice(a as usize..b as usize)),
                    "content-range",
                    &format!("bytes {a}-{}/{size}", b - 1),
                ),
                RangeReq::Unsatisfiable => with_header(
                    ApiError::new(
                        416,
                        "requestedRangeNotSatisfiable",
                        "Request range not satisfiable",
                    )
                    .at("header", "Range")
                    .response(),
                    "content-range",
                    &format!("bytes */{size}"),
                ),
            })
        }
        _ => Err(ApiError::invalid_value("alt")),
    }
}

/// `POST /drive/v3/files`: a file without content (folders, shortcuts, docs, empty files).
pub(crate) fn create(shared: &Arc<Shared>, p: &Params, body: &[u8]) -> Result<Resp, ApiError> {
    let m = meta::parse(body, false)?;
    fields::select(p, FILE_DEFAULT, Schema::File)?;
    let all_drives = p.flag("supportsAllDrives", false)?;
    let f = {
        let mut store = shared.store();
        let id = meta::create(&mut store, &m, None, None, all_drives)?;
        visible(&store, &id, true)?
    };
    file_response(shared, p, &f)
}

/// `PATCH /drive/v3/files/{id}`: metadata, moves, trash.
pub(crate) fn update(
    shared: &Arc<Shared>,
    id: &str,
    p: &Params,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let m = meta::parse(body, true)?;
    fields::select(p, FILE_DEFAULT, Schema::File)?;
    let f = meta::update(&mut shared.store(), id, &m, None, p)?;
    file_response(shared, p, &f)
}

/// `DELETE /drive/v3/files/{id}`: the file and, for a folder, its whole subtree.
pub(crate) fn delete(shared: &Arc<Shared>, id: &str, p: &Params) -> Result<Resp, ApiError> {
    let all_drives = p.flag("supportsAllDrives", false)?;
    let mut store = shared.store();
    let f = visible(&store, id, all_drives)?;
    if store.is_root(&f.id) {
        return Err(ApiError::forbidden(
            "insufficientFilePermissions",
            "The user does not have sufficient permissions for this file.",
        ));
    }
    store.remove(&f.id);
    Ok(super::http::empty(204))
}

/// `POST /drive/v3/files/{id}/copy`.
pub(crate) fn copy(
    shared: &Arc<Shared>,
    id: &str,
    p: &Params,
    body: &[u8],
) -> Result<Resp, ApiError> {
    let m = meta::parse(body, false)?;
    fields::select(p, FILE_DEFAULT, Schema::File)?;
    let all_drives = p.flag("supportsAllDrives", false)?;
    let f = {
        let mut store = shared.store();
        let new = meta::copy(&mut store, id, &m, all_drives)?;
        visible(&store, &new, true)?
    };
    file_response(shared, p, &f)
}

/// `DELETE /drive/v3/files/trash`: deletes every trashed file of My Drive (or of `driveId`).
pub(crate) fn empty_trash(shared: &Arc<Shared>, p: &Params) -> Result<Resp, ApiError> {
    let drive = p.get("driveId");
    let mut store = shared.store();
    if let Some(d) = drive {
        if !store.drives().iter().any(|(id, _)| id == d) {
            return Err(
                ApiError::new(404, "notFound", format!("Shared drive not found: {d}"))
                    .at("parameter", "driveId"),
            );
        }
    }
    for id in store.explicitly_trashed(drive) {
        store.remove(&id);
    }
    Ok(super::http::empty(204))
}
