//! The in-memory Drive: files, the folder tree, shared drives and the change log.
//!
//! Each file keeps only its own state; what depends on its ancestors is computed on read:
//! `trashed` (the file or any ancestor was trashed explicitly) and `driveId` (the shared drive
//! whose root the ancestors lead to). So moving or trashing a folder touches one entry, however
//! large its subtree, as on Drive. A children index ordered by `(createdTime, id)` gives
//! listings a stable order that page tokens can point into.

use super::http::{now_ms, truncate_ms};
use super::ids;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::SystemTime;

/// MIME type of folders.
pub const FOLDER: &str = "application/vnd.google-apps.folder";
/// MIME type of shortcuts.
pub const SHORTCUT: &str = "application/vnd.google-apps.shortcut";
/// MIME type of Google Docs documents.
pub const DOCUMENT: &str = "application/vnd.google-apps.document";
/// MIME type of Google Sheets spreadsheets.
pub const SPREADSHEET: &str = "application/vnd.google-apps.spreadsheet";
/// MIME type of Google Slides presentations.
pub const PRESENTATION: &str = "application/vnd.google-apps.presentation";
/// MIME type of Google Drawings.
pub const DRAWING: &str = "application/vnd.google-apps.drawing";
/// The id of the My Drive root folder (the alias `root` resolves to it).
pub const ROOT_ID: &str = "0AFakeRootFolderIdUk9PVA";

/// Google Workspace types (folders, shortcuts, Docs…) have no binary content: no size, no md5.
pub fn is_google_type(mime: &str) -> bool {
    mime.starts_with("application/vnd.google-apps.")
}

/// `shortcutDetails` of a shortcut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShortcutDetails {
    pub target_id: String,
    pub target_mime_type: String,
}

/// Everything the fake knows about one file, as returned by the handle's inspection methods.
/// `trashed` and `drive_id` are computed from the ancestors when the snapshot is taken.
#[derive(Clone, Debug)]
pub struct FileSnapshot {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// Normally one parent; empty for roots and orphans.
    pub parents: Vec<String>,
    /// Binary content; for Google Docs types the body that exports are made from.
    pub content: Bytes,
    /// Binary files only.
    pub size: Option<u64>,
    pub md5_checksum: Option<String>,
    pub sha1_checksum: Option<String>,
    pub sha256_checksum: Option<String>,
    pub created_time: SystemTime,
    pub modified_time: SystemTime,
    /// Bumped on every change to the file.
    pub version: u64,
    /// Binary files only; changes with the content.
    pub head_revision_id: Option<String>,
    /// Trashed itself or through an ancestor.
    pub trashed: bool,
    /// Trashed by a request naming this file.
    pub explicitly_trashed: bool,
    pub trashed_time: Option<SystemTime>,
    pub app_properties: BTreeMap<String, String>,
    pub properties: BTreeMap<String, String>,
    pub description: Option<String>,
    pub shortcut_details: Option<ShortcutDetails>,
    /// The shared drive the file is in (None in My Drive).
    pub drive_id: Option<String>,
}

impl FileSnapshot {
    /// True for folders (including roots).
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER
    }
}

/// One entry of the change log.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub seq: u64,
    pub file_id: String,
    pub time: SystemTime,
    pub removed: bool,
    /// The shared drive the file was in when the change happened.
    pub drive_id: Option<String>,
}

/// What a new file starts with.
#[derive(Clone, Debug)]
pub(crate) struct NewFile {
    pub name: String,
    pub mime_type: String,
    /// Already resolved (no `root` alias); None makes an orphan.
    pub parent: Option<String>,
    pub content: Bytes,
    pub created: Option<SystemTime>,
    pub modified: Option<SystemTime>,
    pub app_properties: BTreeMap<String, String>,
    pub properties: BTreeMap<String, String>,
    pub description: Option<String>,
    pub shortcut: Option<ShortcutDetails>,
}

impl NewFile {
    pub fn new(name: &str, mime_type: &str, parent: Option<String>) -> Self {
        NewFile {
            name: name.to_string(),
            mime_type: mime_type.to_string(),
            parent,
            content: Bytes::new(),
            created: None,
            modified: None,
            app_properties: BTreeMap::new(),
            properties: BTreeMap::new(),
            description: None,
            shortcut: None,
        }
    }
}

