//! Drive is id-based; the mount is path-based. A [`Folder`] is one complete listing of a
//! folder with the names the mount shows ([`super::names`]), and the [`Tree`] keeps recent
//! ones by folder id, plus a map of directory paths to folder ids, so that a path resolves
//! without a request while its folders' listings are fresh.

use super::file::DriveFile;
use super::names::{self, Named};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What an entry is in the mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A folder (or a shortcut to one).
    Folder,
    /// A file with downloadable content (or a shortcut to one).
    File,
    /// A Google document, read as its export in `mime`.
    Doc {
        /// The export MIME type.
        mime: String,
    },
}

/// One entry of a folder as the mount shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The shown name (unique in its folder).
    pub name: String,
    /// The file, or a shortcut's target with the shortcut's name and parents.
    pub file: DriveFile,
    /// The shortcut's own id, when the entry is one.
    pub shortcut: Option<String>,
    /// What it is.
    pub kind: EntryKind,
}

impl Entry {
    /// The id whose content or children the entry shows (a shortcut's target).
    pub fn id(&self) -> &str {
        &self.file.id
    }

    /// The id to rename, move or delete (a shortcut itself, not its target).
    pub fn own_id(&self) -> &str {
        self.shortcut.as_deref().unwrap_or(&self.file.id)
    }
}

/// One complete listing of a folder, sorted by shown name.
#[derive(Debug)]
pub struct Folder {
    /// The folder's id.
    pub id: String,
    /// Its entries, sorted by name.
    pub entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
    /// When it was listed.
    pub fetched: Instant,
}

/// How a file becomes an entry, before names are told apart: its kind, or `None` to hide it.
pub type Classify<'a> = &'a dyn Fn(&DriveFile) -> Option<(EntryKind, String)>;

impl Folder {
    /// Build a listing of folder `id` from its children (shortcuts already resolved: pairs of
    /// the shown file and the shortcut id). `classify` names and sorts out each.
    pub fn build(
        id: &str,
        children: Vec<(DriveFile, Option<String>)>,
        classify: Classify<'_>,
    ) -> Folder {
        let mut pending = Vec::with_capacity(children.len());
        for (file, shortcut) in children {
            if let Some((kind, name)) = classify(&file) {
                pending.push((file, shortcut, kind, name));
            }
        }
        let named: Vec<Named> = pending
            .iter()
            .map(|(f, s, _, n)| Named {
                name: n.clone(),
                created: f.ctime(),
                id: s.clone().unwrap_or_else(|| f.id.clone()),
            })
            .collect();
        let shown = names::assign(&named);
        let mut entries: Vec<Entry> = pending
            .into_iter()
            .zip(shown)
            .map(|((file, shortcut, kind, _), name)| Entry {
                name,
                file,
                shortcut,
                kind,
            })
            .collect();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Folder {
            id: id.to_string(),
            entries,
            by_name,
            fetched: Instant::now(),
        }
    }

    /// The entry shown as `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// The same listing with `file` added or replaced (by own id) and `removed` taken out,
    /// for changes the mount made itself.
    pub fn edited(
        &self,
        add: Option<(DriveFile, Option<String>)>,
        removed: Option<&str>,
        classify: Classify<'_>,
    ) -> Folder {
        let replaced = add
            .as_ref()
            .map(|(f, s)| s.clone().unwrap_or_else(|| f.id.clone()));
        let mut children: Vec<(DriveFile, Option<String>)> = self
            .entries
            .iter()
            .filter(|e| Some(e.own_id()) != removed && Some(e.own_id()) != replaced.as_deref())
            .map(|e| (e.file.clone(), e.shortcut.clone()))
            .collect();
        children.extend(add);
        let mut f = Folder::build(&self.id, children, classify);
        f.fetched = self.fetched;
        f
    }
}

/// Recent listings and known directory paths.
#[derive(Debug)]
pub struct Tree {
    folders: Mutex<HashMap<String, Arc<Folder>>>,
    /// Directory key (no trailing `/`; `""` for the root) → folder id.
    paths: Mutex<HashMap<String, String>>,
    /// Listings older than this are fetched again before a path is resolved through them.
    pub ttl: Duration,
}

