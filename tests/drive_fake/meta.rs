//! File metadata in request bodies, and the create / update / copy operations built on it
//! (shared by the metadata routes and the upload routes).
//!
//! Every check happens before anything changes, so a rejected request leaves no trace.
//! Writable fields: name, mimeType, parents (create and copy only; updates move with
//! addParents/removeParents), appProperties, properties (merged on update, `null` deletes a
//! key), modifiedTime, createdTime (create only), description, trashed, shortcutDetails
//! (create only). Read-only fields (id, size, md5Checksum, version, driveId…) are 403
//! `fieldNotWritable`, as on Drive; names the fake does not know are ignored.

use super::http::{parse_time, ApiError, Params};
use super::store::{
    is_google_type, FileSnapshot, NewFile, ShortcutDetails, Store, FOLDER, SHORTCUT,
};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::SystemTime;

/// Metadata from a JSON request body.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    pub name: Option<String>,
    pub mime_type: Option<String>,
    pub parents: Option<Vec<String>>,
    pub app_properties: Option<Map<String, Value>>,
    pub properties: Option<Map<String, Value>>,
    pub modified_time: Option<SystemTime>,
    pub created_time: Option<SystemTime>,
    /// `Some(None)` clears it.
    pub description: Option<Option<String>>,
    pub trashed: Option<bool>,
    pub shortcut_target: Option<String>,
}

const READ_ONLY: &[&str] = &[
    "size",
    "md5Checksum",
    "sha1Checksum",
    "sha256Checksum",
    "version",
    "headRevisionId",
    "driveId",
    "teamDriveId",
    "explicitlyTrashed",
    "trashedTime",
    "trashingUser",
    "quotaBytesUsed",
    "ownedByMe",
    "owners",
    "capabilities",
    "exportLinks",
    "webViewLink",
    "webContentLink",
    "iconLink",
    "thumbnailLink",
    "fileExtension",
    "fullFileExtension",
    "spaces",
    "permissions",
    "permissionIds",
    "lastModifyingUser",
    "sharingUser",
    "shared",
    "resourceKey",
    "hasThumbnail",
    "thumbnailVersion",
    "isAppAuthorized",
];

fn not_writable() -> ApiError {
    ApiError::forbidden(
        "fieldNotWritable",
        "The resource body includes fields which are not directly writable.",
    )
}

fn bad_field(name: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid value for field {name}."))
}

/// Parses a metadata body (empty = no metadata). `update` applies files.update's rules.
pub(crate) fn parse(body: &[u8], update: bool) -> Result<Meta, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Meta::default());
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| ApiError::parse_error())?;
    let Value::Object(o) = v else {
        return Err(ApiError::parse_error());
    };
    let mut m = Meta::default();
    for (k, v) in o {
        let string = || v.as_str().map(str::to_string).ok_or_else(|| bad_field(&k));
        match k.as_str() {
            "name" => m.name = Some(string()?),
            "mimeType" => m.mime_type = Some(string()?),
            "parents" if update => {
                return Err(ApiError::forbidden(
                    "fieldNotWritable",
                    "The parents field is not directly writable in update requests. Use the addParents and removeParents parameters instead.",
                ))
            }
            "parents" => {
                let list = v.as_array().ok_or_else(|| bad_field("parents"))?;
                let ids = list
                    .iter()
                    .map(|p| p.as_str().map(str::to_string).ok_or_else(|| bad_field("parents")))
                    .collect::<Result<Vec<_>, _>>()?;
                m.parents = Some(ids);
            }
            "appProperties" | "properties" => {
                let map = match v {
                    Value::Object(map) => map,
                    Value::Null => Map::new(),
                    _ => return Err(bad_field(&k)),
                };
                if map.values().any(|x| !x.is_string() && !x.is_null()) {
                    return Err(bad_field(&k));
                }
                if k == "appProperties" {
                    m.app_properties = Some(map);
                } else {
                    m.properties = Some(map);
                }
            }
            "modifiedTime" | "createdTime" => {
                if k == "createdTime" && update {
                    return Err(not_writable());
                }
                let t = parse_time(&string()?).ok_or_else(|| bad_field(&k))?;
                if k == "modifiedTime" {
                    m.modified_time = Some(t);
                } else {
                    m.created_time = Some(t);
                }
            }
            "description" => {
                m.description = Some(match v {
                    Value::Null => None,
                    Value::String(s) => Some(s),
                    _ => return Err(bad_field("description")),
                })
            }
            "trashed" => m.trashed = Some(v.as_bool().ok_or_else(|| bad_field("trashed"))?),
            "shortcutDetails" if update => return Err(not_writable()),
            "shortcutDetails" => {
                let target = v.get("targetId").and_then(Value::as_str);
                m.shortcut_target = Some(target.ok_or_else(|| bad_field("shortcutDetails"))?.to_string());
            }
            "id" => {
                return Err(ApiError::bad_request("The provided file ID is not usable.")
                    .at("other", "file.id"))
            }
            k if READ_ONLY.contains(&k) => return Err(not_writable()),
            _ => {}
        }
    }
    Ok(m)
}

