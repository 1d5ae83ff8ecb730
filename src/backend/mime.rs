//! Content-Type from a file name, as s3fs sets it: the extension looked up in the system's
//! mime types (`/etc/mime.types`, or `-o mime=FILE`), `application/octet-stream` otherwise.

use std::collections::HashMap;
use std::path::Path;

/// What objects without a known extension are stored as.
pub const DEFAULT: &str = "application/octet-stream";

/// Extensions (lower case) and their types.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MimeTypes {
    by_ext: HashMap<String, String>,
}

impl MimeTypes {
    /// The table in `text`, in the `mime.types` format: a type, then its extensions, per line;
    /// `#` starts a comment. A later line does not replace an extension already named.
    pub fn parse(text: &str) -> Self {
        let mut by_ext = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(kind) = words.next().filter(|k| k.contains('/')) else {
                continue;
            };
            for ext in words {
                by_ext
                    .entry(ext.to_ascii_lowercase())
                    .or_insert_with(|| kind.to_string());
            }
        }
        MimeTypes { by_ext }
    }

    /// The table in file `path`; an empty one (everything `application/octet-stream`) when it
    /// cannot be read, which is logged.
    pub fn load(path: &Path) -> Self {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the mime types; objects are stored as application/octet-stream (-o mime=FILE names another table, mime=off turns this off)");
                Self::default()
            }
        }
    }

    /// The type of an object named `key`, by the extension of its last name.
    pub fn of(&self, key: &str) -> &str {
        let name = key.trim_end_matches('/').rsplit('/').next().unwrap_or("");
        match name.rsplit_once('.') {
            Some((stem, ext)) if !stem.is_empty() => self
                .by_ext
                .get(&ext.to_ascii_lowercase())
                .map_or(DEFAULT, String::as_str),
            _ => DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_the_extension() {
        let t = MimeTypes::parse(
            "# comment\ntext/plain\t\ttxt text\nimage/jpeg jpeg jpg jpe\napplication/x-nothing\nimage/other jpg\n",
        );
        assert_eq!(t.of("a/b/photo.JPG"), "image/jpeg");
        assert_eq!(t.of("notes.txt"), "text/plain");
        assert_eq!(t.of("archive.tar.zz"), DEFAULT);
        assert_eq!(t.of("Makefile"), DEFAULT);
        assert_eq!(
            t.of(".jpg"),
            DEFAULT,
            "a hidden file's name is no extension"
        );
        assert_eq!(t.of("dir.jpg/"), "image/jpeg");
        let none = MimeTypes::load(Path::new("/nonexistent/mime.types"));
        assert_eq!(none.of("x.txt"), DEFAULT);
    }
}