/// Position in the stable listing order.
pub(crate) type Key = (SystemTime, String);

/// The whole state behind one fake server.
pub(crate) struct Store {
    files: HashMap<String, FileSnapshot>,
    /// parent id → children, ordered by (createdTime, id).
    children: HashMap<String, BTreeSet<Key>>,
    /// Every file but the roots, in listing order.
    order: BTreeSet<Key>,
    /// Shared drives: (id, name), in creation order.
    drives: Vec<(String, String)>,
    changes: Vec<Change>,
    /// file id → seq of its latest change (older entries are skipped when listing changes).
    latest: HashMap<String, u64>,
    /// Storage quota in bytes.
    pub quota_limit: u64,
    /// Bytes of binary content stored (all drives).
    pub usage: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sets size, checksums and revision from `content` (none of them for Google types).
fn fill_content(f: &mut FileSnapshot, content: Bytes) {
    if is_google_type(&f.mime_type) {
        f.size = None;
        f.md5_checksum = None;
        f.sha1_checksum = None;
        f.sha256_checksum = None;
        f.head_revision_id = None;
    } else {
        use md5::{Digest, Md5};
        f.size = Some(content.len() as u64);
        f.md5_checksum = Some(hex(&Md5::digest(&content)));
        let sha1 =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &content);
        f.sha1_checksum = Some(hex(sha1.as_ref()));
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &content);
        f.sha256_checksum = Some(hex(sha256.as_ref()));
        f.head_revision_id = Some(ids::revision_id());
    }
    f.content = content;
}

fn folder_node(id: &str, name: &str) -> FileSnapshot {
    let now = now_ms();
    FileSnapshot {
        id: id.to_string(),
        name: name.to_string(),
        mime_type: FOLDER.to_string(),
        parents: Vec::new(),
        content: Bytes::new(),
        size: None,
        md5_checksum: None,
        sha1_checksum: None,
        sha256_checksum: None,
        created_time: now,
        modified_time: now,
        version: 1,
        head_revision_id: None,
        trashed: false,
        explicitly_trashed: false,
        trashed_time: None,
        app_properties: BTreeMap::new(),
        properties: BTreeMap::new(),
        description: None,
        shortcut_details: None,
        drive_id: None,
    }
}

impl Store {
    pub fn new(quota_limit: u64) -> Self {
        let mut files = HashMap::new();
        files.insert(ROOT_ID.to_string(), folder_node(ROOT_ID, "My Drive"));
        Store {
            files,
            children: HashMap::new(),
            order: BTreeSet::new(),
            drives: Vec::new(),
            changes: Vec::new(),
            latest: HashMap::new(),
            quota_limit,
            usage: 0,
        }
    }

