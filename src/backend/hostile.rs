//! Keys no file name can carry (`a//b`, `.` and `..` segments, control characters, names over
//! 255 bytes, invalid UTF-8) are hidden from listings, each with one log line, instead of
//! failing the directory; nothing the mount shows can name a path outside the mount or the
//! cache directory. The mount cannot open, remove or move what it hides: use the store's own
//! tools for those keys.

use super::raw::list::{usable_name, RawPage};
use super::raw::RawStore;
use super::{BackendError, ListPage, ObjectInfo, PosixMeta};
use std::collections::HashSet;
use std::sync::Mutex;

/// Keys hidden so far (each is logged once).
#[derive(Debug, Default)]
pub struct Hidden {
    logged: Mutex<HashSet<Vec<u8>>>,
}

impl Hidden {
    fn hide(&self, key: &[u8], why: &str) {
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() < 100_000 && logged.insert(key.to_vec()) {
            tracing::warn!(
                key = %String::from_utf8_lossy(key).escape_debug(),
                why,
                "hidden: this key cannot be a file name (use the store's own tools for it)"
            );
        }
    }

    /// A listing of `prefix` (mount-relative; `full` in the bucket) through `raw`, with
    /// unusable keys hidden; `None` when the store has no raw listing. A page of hidden keys
    /// only says nothing about what follows (a lookup asks for one key), so listing goes on,
    /// bounded, until a usable entry or the end. `store` names the store in errors.
    pub async fn list(
        &self,
        raw: &dyn RawStore,
        store: &str,
        (prefix, full): (&str, &str),
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<Option<ListPage>, BackendError> {
        let mut token = token.map(str::to_string);
        let mut marker = false;
        for _ in 0..100 {
            let Some(raw_page) = raw.list(full, token.as_deref(), max_keys).await? else {
                return Ok(None);
            };
            let mut page = self.page(prefix, full, raw_page);
            page.marker |= marker;
            marker = page.marker;
            if page.next_token.is_none() || !page.objects.is_empty() || !page.prefixes.is_empty() {
                return Ok(Some(page));
            }
            token = page.next_token;
        }
        Err(BackendError::Other(format!(
            "{store}: more than 100 pages of keys no file name can carry under {full:?}"
        )))
    }

    /// A raw page of the full prefix `full` as the page of the mount-relative `prefix`.
    pub fn page(&self, prefix: &str, full: &str, raw: RawPage) -> ListPage {
        let mut page = ListPage {
            next_token: raw.next_token,
            ..ListPage::default()
        };
        let full = full.as_bytes();
        for o in raw.objects {
            if o.key == full {
                page.marker = !full.is_empty();
                continue;
            }
            let Some(rest) = o.key.strip_prefix(full) else {
                continue;
            };
            match usable_name(rest) {
                Ok(name) => page.objects.push(ObjectInfo {
                    key: format!("{prefix}{name}"),
                    size: o.size,
                    mtime: o.mtime,
                    etag: o.etag,
                    meta: PosixMeta::default(),
                    size_unknown: false,
                }),
                Err(why) => self.hide(&o.key, why),
            }
        }
        for p in raw.prefixes {
            let Some(rest) = p.strip_prefix(full).and_then(|r| r.strip_suffix(b"/")) else {
                continue;
            };
            match usable_name(rest) {
                Ok(name) => page.prefixes.push(format!("{prefix}{name}/")),
                Err(why) => self.hide(&p, why),
            }
        }
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::raw::list::RawObject;

    fn obj(key: &[u8]) -> RawObject {
        RawObject {
            key: key.to_vec(),
            size: 1,
            mtime: std::time::SystemTime::UNIX_EPOCH,
            etag: None,
        }
    }

    #[test]
    fn hostile_keys_are_hidden_and_the_rest_listed() {
        let raw = RawPage {
            objects: vec![
                obj(b"pre/dir/"),
                obj(b"pre/dir/ok"),
                obj(b"pre/dir/.."),
                obj(b"pre/dir/a\x01"),
                obj(b"pre/dir/\xff"),
            ],
            prefixes: vec![
                b"pre/dir//".to_vec(),
                b"pre/dir/sub/".to_vec(),
                b"pre/dir/./".to_vec(),
            ],
            next_token: None,
        };
        let p = Hidden::default().page("dir/", "pre/dir/", raw);
        assert!(p.marker);
        assert_eq!(p.objects.len(), 1);
        assert_eq!(p.objects[0].key, "dir/ok");
        assert_eq!(p.prefixes, ["dir/sub/"]);
    }
}
