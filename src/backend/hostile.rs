//! Listings that any key can be in: keys no file name can carry (`a//b`, `.` and `..`
//! segments, NUL bytes, invalid UTF-8) are listed under their escaped names
//! ([`super::escaped`]); the few that cannot be shown even so (longer than 1,024 bytes
//! once escaped) are hidden, each with one log line, instead of failing the directory. Nothing the
//! mount shows can name a path outside the mount or the cache directory.

use super::escaped::name_of;
use super::raw::list::RawPage;
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
                "hidden: this key cannot be shown as a file name, even escaped (use the store's own tools for it)"
            );
        }
    }

    /// A listing of `prefix` (mount-relative; `full` in the bucket) through `raw`, with
    /// unusable names escaped and the rest of them hidden; `None` when the store has no raw listing. A page of hidden keys
    /// only says nothing about what follows (a lookup asks for one key), so listing goes on,
    /// bounded, until a usable entry or the end. `store` names the store in errors.
    pub async fn list(
        &self,
        raw: &dyn RawStore,
        store: &str,
        (prefix, full): (&str, &[u8]),
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<Option<ListPage>, BackendError> {
        let mut token = token.map(str::to_string);
        let mut marker = false;
        for _ in 0..100 {
            let Some(raw_page) = raw.list(full, token.as_deref(), max_keys).await? else {
                return Ok(None);
            };
            let mut page = self.page(prefix, full, raw_page, raw.addresses_keys());
            page.marker |= marker;
            marker = page.marker;
            if page.next_token.is_none() || !page.objects.is_empty() || !page.prefixes.is_empty() {
                return Ok(Some(page));
            }
            token = page.next_token;
        }
        Err(BackendError::Other(format!(
            "{store}: more than 100 pages of keys no file name can carry under {:?}",
            String::from_utf8_lossy(full)
        )))
    }

    /// A raw page of the full prefix `full` as the page of the mount-relative `prefix`.
    /// With `escapes`, unusable names are shown escaped; without (a store whose requests
    /// cannot reach such keys), they are hidden too.
    pub fn page(&self, prefix: &str, full: &[u8], raw: RawPage, escapes: bool) -> ListPage {
        let mut page = ListPage {
            next_token: raw.next_token,
            ..ListPage::default()
        };
        for o in raw.objects {
            if o.key == full {
                page.marker = !full.is_empty();
                continue;
            }
            let Some(rest) = o.key.strip_prefix(full) else {
                continue;
            };
            match shown(rest, escapes) {
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
            match shown(rest, escapes) {
                Ok(name) => page.prefixes.push(format!("{prefix}{name}/")),
                Err(why) => self.hide(&p, why),
            }
        }
        page
    }
}

/// The name key segment `seg` is shown under (see [`Hidden::page`]).
fn shown(seg: &[u8], escapes: bool) -> Result<std::borrow::Cow<'_, str>, &'static str> {
    match name_of(seg)? {
        std::borrow::Cow::Owned(_) if !escapes => {
            Err("a name that must be escaped, on a store whose requests cannot reach it")
        }
        name if !escapes && name.bytes().any(|b| b.is_ascii_control()) => {
            Err("a name with a control character, on a store whose requests cannot reach it")
        }
        name => Ok(name),
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
    fn unusable_names_are_escaped_and_too_long_ones_hidden() {
        let long = [&b"pre/dir/"[..], &[b'L'; 1025]].concat();
        let raw = RawPage {
            objects: vec![
                obj(b"pre/dir/"),
                obj(b"pre/dir/ok"),
                obj(b"pre/dir/.."),
                obj(b"pre/dir/a\x01"),
                obj(b"pre/dir/\xff"),
                obj(&long),
            ],
            prefixes: vec![
                b"pre/dir//".to_vec(),
                b"pre/dir/sub/".to_vec(),
                b"pre/dir/./".to_vec(),
            ],
            next_token: None,
        };
        let p = Hidden::default().page("dir/", b"pre/dir/", raw.clone(), true);
        assert!(p.marker);
        let keys: Vec<&str> = p.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["dir/ok", "dir/%%..", "dir/a\x01", "dir/%%%FF"]);
        assert_eq!(p.prefixes, ["dir/%%/", "dir/sub/", "dir/%%./"]);
        let p = Hidden::default().page("dir/", b"pre/dir/", raw, false);
        let keys: Vec<&str> = p.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["dir/ok"], "hidden where they could not be reached");
        assert_eq!(p.prefixes, ["dir/sub/"]);
    }
}
