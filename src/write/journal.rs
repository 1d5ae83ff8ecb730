//! Journal records: `<staging file>.key`, written next to a staging file while its closed
//! content is on its way to the store, so the next mount can finish the upload.
//!
//! Format, one `name=value` per line: the POSIX attributes to store (`mode`, `uid`, `gid`,
//! `mtime`), then, for content only partly staged, `base=` (the ETag of the stored version
//! the rest is copied from) and `local=` (the byte ranges the file holds), and last `key=`
//! with the object key (which may hold any character, newlines included). A record of only a
//! key (the first format) has no attributes.

use super::Ranges;
use crate::backend::PosixMeta;
use std::path::{Path, PathBuf};

/// What a journal record says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The object the content belongs to.
    pub key: String,
    /// The POSIX attributes to store with it.
    pub meta: PosixMeta,
    /// For content only partly staged: the stored version's ETag and the ranges held locally
    /// (the rest is that version's bytes).
    pub base: Option<(String, Ranges)>,
}

/// Lines before `key=` a record may have.
const MAX_LINES: usize = 8;

impl Record {
    /// The record's text.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (name, value) in self.meta.to_pairs() {
            text.push_str(&format!("{name}={value}\n"));
        }
        if let Some((etag, local)) = &self.base {
            // An ETag has no newline; the format keeps it on one line regardless.
            text.push_str(&format!("base={}\n", etag.replace('\n', "")));
            text.push_str(&format!("local={}\n", local.to_text()));
        }
        text.push_str("key=");
        text.push_str(&self.key);
        text
    }

    /// Read a record's text.
    pub fn parse(text: &str) -> Record {
        let mut pairs = Vec::new();
        let (mut etag, mut local) = (None, None);
        let mut rest = text;
        for _ in 0..MAX_LINES {
            if let Some(key) = rest.strip_prefix("key=") {
                return Record {
                    key: key.to_string(),
                    meta: PosixMeta::from_pairs(pairs),
                    base: etag.zip(local),
                };
            }
            let Some((line, next)) = rest.split_once('\n') else {
                break;
            };
            match line.split_once('=') {
                Some(("base", v)) => etag = Some(v.to_string()),
                Some(("local", v)) => local = Ranges::parse(v),
                Some(pair) => pairs.push(pair),
                None => break,
            }
            rest = next;
        }
        Record {
            key: text.to_string(),
            ..Record::default()
        }
    }
}

/// The record of staging file `data`.
pub fn record_path(data: &Path) -> PathBuf {
    let mut p = data.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_the_first_format_still_reads() {
        let r = Record {
            key: "dir/odd\nkey=name".into(),
            meta: PosixMeta {
                mode: Some(0o100640),
                uid: Some(7),
                gid: None,
                mtime: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)),
                ctime: Some(std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_001, 5)),
            },
            base: Some(("\"abc-3\"".into(), Ranges::from_range(5..10))),
        };
        assert_eq!(Record::parse(&r.to_text()), r);
        let plain = Record::parse("plain/key");
        assert_eq!((plain.key.as_str(), plain.base), ("plain/key", None));
        assert!(plain.meta.is_empty());
    }
}
