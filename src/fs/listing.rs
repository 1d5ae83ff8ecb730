//! Turning paged, delimited LIST results into directory entries, one page at a time.
//!
//! A directory's entries are its objects (files) and common prefixes (sub-directories), in key
//! order across pages. When an object `name` and a prefix `name/` both exist, the directory
//! keeps the name and the file is listed as `name` + the conflict suffix. Because `name/` may
//! come several items (even pages) after `name` (`name.jpg` sorts between them), a file is held
//! back until the listing has passed the point where `name/` would be, so memory holds at most
//! one page plus the few files whose prefix position is still ahead.

use super::attr::{Kind, Stat};
use crate::backend::{Backend, BackendError, ObjectInfo};
use std::collections::{BTreeMap, VecDeque};

/// One directory entry as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Name in the directory.
    pub name: String,
    /// Object key (`a/b`) or directory key (`a/b/`).
    pub key: String,
    /// File or directory.
    pub kind: Kind,
    /// What the listing says about it.
    pub stat: Stat,
}

/// How directories are listed (from the mount options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRules {
    /// Appended to the name of a file hidden by a directory of the same name.
    pub suffix: String,
    /// Most entries asked for per LIST request.
    pub page_size: usize,
    /// Objects of at most this many bytes are HEADed for their stored metadata (modes,
    /// owners, s3fs symbolic links and special files), which LIST answers do not carry;
    /// `None`: none are.
    pub probe_max: Option<u64>,
    /// Names longer than this many bytes are not listed (`name_max`).
    pub name_max: usize,
}

/// HEADs in flight at once while probing one page.
const PROBES_IN_FLIGHT: usize = 16;

/// A resumable listing of one directory.
#[derive(Debug)]
pub struct DirStream {
    prefix: String,
    rules: ListRules,
    dir_mtime: std::time::SystemTime,
    token: Option<String>,
    started: bool,
    /// Files whose `name/` position has not been passed yet, by key.
    held: BTreeMap<String, ObjectInfo>,
    ready: VecDeque<Listed>,
}

impl DirStream {
    /// A listing of the directory with key `prefix` (`""` or ending in `/`).
    pub fn new(prefix: &str, rules: &ListRules, dir_mtime: std::time::SystemTime) -> Self {
        DirStream {
            prefix: prefix.to_string(),
            rules: rules.clone(),
            dir_mtime,
            token: None,
            started: false,
            held: BTreeMap::new(),
            ready: VecDeque::new(),
        }
    }

    /// Entries held in memory right now (held-back files plus ready entries).
    pub fn in_memory(&self) -> usize {
        self.held.len() + self.ready.len()
    }

    /// Whether every entry has been returned.
    pub fn is_done(&self) -> bool {
        self.started && self.token.is_none() && self.held.is_empty() && self.ready.is_empty()
    }

    /// The next entry, fetching pages as needed; `None` at the end.
    pub async fn next(&mut self, backend: &dyn Backend) -> Result<Option<Listed>, BackendError> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                if e.name.len() > self.rules.name_max {
                    continue; // longer than `name_max`: no program could use it
                }
                return Ok(Some(e));
            }
            if self.started && self.token.is_none() {
                // End of listing: nothing can conflict with the held files any more.
                let held = std::mem::take(&mut self.held);
                let files: Vec<Listed> = held.into_values().map(|o| self.file(o, false)).collect();
                self.ready.extend(files);
                if self.ready.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            let page = backend
                .list(&self.prefix, self.token.as_deref(), self.rules.page_size)
                .await?;
            self.started = true;
            self.token = page.next_token;
            let objects = probe(backend, page.objects, self.rules.probe_max).await;
            let mut items: Vec<(String, Option<ObjectInfo>)> = objects
                .into_iter()
                .map(|o| (o.key.clone(), Some(o)))
                .chain(page.prefixes.into_iter().map(|p| (p, None)))
                .collect();
            items.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, obj) in items {
                self.release_before(&key);
                match obj {
                    Some(o) => {
                        self.held.insert(key, o);
                    }
                    None => self.dir(&key),
                }
            }
        }
    }

    /// Release held files `f` whose `f/` sorts before `key`: no prefix can clash with them now.
    fn release_before(&mut self, key: &str) {
        while let Some((first, _)) = self.held.first_key_value() {
            if format!("{first}/").as_str() >= key {
                break;
            }
            if let Some((_, o)) = self.held.pop_first() {
                let e = self.file(o, false);
                self.ready.push_back(e);
            }
        }
    }

    fn dir(&mut self, key: &str) {
        let Some(name) = name_of(&self.prefix, key.trim_end_matches('/')) else {
            return;
        };
        if let Some(o) = self.held.remove(key.trim_end_matches('/')) {
            let e = self.file(o, true);
            self.ready.push_back(e);
        }
        self.ready.push_back(Listed {
            name: name.to_string(),
            key: key.to_string(),
            kind: Kind::Dir,
            stat: Stat {
                size_unknown: false,
                size: 0,
                mtime: self.dir_mtime,
                etag: None,
                meta: Default::default(),
            },
        });
    }

    fn file(&self, o: ObjectInfo, shadowed: bool) -> Listed {
        let base = name_of(&self.prefix, &o.key).unwrap_or_default();
        let name = if shadowed {
            format!("{base}{}", self.rules.suffix)
        } else {
            base.to_string()
        };
        Listed {
            name,
            key: o.key.clone(),
            kind: Kind::of_object(&o.meta),
            stat: Stat::from(o),
        }
    }
}