/// The file if it exists and the request may see it: shared-drive items need
/// `supportsAllDrives=true`, else they are 404 as on Drive.
pub(crate) fn visible(store: &Store, id: &str, all_drives: bool) -> Result<FileSnapshot, ApiError> {
    match store.snapshot(id) {
        Some(f) if f.drive_id.is_none() || all_drives => Ok(f),
        _ => Err(ApiError::not_found(id)),
    }
}

/// A parent for a new or moved file: visible and a folder. Returns the resolved id.
fn check_parent(store: &Store, id: &str, all_drives: bool) -> Result<String, ApiError> {
    let p = visible(store, id, all_drives)?;
    if !p.is_folder() {
        return Err(
            ApiError::bad_request("The specified parent is not a folder.")
                .at("parameter", "parents"),
        );
    }
    Ok(p.id)
}

fn merge_props(into: &mut BTreeMap<String, String>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        match v.as_str() {
            Some(s) => {
                into.insert(k.clone(), s.to_string());
            }
            None => {
                into.remove(k);
            }
        }
    }
}

fn quota_check(store: &Store, old: u64, new: u64) -> Result<(), ApiError> {
    if new > old && store.usage - old.min(store.usage) + new > store.quota_limit {
        return Err(ApiError::forbidden(
            "storageQuotaExceeded",
            "The user's Drive storage quota has been exceeded.",
        ));
    }
    Ok(())
}

fn single_parent(parents: &[String]) -> Result<(), ApiError> {
    if parents.len() > 1 {
        return Err(ApiError::forbidden(
            "cannotAddParent",
            "Increasing the number of parents is not allowed. Add a shortcut instead.",
        ));
    }
    Ok(())
}

/// files.create (with or without content). `media_type` is the content's type when the
/// metadata names none.
pub(crate) fn create(
    store: &mut Store,
    meta: &Meta,
    content: Option<Bytes>,
    media_type: Option<&str>,
    all_drives: bool,
) -> Result<String, ApiError> {
    let mime = meta
        .mime_type
        .clone()
        .or_else(|| content.as_ref().and(media_type.map(str::to_string)))
        .unwrap_or_else(|| "application/octet-stream".to_string());
    let parents = match &meta.parents {
        Some(p) if !p.is_empty() => p.clone(),
        _ => vec!["root".to_string()],
    };
    single_parent(&parents)?;
    let parent = check_parent(store, &parents[0], all_drives)?;
    if content.as_ref().is_some_and(|c| !c.is_empty()) && (mime == FOLDER || mime == SHORTCUT) {
        return Err(ApiError::bad_request(
            "Folders and shortcuts cannot have content.",
        ));
    }
    let shortcut = if mime == SHORTCUT {
        let target = meta.shortcut_target.as_deref().ok_or_else(|| {
            ApiError::bad_request("A shortcut must have shortcutDetails.targetId.")
        })?;
        let t = visible(store, target, all_drives)?;
        Some(ShortcutDetails {
            target_id: t.id,
            target_mime_type: t.mime_type,
        })
    } else {
        None
    };
    let content = content.unwrap_or_default();
    if !is_google_type(&mime) {
        quota_check(store, 0, content.len() as u64)?;
    }
    let mut nf = NewFile::new(
        meta.name.as_deref().unwrap_or("Untitled"),
        &mime,
        Some(parent),
    );
    nf.content = content;
    nf.created = meta.created_time;
    nf.modified = meta.modified_time;
    merge_props(
        &mut nf.app_properties,
        meta.app_properties.as_ref().unwrap_or(&Map::new()),
    );
    merge_props(
        &mut nf.properties,
        meta.properties.as_ref().unwrap_or(&Map::new()),
    );
    nf.description = meta.description.clone().flatten();
    nf.shortcut = shortcut;
    let id = store.insert(nf);
    if meta.trashed == Some(true) {
        store.set_trashed(&id, true);
    }
    Ok(id)
}

