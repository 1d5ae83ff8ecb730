//! Google documents (Docs, Sheets, Slides, Drawings) have no content of their own: the mount
//! shows each as its export in a chosen format, read-only. `ls -l` never exports one (its
//! size shows as 0); a read exports it once and keeps the bytes for later reads of the same
//! version.

use super::tree::Entry;
use super::DriveBackend;
use crate::backend::BackendError;
use bytes::Bytes;
use reqwest::Method;
use std::ops::Range;
use std::sync::Mutex;

/// Export formats: extension → MIME type.
pub const EXPORT_FORMATS: &[(&str, &str)] = &[
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("rtf", "application/rtf"),
    ("txt", "text/plain"),
    ("md", "text/markdown"),
    ("epub", "application/epub+zip"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("ods", "application/vnd.oasis.opendocument.spreadsheet"),
    ("csv", "text/csv"),
    ("tsv", "text/tab-separated-values"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("odp", "application/vnd.oasis.opendocument.presentation"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("svg", "image/svg+xml"),
    ("pdf", "application/pdf"),
];

/// The MIME type of export format `ext`.
pub fn export_mime(ext: &str) -> Option<&'static str> {
    EXPORT_FORMATS
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map(|(_, m)| *m)
}

/// The chosen export format of each document type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exports {
    /// Google Docs (default docx).
    pub document: String,
    /// Google Sheets (default xlsx).
    pub spreadsheet: String,
    /// Google Slides (default pptx).
    pub presentation: String,
    /// Google Drawings (default png).
    pub drawing: String,
}

impl Default for Exports {
    fn default() -> Self {
        Exports {
            document: "docx".into(),
            spreadsheet: "xlsx".into(),
            presentation: "pptx".into(),
            drawing: "png".into(),
        }
    }
}

impl Exports {
    /// The extension and MIME type a document of type `mime` is exported as; `None` for
    /// types with no export (forms, sites, maps), which are hidden.
    pub fn for_type(&self, mime: &str) -> Option<(&str, &'static str)> {
        let ext = match mime.strip_prefix(super::file::GOOGLE_APPS)? {
            "document" => &self.document,
            "spreadsheet" => &self.spreadsheet,
            "presentation" => &self.presentation,
            "drawing" => &self.drawing,
            _ => return None,
        };
        Some((ext.as_str(), export_mime(ext)?))
    }
}

/// What identifies one export: file id, version, format.
type ExportKey = (String, String, String);

/// The last exports read.
#[derive(Debug, Default)]
pub struct ExportCache {
    kept: Mutex<Vec<(ExportKey, Bytes)>>,
}

/// Exports kept at once.
const KEPT: usize = 8;

impl ExportCache {
    fn get(&self, k: &ExportKey) -> Option<Bytes> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter()
            .find(|(key, _)| key == k)
            .map(|(_, b)| b.clone())
    }

    fn put(&self, k: ExportKey, b: Bytes) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(key, _)| key.0 != k.0);
        kept.push((k, b));
        if kept.len() > KEPT {
            kept.remove(0);
        }
    }
}

impl DriveBackend {
    /// Bytes `range` of document `e` exported as `mime` (fewer at its end).
    pub(super) async fn export_range(
        &self,
        e: &Entry,
        mime: &str,
        range: Range<u64>,
    ) -> Result<Bytes, BackendError> {
        let k = (
            e.id().to_string(),
            e.file.version.clone().unwrap_or_default(),
            mime.to_string(),
        );
        let all = match self.exports.get(&k) {
            Some(b) => b,
            None => {
                let call = self
                    .call(
                        Method::GET,
                        self.api_url(&format!("files/{}/export", e.id())),
                        format!("export {}", e.name),
                    )
                    .q("mimeType", mime);
                let r = self.api.send(&call).await?;
                let b = r.bytes().await.map_err(|err| {
                    BackendError::Unreachable(format!(
                        "export {}: {}",
                        e.name,
                        super::api::why(&err)
                    ))
                })?;
                self.exports.put(k, b.clone());
                b
            }
        };
        let len = all.len() as u64;
        let start = range.start.min(len);
        let end = range.end.min(len);
        Ok(all.slice(start as usize..end as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_types_map_to_their_formats() {
        let x = Exports::default();
        assert_eq!(
            x.for_type("application/vnd.google-apps.document")
                .map(|p| p.0),
            Some("docx")
        );
        assert_eq!(
            x.for_type("application/vnd.google-apps.drawing")
                .map(|p| p.1),
            Some("image/png")
        );
        assert_eq!(x.for_type("application/vnd.google-apps.form"), None);
        assert_eq!(export_mime("PDF"), Some("application/pdf"));
    }
}