/// `objects` of a page, those of at most `max` bytes with the metadata a HEAD finds (an
/// object whose HEAD fails keeps what the listing said).
async fn probe(
    backend: &dyn Backend,
    objects: Vec<ObjectInfo>,
    max: Option<u64>,
) -> Vec<ObjectInfo> {
    use futures::StreamExt;
    let Some(max) = max.filter(|&m| objects.iter().any(|o| o.size <= m)) else {
        return objects;
    };
    futures::stream::iter(objects)
        .map(|o| async move {
            if o.size > max {
                return o;
            }
            match backend.head(&o.key).await {
                Ok(h) if h.etag == o.etag => ObjectInfo { meta: h.meta, ..o },
                Ok(h) => ObjectInfo { key: o.key, ..h },
                Err(_) => o,
            }
        })
        .buffered(PROBES_IN_FLIGHT)
        .collect()
        .await
}

/// The entry name of `key` directly under `prefix`, if it is a usable name.
pub fn name_of<'a>(prefix: &str, key: &'a str) -> Option<&'a str> {
    let name = key.strip_prefix(prefix)?;
    (!name.is_empty() && name != "." && name != ".." && !name.contains('/')).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;
    use std::time::SystemTime;

    async fn all(b: &MemoryBackend, prefix: &str, page: usize) -> Vec<(String, Kind)> {
        probed(b, prefix, page, None).await
    }

    async fn probed(
        b: &MemoryBackend,
        prefix: &str,
        page: usize,
        max: Option<u64>,
    ) -> Vec<(String, Kind)> {
        let rules = ListRules {
            suffix: ".file".into(),
            page_size: page,
            probe_max: max,
            name_max: 255,
        };
        let mut s = DirStream::new(prefix, &rules, SystemTime::UNIX_EPOCH);
        let mut out = vec![];
        while let Some(e) = s.next(b).await.unwrap() {
            out.push((e.name, e.kind));
        }
        assert!(s.is_done());
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    #[tokio::test]
    async fn file_and_directory_of_the_same_name_both_appear_at_any_page_size() {
        let b = MemoryBackend::new();
        for k in ["name", "name.jpg", "name!x", "name/inner", "other", "z/"] {
            b.insert(k, "1");
        }
        let want = vec![
            ("name".to_string(), Kind::Dir),
            ("name!x".to_string(), Kind::File),
            ("name.file".to_string(), Kind::File),
            ("name.jpg".to_string(), Kind::File),
            ("other".to_string(), Kind::File),
            ("z".to_string(), Kind::Dir),
        ];
        for page in 1..=7 {
            assert_eq!(all(&b, "", page).await, want, "page size {page}");
        }
    }

    #[tokio::test]
    async fn nested_listing_skips_the_own_marker() {
        let b = MemoryBackend::new();
        for k in ["d/", "d/a", "d/e/f"] {
            b.insert(k, "1");
        }
        assert_eq!(
            all(&b, "d/", 1).await,
            vec![("a".into(), Kind::File), ("e".into(), Kind::Dir)]
        );
    }

    #[tokio::test]
    async fn probing_small_objects_finds_s3fs_symlinks_and_special_files() {
        let b = MemoryBackend::new();
        let mode = |m| crate::backend::PosixMeta {
            mode: Some(m),
            ..Default::default()
        };
        b.insert_with_meta("link", "target", mode(0o120777));
        b.insert_with_meta("pipe", "", mode(0o010644));
        b.insert("big", vec![0u8; 5000]);
        let listed = |link, pipe| {
            vec![
                ("big".to_string(), Kind::File),
                ("link".to_string(), link),
                ("pipe".to_string(), pipe),
            ]
        };
        assert_eq!(
            probed(&b, "", 1, None).await,
            listed(Kind::File, Kind::File),
            "no probe: LIST has no metadata"
        );
        assert_eq!(
            probed(&b, "", 1, Some(0)).await,
            listed(Kind::File, Kind::Fifo),
            "the default probes empty objects only"
        );
        let found = listed(Kind::Symlink, Kind::Fifo);
        for page in [1, 5] {
            assert_eq!(
                probed(&b, "", page, Some(4096)).await,
                found,
                "page size {page}"
            );
        }
    }
}