impl Tree {
    /// A tree whose root (key `""`) is folder `root`.
    pub fn new(root: &str, ttl: Duration) -> Self {
        let mut paths = HashMap::new();
        paths.insert(String::new(), root.to_string());
        Tree {
            folders: Mutex::new(HashMap::new()),
            paths: Mutex::new(paths),
            ttl,
        }
    }

    /// The root folder's id.
    pub fn root(&self) -> String {
        self.dir_id("").unwrap_or_default()
    }

    /// The listing of folder `id`, if one is kept and `fresh` (younger than the TTL) when asked.
    pub fn folder(&self, id: &str, fresh: bool) -> Option<Arc<Folder>> {
        let f = self
            .folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        (!fresh || f.fetched.elapsed() < self.ttl).then_some(f)
    }

    /// Keep `folder`.
    pub fn keep(&self, folder: Arc<Folder>) {
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(folder.id.clone(), folder);
    }

    /// Forget the listing of folder `id`.
    pub fn forget(&self, id: &str) {
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Forget every listing and every path but the root's.
    pub fn forget_all(&self) {
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let root = self.root();
        let mut paths = self.paths.lock().unwrap_or_else(|p| p.into_inner());
        paths.clear();
        paths.insert(String::new(), root);
    }

    /// The folder id of directory key `dir`, if known.
    pub fn dir_id(&self, dir: &str) -> Option<String> {
        self.paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(dir)
            .cloned()
    }

    /// Remember that directory key `dir` is folder `id`.
    pub fn learn_dir(&self, dir: &str, id: &str) {
        self.paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dir.to_string(), id.to_string());
    }

    /// Every known directory key of folder `id` (a folder can be reached through shortcuts).
    pub fn dirs_of(&self, id: &str) -> Vec<String> {
        self.paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, v)| v.as_str() == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Where kept listings show file `id` (itself or as a shortcut's target): the folder's
    /// id, the shown name and whether it is a folder.
    pub fn holders(&self, id: &str) -> Vec<(String, String, bool)> {
        self.folders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(|f| {
                f.entries
                    .iter()
                    .filter(|e| e.id() == id || e.own_id() == id)
                    .map(|e| (f.id.clone(), e.name.clone(), e.kind == EntryKind::Folder))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Forget directory `dir` and every directory below it (moved or removed).
    pub fn forget_dir(&self, dir: &str) {
        let below = format!("{dir}/");
        self.paths
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|k, _| k.is_empty() || (k != dir && !k.starts_with(&below)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, name: &str, created: &str) -> DriveFile {
        DriveFile {
            id: id.into(),
            name: name.into(),
            mime_type: "image/jpeg".into(),
            created_time: Some(created.into()),
            ..Default::default()
        }
    }

    fn plain(f: &DriveFile) -> Option<(EntryKind, String)> {
        Some((EntryKind::File, names::display(&f.name)))
    }

    #[test]
    fn listings_name_duplicates_and_edits_keep_names() {
        let kids = vec![
            (file("B2222222x", "a.jpg", "2026-01-02T00:00:00Z"), None),
            (file("A1111111x", "a.jpg", "2026-01-01T00:00:00Z"), None),
            (file("S", "x/y", "2026-01-01T00:00:00Z"), None),
        ];
        let f = Folder::build("F", kids, &plain);
        assert_eq!(f.get("a.jpg").unwrap().id(), "A1111111x");
        assert_eq!(f.get("a (B2222222).jpg").unwrap().id(), "B2222222x");
        assert_eq!(f.get("x\u{FF0F}y").unwrap().id(), "S");
        let g = f.edited(
            Some((file("C3333333x", "a.jpg", "2026-01-03T00:00:00Z"), None)),
            Some("S"),
            &plain,
        );
        assert_eq!(g.get("a.jpg").unwrap().id(), "A1111111x");
        assert_eq!(g.get("a (B2222222).jpg").unwrap().id(), "B2222222x");
        assert!(g.get("a (C3333333).jpg").is_some() && g.get("x\u{FF0F}y").is_none());
    }

    #[test]
    fn moved_directories_are_forgotten_with_everything_below() {
        let t = Tree::new("R", Duration::from_secs(10));
        t.learn_dir("a", "1");
        t.learn_dir("a/b", "2");
        t.learn_dir("ab", "3");
        t.forget_dir("a");
        assert_eq!(t.dir_id("a/b"), None);
        assert_eq!(t.dir_id("ab").as_deref(), Some("3"));
        assert_eq!(t.root(), "R");
    }
}
