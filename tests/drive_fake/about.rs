//! about.get and the read side of shared drives (drives.list, drives.get).

use super::export::formats;
use super::fields::{apply, parse};
use super::http::{json_response, ApiError, Params, Resp};
use super::store::{DOCUMENT, DRAWING, PRESENTATION, SPREADSHEET};
use super::Shared;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The fake account's address.
pub(crate) const USER_EMAIL: &str = "fake.user@example.com";

/// The fake account as a `drive#user`.
pub(crate) fn user_json() -> Value {
    json!({
        "kind": "drive#user",
        "displayName": "Fake User",
        "emailAddress": USER_EMAIL,
        "me": true,
        "permissionId": "00000000000000000001",
    })
}

/// `GET /drive/v3/about`. Like Drive, `fields` is required for this method.
pub(crate) fn about(shared: &Arc<Shared>, params: &Params) -> Result<Resp, ApiError> {
    let Some(spec) = params.get("fields") else {
        return Err(ApiError::new(
            400,
            "required",
            "The 'fields' parameter is required for this method.",
        )
        .at("parameter", "fields"));
    };
    let sel = parse(spec).map_err(|f| {
        ApiError::new(
            400,
            "invalidParameter",
            format!("Invalid field selection {f}"),
        )
        .at("parameter", "fields")
    })?;
    let (limit, usage, trash) = {
        let store = shared.store();
        (store.quota_limit, store.usage, store.usage_in_trash())
    };
    let export_formats: Map<String, Value> = [DOCUMENT, SPREADSHEET, PRESENTATION, DRAWING]
        .iter()
        .map(|m| (m.to_string(), json!(formats(m))))
        .collect();
    let v = json!({
        "kind": "drive#about",
        "user": user_json(),
        "storageQuota": {
            "limit": limit.to_string(),
            "usage": usage.to_string(),
            "usageInDrive": usage.to_string(),
            "usageInDriveTrash": trash.to_string(),
        },
        "maxUploadSize": "5242880000000",
        "appInstalled": false,
        "canCreateDrives": true,
        "exportFormats": export_formats,
        "importFormats": {},
        "folderColorPalette": [],
    });
    Ok(json_response(200, &apply(&v, &sel)))
}

fn drive_json(id: &str, name: &str) -> Value {
    json!({"kind": "drive#drive", "id": id, "name": name, "hidden": false})
}

/// `GET /drive/v3/drives`: every shared drive (no `q` support).
pub(crate) fn drives_list(shared: &Arc<Shared>) -> Resp {
    let drives: Vec<Value> = shared
        .store()
        .drives()
        .iter()
        .map(|(id, name)| drive_json(id, name))
        .collect();
    json_response(200, &json!({"kind": "drive#driveList", "drives": drives}))
}

/// `GET /drive/v3/drives/{id}`.
pub(crate) fn drives_get(shared: &Arc<Shared>, id: &str) -> Result<Resp, ApiError> {
    let store = shared.store();
    let (id, name) = store
        .drives()
        .iter()
        .find(|(d, _)| d == id)
        .ok_or_else(|| {
            ApiError::new(404, "notFound", format!("Shared drive not found: {id}"))
                .at("parameter", "driveId")
        })?;
    Ok(json_response(200, &drive_json(id, name)))
}