/// files.update: metadata from `meta`, moves from `addParents`/`removeParents`, and the
/// content when given.
pub(crate) fn update(
    store: &mut Store,
    id: &str,
    meta: &Meta,
    content: Option<Bytes>,
    params: &Params,
) -> Result<FileSnapshot, ApiError> {
    let all_drives = params.flag("supportsAllDrives", false)?;
    let f = visible(store, id, all_drives)?;
    if store.is_root(&f.id) {
        return Err(ApiError::forbidden(
            "insufficientFilePermissions",
            "The user does not have sufficient permissions for this file.",
        ));
    }
    if let Some(m) = &meta.mime_type {
        let google = is_google_type(m) || is_google_type(&f.mime_type);
        if *m != f.mime_type && google {
            return Err(ApiError::bad_request(format!(
                "The mimeType of this file cannot be changed from {} to {m}.",
                f.mime_type
            )));
        }
    }
    // New parents: validated before anything changes.
    let mut parents = f.parents.clone();
    for r in params.list("removeParents") {
        let r = store.resolve(&r).to_string();
        parents.retain(|p| *p != r);
    }
    for a in params.list("addParents") {
        let a = check_parent(store, &a, all_drives)?;
        if store.is_ancestor_or_self(&f.id, &a) {
            return Err(ApiError::bad_request(
                "The parent cannot be the item itself or one of its descendants.",
            )
            .at("parameter", "addParents"));
        }
        if !parents.contains(&a) {
            parents.push(a);
        }
    }
    single_parent(&parents)?;
    if f.drive_id.is_some() && parents.is_empty() {
        return Err(ApiError::forbidden(
            "teamDrivesParentLimit",
            "A shared drive item must have exactly one parent.",
        ));
    }
    if let Some(c) = &content {
        if f.is_folder() || f.mime_type == SHORTCUT {
            return Err(ApiError::bad_request(
                "Folders and shortcuts cannot have content.",
            ));
        }
        if !is_google_type(&f.mime_type) {
            quota_check(store, f.size.unwrap_or(0), c.len() as u64)?;
        }
    }
    // Apply.
    let has_meta = meta.name.is_some()
        || meta.mime_type.is_some()
        || meta.app_properties.is_some()
        || meta.properties.is_some()
        || meta.description.is_some()
        || (meta.modified_time.is_some() && content.is_none());
    if has_meta {
        store.edit(&f.id, |n| {
            if let Some(name) = &meta.name {
                n.name = name.clone();
            }
            if let Some(m) = &meta.mime_type {
                n.mime_type = m.clone();
            }
            if let Some(p) = &meta.app_properties {
                merge_props(&mut n.app_properties, p);
            }
            if let Some(p) = &meta.properties {
                merge_props(&mut n.properties, p);
            }
            if let Some(d) = &meta.description {
                n.description = d.clone();
            }
            if let Some(t) = meta.modified_time {
                n.modified_time = t;
            }
        });
    }
    if parents != f.parents {
        store.set_parents(&f.id, parents);
    }
    if let Some(t) = meta.trashed {
        if t != f.explicitly_trashed {
            store.set_trashed(&f.id, t);
        }
    }
    if let Some(c) = content {
        store.set_content(&f.id, c, meta.modified_time);
    }
    visible(store, &f.id, true)
}

/// files.copy: a new file with the source's content and properties; `meta` overrides.
pub(crate) fn copy(
    store: &mut Store,
    id: &str,
    meta: &Meta,
    all_drives: bool,
) -> Result<String, ApiError> {
    let src = visible(store, id, all_drives)?;
    if src.is_folder() {
        return Err(ApiError::forbidden(
            "cannotCopyFile",
            "This file cannot be copied by the user.",
        ));
    }
    let parents = match &meta.parents {
        Some(p) if !p.is_empty() => p.clone(),
        _ if src.parents.is_empty() => vec!["root".to_string()],
        _ => src.parents.clone(),
    };
    single_parent(&parents)?;
    let parent = check_parent(store, &parents[0], all_drives)?;
    if !is_google_type(&src.mime_type) {
        quota_check(store, 0, src.content.len() as u64)?;
    }
    let name = meta
        .name
        .clone()
        .unwrap_or_else(|| format!("Copy of {}", src.name));
    let mut nf = NewFile::new(&name, &src.mime_type, Some(parent));
    nf.content = src.content.clone();
    nf.modified = meta.modified_time;
    nf.app_properties = src.app_properties.clone();
    nf.properties = src.properties.clone();
    merge_props(
        &mut nf.app_properties,
        meta.app_properties.as_ref().unwrap_or(&Map::new()),
    );
    merge_props(
        &mut nf.properties,
        meta.properties.as_ref().unwrap_or(&Map::new()),
    );
    nf.description = meta.description.clone().unwrap_or(src.description);
    nf.shortcut = src.shortcut_details;
    Ok(store.insert(nf))
}
