//! The JSON representation of a file (Drive v3's File resource), before `fields` selection.
//!
//! int64 fields (`size`, `version`, `quotaBytesUsed`) are JSON strings, timestamps are
//! RFC 3339 with milliseconds, and fields that do not apply are absent rather than null, as
//! Drive answers.

use super::about::user_json;
use super::export::formats;
use super::http::{query_encode, rfc3339};
use super::store::{is_google_type, FileSnapshot};
use serde_json::{json, Map, Value};

fn map_json(m: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<Map<_, _>>(),
    )
}

/// The full File resource of `f` (a snapshot with computed fields); `base` is the server URL
/// used in `exportLinks`.
pub(crate) fn file_json(f: &FileSnapshot, base: &str, is_root: bool) -> Value {
    let folder = f.is_folder();
    let binary = !is_google_type(&f.mime_type);
    let mut o = json!({
        "kind": "drive#file",
        "id": f.id,
        "name": f.name,
        "mimeType": f.mime_type,
        "starred": false,
        "trashed": f.trashed,
        "explicitlyTrashed": f.explicitly_trashed,
        "spaces": ["drive"],
        "version": f.version.to_string(),
        "createdTime": rfc3339(f.created_time),
        "modifiedTime": rfc3339(f.modified_time),
        "viewedByMe": true,
        "shared": false,
        "ownedByMe": f.drive_id.is_none(),
        "quotaBytesUsed": f.size.unwrap_or(0).to_string(),
        "webViewLink": format!("https://drive.google.com/open?id={}", f.id),
        "capabilities": {
            "canAddChildren": folder,
            "canListChildren": folder,
            "canCopy": !folder,
            "canDelete": !is_root,
            "canDownload": binary,
            "canEdit": true,
            "canModifyContent": true,
            "canRename": !is_root,
            "canTrash": !is_root,
            "canUntrash": !is_root,
            "canMoveItemWithinDrive": !is_root,
            "canReadRevisions": binary,
        },
    });
    let Some(obj) = o.as_object_mut() else {
        return o;
    };
    let mut set = |k: &str, v: Value| {
        obj.insert(k.to_string(), v);
    };
    if !f.parents.is_empty() {
        set("parents", json!(f.parents));
    }
    match &f.drive_id {
        Some(d) => {
            set("driveId", json!(d));
            set("teamDriveId", json!(d));
        }
        None => set("owners", json!([user_json()])),
    }
    if let Some(size) = f.size {
        set("size", json!(size.to_string()));
    }
    if let Some(m) = &f.md5_checksum {
        set("md5Checksum", json!(m));
    }
    if let Some(m) = &f.sha1_checksum {
        set("sha1Checksum", json!(m));
    }
    if let Some(m) = &f.sha256_checksum {
        set("sha256Checksum", json!(m));
    }
    if let Some(r) = &f.head_revision_id {
        set("headRevisionId", json!(r));
    }
    if binary {
        if let Some((_, ext)) = f.name.rsplit_once('.') {
            set("fileExtension", json!(ext));
        }
        if let Some((_, ext)) = f.name.split_once('.') {
            set("fullFileExtension", json!(ext));
        }
        set("originalFilename", json!(f.name));
    }
    if f.explicitly_trashed {
        if let Some(t) = f.trashed_time {
            set("trashedTime", json!(rfc3339(t)));
        }
        set("trashingUser", user_json());
    }
    if !f.app_properties.is_empty() {
        set("appProperties", map_json(&f.app_properties));
    }
    if !f.properties.is_empty() {
        set("properties", map_json(&f.properties));
    }
    if let Some(d) = &f.description {
        set("description", json!(d));
    }
    if let Some(s) = &f.shortcut_details {
        set(
            "shortcutDetails",
            json!({"targetId": s.target_id, "targetMimeType": s.target_mime_type}),
        );
    }
    let exports = formats(&f.mime_type);
    if !exports.is_empty() {
        let links: Map<String, Value> = exports
            .iter()
            .map(|m| {
                let url = format!(
                    "{base}/drive/v3/files/{}/export?mimeType={}",
                    f.id,
                    query_encode(m)
                );
                (m.to_string(), json!(url))
            })
            .collect();
        set("exportLinks", Value::Object(links));
    }
    o
}
