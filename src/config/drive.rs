//! The options of Google Drive mounts (`gdrive://` sources); other sources ignore them.

use std::path::PathBuf;
use std::time::Duration;

/// Whether Google documents show up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GDocs {
    /// As exported files (read-only).
    #[default]
    Export,
    /// Not at all.
    Hide,
}

/// Drive-only settings of a mount.
#[derive(Debug, Clone, PartialEq)]
pub struct DriveOptions {
    /// Token file (Google's `authorized_user` JSON, or one holding an `access_token`);
    /// default `~/.config/cloudmount/gdrive/LABEL.json`.
    pub token_file: Option<PathBuf>,
    /// OAuth token endpoint, overriding the credential file's `token_uri`.
    pub token_uri: Option<String>,
    /// The user a service account acts as (domain-wide delegation).
    pub subject: Option<String>,
    /// Start at this folder id instead of My Drive's root (the path is then below it).
    pub root_folder: Option<String>,
    /// Mount a shared drive by id.
    pub drive_id: Option<String>,
    /// How often the changes feed is read (0: never; listings are then re-read when they
    /// expire).
    pub poll_interval: Duration,
    /// Google documents exported or hidden.
    pub gdocs: GDocs,
    /// Export format of Google Docs (an extension: docx, odt, pdf, txt, …).
    pub export_document: String,
    /// Export format of Google Sheets (xlsx, ods, csv, pdf, …).
    pub export_spreadsheet: String,
    /// Export format of Google Slides (pptx, odp, pdf, …).
    pub export_presentation: String,
    /// Export format of Google Drawings (png, jpg, svg, pdf).
    pub export_drawing: String,
    /// Trashed files hidden (false) or shown under `.Trash` (true).
    pub show_trash: bool,
    /// Deleting moves to the trash (false) or deletes for good (true).
    pub delete_permanently: bool,
    /// Most Drive API requests per second on average (0: unlimited).
    pub rate: f64,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

impl Default for DriveOptions {
    fn default() -> Self {
        DriveOptions {
            token_file: None,
            token_uri: None,
            subject: None,
            root_folder: None,
            drive_id: None,
            poll_interval: Duration::from_secs(60),
            gdocs: GDocs::Export,
            export_document: "docx".into(),
            export_spreadsheet: "xlsx".into(),
            export_presentation: "pptx".into(),
            export_drawing: "png".into(),
            show_trash: false,
            delete_permanently: false,
            rate: 10.0,
            burst: 100,
        }
    }
}
