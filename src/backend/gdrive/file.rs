//! The Drive v3 `File` resource, as far as a filesystem needs it, and what kind of entry each
//! file becomes in the mount.

use crate::backend::PosixMeta;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// MIME type of a folder.
pub const FOLDER: &str = "application/vnd.google-apps.folder";
/// MIME type of a shortcut.
pub const SHORTCUT: &str = "application/vnd.google-apps.shortcut";
/// Prefix of every Google Workspace type (Docs, Sheets, forms, sites…), none downloadable.
pub const GOOGLE_APPS: &str = "application/vnd.google-apps.";

/// The fields every listing and metadata request asks for (int64 values arrive as strings).
pub const FIELDS: &str = "id,name,mimeType,parents,size,md5Checksum,modifiedTime,createdTime,\
version,headRevisionId,trashed,explicitlyTrashed,appProperties,shortcutDetails,driveId";

/// A file's shortcut target.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ShortcutDetails {
    /// The id of the file the shortcut points to.
    #[serde(default)]
    pub target_id: String,
    /// The MIME type of the target.
    #[serde(default)]
    pub target_mime_type: String,
}

/// One Drive file, folder, shortcut or document.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DriveFile {
    /// The file id.
    pub id: String,
    /// The name, which may hold `/` and may repeat in one folder.
    #[serde(default)]
    pub name: String,
    /// MIME type; folders, shortcuts and Google documents have their own.
    #[serde(default)]
    pub mime_type: String,
    /// Parent folder ids.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Size in bytes (a string in JSON); absent for folders and Google documents.
    #[serde(default, deserialize_with = "int64")]
    pub size: Option<String>,
    /// MD5 of the content, for binary files.
    #[serde(default)]
    pub md5_checksum: Option<String>,
    /// RFC 3339 modification time.
    #[serde(default)]
    pub modified_time: Option<String>,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created_time: Option<String>,
    /// A number that grows with every change (a string in JSON).
    #[serde(default, deserialize_with = "int64")]
    pub version: Option<String>,
    /// The id of the current content revision.
    #[serde(default)]
    pub head_revision_id: Option<String>,
    /// In the trash.
    #[serde(default)]
    pub trashed: bool,
    /// Put in the trash itself (not with a folder above it).
    #[serde(default)]
    pub explicitly_trashed: bool,
    /// Properties private to this application: the POSIX attributes.
    #[serde(default)]
    pub app_properties: BTreeMap<String, String>,
    /// Set on shortcuts.
    #[serde(default)]
    pub shortcut_details: Option<ShortcutDetails>,
    /// The shared drive holding the file.
    #[serde(default)]
    pub drive_id: Option<String>,
}

/// An int64 field: Drive sends strings; some servers send numbers.
fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

impl DriveFile {
    /// Whether this is a folder (after shortcut resolution, the target's type counts).
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER
    }

    /// Whether this is a shortcut.
    pub fn is_shortcut(&self) -> bool {
        self.mime_type == SHORTCUT
    }

    /// Whether this is a Google document (Docs, Sheets, Slides, Drawings, or another type
    /// with no downloadable content).
    pub fn is_google_doc(&self) -> bool {
        self.mime_type.starts_with(GOOGLE_APPS) && !self.is_folder() && !self.is_shortcut()
    }

    /// Size in bytes (0 when Drive gives none).
    pub fn size(&self) -> u64 {
        self.size
            .as_deref()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Modification time.
    pub fn mtime(&self) -> SystemTime {
        self.modified_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Creation time, for ordering duplicates (the Unix epoch when unknown).
    pub fn ctime(&self) -> SystemTime {
        self.created_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// What identifies this content: the MD5 where Drive gives one, else the head revision,
    /// else the version.
    pub fn etag(&self) -> Option<String> {
        self.md5_checksum
            .clone()
            .or_else(|| self.head_revision_id.clone().map(|r| format!("rev:{r}")))
            .or_else(|| self.version.clone().map(|v| format!("v:{v}")))
    }

    /// The POSIX attributes kept in `appProperties`.
    pub fn meta(&self) -> PosixMeta {
        PosixMeta::from_stored(
            self.app_properties
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }
}

/// Parse an RFC 3339 time as Drive writes it (`2026-12-03T12:00:00.000Z`).
pub fn parse_time(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| SystemTime::from(t.with_timezone(&chrono::Utc)))
}

/// Format a time as Drive reads it.
pub fn format_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One page of `files.list`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileList {
    /// The files of this page.
    #[serde(default)]
    pub files: Vec<DriveFile>,
    /// The token of the next page.
    #[serde(default)]
    pub next_page_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_resource_with_string_numbers() {
        let f: DriveFile = serde_json::from_str(
            r#"{"id":"a1","name":"x/y.jpg","mimeType":"image/jpeg","parents":["p"],
               "size":"12345678901","md5Checksum":"abc","modifiedTime":"2026-12-03T12:00:00.250Z",
               "version":"7","appProperties":{"mode":"33188","uid":"1000"}}"#,
        )
        .unwrap();
        assert_eq!(f.size(), 12_345_678_901);
        assert_eq!(f.etag().as_deref(), Some("abc"));
        assert_eq!(f.meta().uid, Some(1000));
        assert_eq!(format_time(f.mtime()), "2026-12-03T12:00:00.250Z");
        assert!(!f.is_google_doc() && !f.is_folder());
        let doc: DriveFile = serde_json::from_str(
            r#"{"id":"d","name":"n","mimeType":"application/vnd.google-apps.document","version":"3"}"#,
        )
        .unwrap();
        assert!(doc.is_google_doc());
        let numbers: DriveFile =
            serde_json::from_str(r#"{"id":"n","size":12,"version":3}"#).unwrap();
        assert_eq!(
            (numbers.size(), numbers.version.as_deref()),
            (12, Some("3"))
        );
        assert_eq!(doc.etag().as_deref(), Some("v:3"));
    }
}
