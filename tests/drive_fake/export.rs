//! files.export: Google Docs types converted to download formats.
//!
//! The "conversion" is deterministic: `EXPORT {mimeType}\n` followed by the doc's stored body,
//! so tests can predict the bytes ([`export_bytes`]). Each type accepts the formats Drive lists
//! for it in about.exportFormats; others are 400, results over 10 MB are 403
//! `exportSizeLimitExceeded`, and non-Docs files are 403 `fileNotExportable`.

use super::http::{response, ApiError, Params, Resp};
use super::store::{is_google_type, DOCUMENT, DRAWING, PRESENTATION, SPREADSHEET};
use super::Shared;
use std::sync::Arc;

/// Drive's limit on exported content.
pub(crate) const EXPORT_LIMIT: usize = 10 * 1024 * 1024;

const PDF: &str = "application/pdf";

/// Export formats of a Google type (empty for everything else).
pub(crate) fn formats(mime: &str) -> &'static [&'static str] {
    match mime {
        DOCUMENT => &[
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/vnd.oasis.opendocument.text",
            PDF,
            "text/plain",
            "application/rtf",
            "text/html",
            "application/epub+zip",
            "text/markdown",
        ],
        SPREADSHEET => &[
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "application/x-vnd.oasis.opendocument.spreadsheet",
            "application/vnd.oasis.opendocument.spreadsheet",
            "text/csv",
            "text/tab-separated-values",
            PDF,
        ],
        PRESENTATION => &[
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            "application/vnd.oasis.opendocument.presentation",
            PDF,
            "text/plain",
        ],
        DRAWING => &["image/png", "image/svg+xml", PDF, "image/jpeg"],
        _ => &[],
    }
}

/// What exporting a doc whose body is `body` as `mime` yields.
pub(crate) fn export_bytes(body: &[u8], mime: &str) -> Vec<u8> {
    let mut out = format!("EXPORT {mime}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// Checks an export of a file with type `file_mime` and body `body` to `mime`.
pub(crate) fn export(file_mime: &str, body: &[u8], mime: &str) -> Result<Vec<u8>, ApiError> {
    if !is_google_type(file_mime) || formats(file_mime).is_empty() {
        return Err(ApiError::forbidden(
            "fileNotExportable",
            "Export only supports Docs Editors files.",
        ));
    }
    if !formats(file_mime).contains(&mime) {
        return Err(
            ApiError::bad_request("The requested conversion is not supported.")
                .at("parameter", "convertTo"),
        );
    }
    let out = export_bytes(body, mime);
    if out.len() > EXPORT_LIMIT {
        return Err(ApiError::forbidden(
            "exportSizeLimitExceeded",
            "This file is too large to be exported.",
        ));
    }
    Ok(out)
}

/// `GET /drive/v3/files/{id}/export?mimeType=M`.
pub(crate) fn route(shared: &Arc<Shared>, id: &str, params: &Params) -> Result<Resp, ApiError> {
    let Some(mime) = params.get("mimeType") else {
        return Err(
            ApiError::new(400, "required", "Required parameter: mimeType")
                .at("parameter", "mimeType"),
        );
    };
    let f = shared.visible_file(id, params)?;
    let out = export(&f.mime_type, &f.content, mime)?;
    Ok(response(200, mime, out))
}