    /// Resolves the alias `root`.
    pub fn resolve<'a>(&self, id: &'a str) -> &'a str {
        if id == "root" {
            ROOT_ID
        } else {
            id
        }
    }

    /// The stored file (no computed fields), after resolving `root`.
    pub fn node(&self, id: &str) -> Option<&FileSnapshot> {
        self.files.get(self.resolve(id))
    }

    /// True for My Drive's root and the shared drives' roots.
    pub fn is_root(&self, id: &str) -> bool {
        let id = self.resolve(id);
        id == ROOT_ID || self.drives.iter().any(|(d, _)| d == id)
    }

    /// The shared drive `id` belongs to, from its ancestors.
    pub fn drive_of(&self, id: &str) -> Option<String> {
        let mut cur = self.resolve(id);
        for _ in 0..100_000 {
            if self.drives.iter().any(|(d, _)| d == cur) {
                return Some(cur.to_string());
            }
            cur = self.files.get(cur)?.parents.first()?;
        }
        None
    }

    /// Trashed explicitly or through an ancestor.
    pub fn is_trashed(&self, id: &str) -> bool {
        let mut cur = self.resolve(id);
        for _ in 0..100_000 {
            let Some(f) = self.files.get(cur) else {
                return false;
            };
            if f.explicitly_trashed {
                return true;
            }
            match f.parents.first() {
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    }

    /// True when `ancestor` is `id` or one of its ancestors.
    pub fn is_ancestor_or_self(&self, ancestor: &str, id: &str) -> bool {
        let ancestor = self.resolve(ancestor);
        let mut cur = self.resolve(id);
        for _ in 0..100_000 {
            if cur == ancestor {
                return true;
            }
            match self.files.get(cur).and_then(|f| f.parents.first()) {
                Some(p) => cur = p,
                None => return false,
            }
        }
        false
    }

    /// A copy of the file with `trashed` and `drive_id` computed.
    pub fn snapshot(&self, id: &str) -> Option<FileSnapshot> {
        let mut f = self.node(id)?.clone();
        f.trashed = self.is_trashed(&f.id);
        f.drive_id = self.drive_of(&f.id);
        Some(f)
    }

    /// Children of `parent` in listing order (None when it has none).
    pub fn children_keys(&self, parent: &str) -> Option<&BTreeSet<Key>> {
        self.children.get(self.resolve(parent))
    }

    /// Every file but the roots, in listing order.
    pub fn all_keys(&self) -> &BTreeSet<Key> {
        &self.order
    }

    /// `id` and everything under it, `id` first.
    pub fn descendants(&self, id: &str) -> Vec<String> {
        let id = self.resolve(id).to_string();
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            if let Some(kids) = self.children.get(&out[i]) {
                out.extend(kids.iter().map(|(_, k)| k.clone()));
            }
            i += 1;
        }
        out
    }

    /// Adds a file and records its change; returns the new id.
    pub fn insert(&mut self, nf: NewFile) -> String {
        let id = ids::file_id();
        let now = now_ms();
        let mut f = folder_node(&id, &nf.name);
        f.mime_type = nf.mime_type;
        f.created_time = nf.created.map_or(now, truncate_ms);
        f.modified_time = nf.modified.map_or(f.created_time, truncate_ms);
        f.app_properties = nf.app_properties;
        f.properties = nf.properties;
        f.description = nf.description;
        f.shortcut_details = nf.shortcut;
        fill_content(&mut f, nf.content);
        self.usage += f.size.unwrap_or(0);
        let key = (f.created_time, id.clone());
        if let Some(p) = nf.parent {
            f.parents = vec![p.clone()];
            self.children.entry(p).or_default().insert(key.clone());
        }
        self.order.insert(key);
        self.files.insert(id.clone(), f);
        self.record(&id, false);
        id
    }

    /// Creates a shared drive (its root folder has the drive's id); returns the id.
    pub fn create_drive(&mut self, name: &str) -> String {
        let id = ids::drive_id();
        self.files.insert(id.clone(), folder_node(&id, name));
        self.drives.push((id.clone(), name.to_string()));
        id
    }

    /// Shared drives as (id, name).
    pub fn drives(&self) -> &[(String, String)] {
        &self.drives
    }

    /// Replaces the content (new size, checksums, revision), bumps the version and records a
    /// change. `modified` defaults to now.
    pub fn set_content(&mut self, id: &str, content: Bytes, modified: Option<SystemTime>) {
        let id = self.resolve(id).to_string();
        let Some(f) = self.files.get_mut(&id) else {
            return;
        };
        let old = f.size.unwrap_or(0);
        fill_content(f, content);
        f.modified_time = modified.map_or_else(now_ms, truncate_ms);
        let new = f.size.unwrap_or(0);
        self.usage = self.usage.saturating_sub(old) + new;
        self.touch(&id);
    }

    /// Applies `edit` to the stored file, then bumps its version and records a change.
    pub fn edit(&mut self, id: &str, edit: impl FnOnce(&mut FileSnapshot)) {
        let id = self.resolve(id).to_string();
        if let Some(f) = self.files.get_mut(&id) {
            edit(f);
            self.touch(&id);
        }
    }

    /// Changes the parents (a move). When the move crosses drives, every file of the subtree
    /// gets a change (their `driveId` changed); otherwise only the moved file.
    pub fn set_parents(&mut self, id: &str, parents: Vec<String>) {
        let id = self.resolve(id).to_string();
        let before = self.drive_of(&id);
        let Some(f) = self.files.get_mut(&id) else {
            return;
        };
        let key = (f.created_time, id.clone());
        let old = std::mem::replace(&mut f.parents, parents.clone());
        for p in &old {
            if let Some(set) = self.children.get_mut(p) {
                set.remove(&key);
            }
        }
        for p in parents {
            self.children.entry(p).or_default().insert(key.clone());
        }
        if self.drive_of(&id) != before {
            for d in self.descendants(&id) {
                self.touch(&d);
            }
        } else {
            self.touch(&id);
        }
    }

    /// Trashes or restores `id`; every file of its subtree gets a change.
    pub fn set_trashed(&mut self, id: &str, trashed: bool) {
        let id = self.resolve(id).to_string();
        let Some(f) = self.files.get_mut(&id) else {
            return;
        };
        f.explicitly_trashed = trashed;
        f.trashed_time = trashed.then(now_ms);
        for d in self.descendants(&id) {
            self.touch(&d);
        }
    }

    /// Deletes `id` and its subtree for good; records a `removed` change for each. Returns how
    /// many files went.
    pub fn remove(&mut self, id: &str) -> usize {
        let all = self.descendants(id);
        let drive = self.drive_of(id);
        for d in &all {
            let Some(f) = self.files.remove(d) else {
                continue;
            };
            let key = (f.created_time, d.clone());
            for p in &f.parents {
                if let Some(set) = self.children.get_mut(p) {
                    set.remove(&key);
                }
            }
            self.children.remove(d);
            self.order.remove(&key);
            self.usage = self.usage.saturating_sub(f.size.unwrap_or(0));
            self.record_with_drive(d, true, drive.clone());
        }
        all.len()
    }

    /// Bumps the version and records a change for `id`.
    pub fn touch(&mut self, id: &str) {
        if let Some(f) = self.files.get_mut(id) {
            f.version += 1;
        }
        self.record(id, false);
    }

    /// Appends a change for `id`.
    pub fn record(&mut self, id: &str, removed: bool) {
        let drive = self.drive_of(id);
        self.record_with_drive(id, removed, drive);
    }

    fn record_with_drive(&mut self, id: &str, removed: bool, drive_id: Option<String>) {
        let seq = self.changes.len() as u64 + 1;
        self.changes.push(Change {
            seq,
            file_id: id.to_string(),
            time: now_ms(),
            removed,
            drive_id,
        });
        self.latest.insert(id.to_string(), seq);
    }

    /// The token of the next change to be recorded.
    pub fn next_change_seq(&self) -> u64 {
        self.changes.len() as u64 + 1
    }

    /// The change with sequence number `seq`, if recorded.
    pub fn change(&self, seq: u64) -> Option<&Change> {
        self.changes.get(usize::try_from(seq).ok()?.checked_sub(1)?)
    }

    /// True when `c` is the latest change of its file (older ones are superseded).
    pub fn is_latest(&self, c: &Change) -> bool {
        self.latest.get(&c.file_id) == Some(&c.seq)
    }

    /// Number of files, roots excluded.
    pub fn count_files(&self) -> usize {
        self.order.len()
    }

    /// Bytes of binary content in the trash (trashed files, explicitly or not).
    pub fn usage_in_trash(&self) -> u64 {
        let trashed_roots: HashSet<&str> = self
            .files
            .values()
            .filter(|f| f.explicitly_trashed)
            .map(|f| f.id.as_str())
            .collect();
        let mut total = 0;
        for r in trashed_roots {
            if self
                .files
                .get(r)
                .and_then(|f| f.parents.first())
                .is_some_and(|p| self.is_trashed(p))
            {
                continue; // counted through its trashed ancestor
            }
            for d in self.descendants(r) {
                total += self.files.get(&d).and_then(|f| f.size).unwrap_or(0);
            }
        }
        total
    }

    /// Explicitly trashed files (roots of trashed subtrees), optionally of one shared drive.
    pub fn explicitly_trashed(&self, drive: Option<&str>) -> Vec<String> {
        self.files
            .values()
            .filter(|f| f.explicitly_trashed && self.drive_of(&f.id).as_deref() == drive)
            .map(|f| f.id.clone())
            .collect()
    }
}
