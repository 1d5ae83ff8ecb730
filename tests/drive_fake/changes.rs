//! changes.getStartPageToken and changes.list.
//!
//! The store keeps an append-only log; a page token is a position in it. As on Drive, a file
//! that changed several times appears once, at its latest change, so a client sees each
//! file's current state rather than every intermediate one. A full page ends with
//! `nextPageToken`; the last page with `newStartPageToken` (where to poll next time).

use super::fields::{self, apply, Schema, CHANGES_DEFAULT};
use super::http::{json_response, rfc3339, ApiError, Params, Resp};
use super::Shared;
use serde_json::{json, Value};
use std::sync::Arc;

fn check_drive(shared: &Shared, p: &Params) -> Result<Option<String>, ApiError> {
    let Some(d) = p.get("driveId") else {
        return Ok(None);
    };
    if !p.flag("supportsAllDrives", false)? {
        return Err(ApiError::forbidden(
            "teamDrivesParameterRequired",
            "The supportsAllDrives parameter must be set to true when driveId is specified.",
        ));
    }
    if !shared.store().drives().iter().any(|(id, _)| id == d) {
        return Err(
            ApiError::new(404, "notFound", format!("Shared drive not found: {d}"))
                .at("parameter", "driveId"),
        );
    }
    Ok(Some(d.to_string()))
}

/// `GET /drive/v3/changes/startPageToken`.
pub(crate) fn start_page_token(shared: &Arc<Shared>, p: &Params) -> Result<Resp, ApiError> {
    check_drive(shared, p)?;
    let next = shared.store().next_change_seq();
    Ok(json_response(
        200,
        &json!({"kind": "drive#startPageToken", "startPageToken": next.to_string()}),
    ))
}

/// `GET /drive/v3/changes`.
pub(crate) fn list(shared: &Arc<Shared>, p: &Params) -> Result<Resp, ApiError> {
    let Some(token) = p.get("pageToken") else {
        return Err(
            ApiError::new(400, "required", "Required parameter: pageToken")
                .at("parameter", "pageToken"),
        );
    };
    let sel = fields::select(p, CHANGES_DEFAULT, Schema::ChangeList)?;
    let page_size = p.page_size(100, 1000)?;
    let include_removed = p.flag("includeRemoved", true)?;
    let all_drives = p.flag("supportsAllDrives", false)?;
    let include_all = p.flag("includeItemsFromAllDrives", false)?;
    let drive = check_drive(shared, p)?;
    let store = shared.store();
    let next = store.next_change_seq();
    let start: u64 = match token.parse() {
        Ok(n) if n >= 1 && n <= next => n,
        _ => return Err(ApiError::invalid_value("pageToken")),
    };
    let mut changes: Vec<Value> = Vec::new();
    let mut resume = None;
    for seq in start..next {
        let Some(c) = store.change(seq) else {
            continue;
        };
        if !store.is_latest(c) || (c.removed && !include_removed) {
            continue;
        }
        let in_scope = match &drive {
            Some(d) => c.drive_id.as_deref() == Some(d.as_str()),
            None => c.drive_id.is_none() || (all_drives && include_all),
        };
        if !in_scope {
            continue;
        }
        if changes.len() == page_size {
            resume = Some(seq);
            break;
        }
        let mut ch = json!({
            "kind": "drive#change",
            "changeType": "file",
            "time": rfc3339(c.time),
            "removed": c.removed,
            "fileId": c.file_id,
        });
        if let Some(d) = &c.drive_id {
            ch["driveId"] = json!(d);
        }
        if !c.removed {
            if let Some(f) = store.snapshot(&c.file_id) {
                ch["file"] = shared.file_value(&store, &f);
            }
        }
        changes.push(ch);
    }
    let mut v = json!({"kind": "drive#changeList", "changes": changes});
    match resume {
        Some(seq) => v["nextPageToken"] = json!(seq.to_string()),
        None => v["newStartPageToken"] = json!(next.to_string()),
    }
    Ok(json_response(200, &apply(&v, &sel)))
}
