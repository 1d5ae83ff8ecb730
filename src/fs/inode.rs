//! The inode table: inode numbers, the names the kernel knows, and lookup counts.
//!
//! Rules (the kernel's contract):
//! - inode numbers come from a counter and are never reused; the root is 1 and never removed;
//! - every entry handed to the kernel (lookup, readdirplus) is counted with [`InodeTable::remember`];
//!   `forget(ino, n)` subtracts (saturating) and removes the inode at zero;
//! - a name maps to at most one inode; a newer inode for the same name (the object turned from a
//!   file into a directory) replaces the mapping, and the old inode lives on, unnamed, until the
//!   kernel forgets it. Removing an inode unlinks its name only if the name still points to it.
//!
//! One `std::sync::Mutex` guards the table; it is never held across an `.await`.

use super::attr::{Kind, Stat};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// The root directory's inode number.
pub const ROOT_INO: u64 = 1;

/// A copy of what the table knows about one inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Inode number.
    pub ino: u64,
    /// Parent directory's inode.
    pub parent: u64,
    /// Name in the parent.
    pub name: String,
    /// Object key: `a/b` for a file, `a/b/` for a directory, `""` for the root.
    pub key: String,
    /// File or directory.
    pub kind: Kind,
    /// Size, mtime, etag as last seen.
    pub stat: Stat,
    /// Until when `stat` may be trusted without asking the store.
    pub expires: Instant,
    /// How many times the kernel was handed this inode and has not forgotten it.
    pub lookups: u64,
    /// The ETag seen at the last open (the kernel may keep cached pages while it holds).
    pub open_etag: Option<String>,
    /// Its name went through the mount (unlink, rmdir, replaced by a rename) while the
    /// kernel still holds it, e.g. open: it has no name any more (`st_nlink` 0), and nothing
    /// is stored for it.
    pub unlinked: bool,
}

#[derive(Debug, Default)]
struct Inner {
    nodes: HashMap<u64, Node>,
    names: HashMap<(u64, String), u64>,
    /// Inodes that exist only here so far (a new directory, a created file not yet uploaded):
    /// listings of their parent must show them although the store does not.
    local: std::collections::HashSet<u64>,
}

/// All inodes of one mount.
#[derive(Debug)]
pub struct InodeTable {
    inner: Mutex<Inner>,
    next_ino: AtomicU64,
}

impl InodeTable {
    /// A table holding only the root directory.
    pub fn new(root_stat: Stat) -> Self {
        let root = Node {
            ino: ROOT_INO,
            parent: ROOT_INO,
            name: String::new(),
            key: String::new(),
            kind: Kind::Dir,
            stat: root_stat,
            expires: Instant::now(),
            lookups: 1,
            open_etag: None,
            unlinked: false,
        };
        let mut inner = Inner::default();
        inner.nodes.insert(ROOT_INO, root);
        InodeTable {
            inner: Mutex::new(inner),
            next_ino: AtomicU64::new(ROOT_INO + 1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding this lock; recover the data if something ever did.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh inode number that was never handed out.
    pub fn alloc_ino(&self) -> u64 {
        self.next_ino.fetch_add(1, Ordering::Relaxed)
    }

    /// The inode `ino`, if known.
    pub fn get(&self, ino: u64) -> Option<Node> {
        self.lock().nodes.get(&ino).cloned()
    }

    /// The inode named `name` in `parent`, if known.
    pub fn child(&self, parent: u64, name: &str) -> Option<Node> {
        let inner = self.lock();
        let ino = inner.names.get(&(parent, name.to_string()))?;
        inner.nodes.get(ino).cloned()
    }

    /// Record what the store says about `name` in `parent`; returns its inode number.
    /// Keeps the inode when the kind is unchanged, otherwise (or for a symbolic link with new
    /// content, since the kernel caches link targets) makes a new one. A listing (which
    /// carries no metadata) of the version the table knows keeps what a HEAD said: stored
    /// modes and owners, and that the object is a symbolic link.
    pub fn upsert(
        &self,
        parent: u64,
        name: &str,
        key: &str,
        kind: Kind,
        stat: Stat,
        expires: Instant,
    ) -> u64 {
        let mut inner = self.lock();
        let name_key = (parent, name.to_string());
        if let Some(&ino) = inner.names.get(&name_key) {
            if let Some(node) = inner.nodes.get_mut(&ino) {
                let listed_known_version = kind == Kind::File
                    && node.kind != Kind::Dir
                    && stat.meta.is_empty()
                    && stat.etag.is_some()
                    && stat.etag == node.stat.etag;
                if listed_known_version {
                    node.expires = expires;
                    return ino;
                }
                let new_link_target = kind == Kind::Symlink && stat.etag != node.stat.etag;
                if node.kind == kind && !new_link_target {
                    // A directory's listing has no attributes: keep those set in the mount.
                    let keep_dir_meta = kind == Kind::Dir && stat.meta.is_empty();
                    let meta = if keep_dir_meta {
                        std::mem::take(&mut node.stat.meta)
                    } else {
                        stat.meta.clone()
                    };
                    node.stat = Stat { meta, ..stat };
                    node.expires = expires;
                    node.key = key.to_string();
                    return ino;
                }
            }
        }
        let ino = self.alloc_ino();
        let node = Node {
            ino,
            parent,
            name: name.to_string(),
            key: key.to_string(),
            kind,
            stat,
            expires,
            lookups: 0,
            open_etag: None,
            unlinked: false,
        };
        inner.nodes.insert(ino, node);
        inner.names.insert(name_key, ino);
        ino
    }

    /// Update the attributes of `ino` after a fresh HEAD.
    pub fn refresh(&self, ino: u64, stat: Stat, expires: Instant) {
        if let Some(node) = self.lock().nodes.get_mut(&ino) {
            node.stat = stat;
            node.expires = expires;
        }
    }

    /// Record an open of `ino` at version `etag`; true when the previous open saw the same
    /// version (so pages the kernel cached from it are still valid).
    pub fn note_open(&self, ino: u64, etag: Option<&str>) -> bool {
        let mut inner = self.lock();
        let Some(node) = inner.nodes.get_mut(&ino) else {
            return false;
        };
        let same = etag.is_some() && node.open_etag.as_deref() == etag;
        node.open_etag = etag.map(str::to_string);
        same
    }

    /// Forget the version of the last open of `ino`: the kernel holds no pages of it (it read a
    /// backing file instead), so the next open must not be told to keep them.
    pub fn forget_open_version(&self, ino: u64) {
        if let Some(node) = self.lock().nodes.get_mut(&ino) {
            node.open_etag = None;
        }
    }

    /// Mark the attributes of `ino` stale, so the next use asks the store.
    pub fn expire(&self, ino: u64) {
        if let Some(node) = self.lock().nodes.get_mut(&ino) {
            node.expires = Instant::now();
        }
    }

    /// Mark the attributes of every inode the store has stale (SIGHUP); ones that exist only
    /// in the mount so far keep theirs.
    pub fn expire_all(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner { nodes, local, .. } = &mut *inner;
        for (ino, node) in nodes.iter_mut() {
            if !local.contains(ino) {
                node.expires = now;
            }
        }
    }

    /// Every inode but the root as (inode, parent, name).
    pub fn entries(&self) -> Vec<(u64, u64, String)> {
        self.lock()
            .nodes
            .values()
            .filter(|n| n.ino != ROOT_INO)
            .map(|n| (n.ino, n.parent, n.name.clone()))
            .collect()
    }

    /// Forget the name `name` in `parent` (the object is gone); the inode stays until forgotten.
    pub fn unlink(&self, parent: u64, name: &str) {
        let mut inner = self.lock();
        if let Some(ino) = inner.names.remove(&(parent, name.to_string())) {
            inner.local.remove(&ino);
        }
    }

    /// `ino` lost its name through the mount (unlink, rmdir, or replaced by a rename).
    pub fn mark_unlinked(&self, ino: u64) {
        if let Some(node) = self.lock().nodes.get_mut(&ino) {
            node.unlinked = true;
        }
    }

    /// Whether `ino` exists only here so far.
    pub fn is_local(&self, ino: u64) -> bool {
        self.lock().local.contains(&ino)
    }

    /// Mark `ino` as existing only here (`true`) or in the store too (`false`).
    pub fn set_local(&self, ino: u64, local: bool) {
        let mut inner = self.lock();
        if local {
            inner.local.insert(ino);
        } else {
            inner.local.remove(&ino);
        }
    }

    /// The named children of `parent` that exist only here.
    pub fn local_children(&self, parent: u64) -> Vec<Node> {
        let inner = self.lock();
        inner
            .local
            .iter()
            .filter_map(|ino| inner.nodes.get(ino))
            .filter(|n| {
                n.parent == parent && inner.names.get(&(parent, n.name.clone())) == Some(&n.ino)
            })
            .cloned()
            .collect()
    }

    /// Give `ino` the name `name` in `parent` and the key `key`; the inode that had that name
    /// (if any) loses it. For a directory, the keys of every known inode below it follow.
    /// Moved inodes are marked stale: a server-side copy may carry a new ETag.
    pub fn rename(&self, ino: u64, parent: u64, name: &str, key: &str) {
        let mut inner = self.lock();
        let Some(node) = inner.nodes.get(&ino).cloned() else {
            return;
        };
        let old_name = (node.parent, node.name.clone());
        if inner.names.get(&old_name) == Some(&ino) {
            inner.names.remove(&old_name);
        }
        if let Some(replaced) = inner.names.insert((parent, name.to_string()), ino) {
            if replaced != ino {
                inner.local.remove(&replaced);
            }
        }
        if node.kind == Kind::Dir && !node.key.is_empty() {
            for n in inner.nodes.values_mut() {
                if n.ino != ino && n.key.starts_with(&node.key) {
                    n.key = format!("{key}{}", &n.key[node.key.len()..]);
                    n.expires = Instant::now();
                }
            }
        }
        if let Some(n) = inner.nodes.get_mut(&ino) {
            n.parent = parent;
            n.name = name.to_string();
            n.key = key.to_string();
            n.expires = Instant::now();
        }
    }

    /// The kernel was handed `ino` once more.
    pub fn remember(&self, ino: u64) {
        if let Some(node) = self.lock().nodes.get_mut(&ino) {
            node.lookups += 1;
        }
    }

    /// The kernel dropped `n` references to `ino`; removes the inode at zero.
    pub fn forget(&self, ino: u64, n: u64) {
        if ino == ROOT_INO {
            return;
        }
        let mut inner = self.lock();
        let Some(node) = inner.nodes.get_mut(&ino) else {
            tracing::debug!(ino, "forget of an unknown inode");
            return;
        };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups > 0 {
            return;
        }
        let name_key = (node.parent, node.name.clone());
        inner.nodes.remove(&ino);
        inner.local.remove(&ino);
        if inner.names.get(&name_key) == Some(&ino) {
            inner.names.remove(&name_key);
        }
    }

    /// Number of inodes in the table (the root included).
    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    /// Whether only the root is left.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn stat(size: u64) -> Stat {
        Stat {
            size_unknown: false,
            size,
            mtime: SystemTime::UNIX_EPOCH,
            etag: None,
            meta: Default::default(),
        }
    }

    #[test]
    fn numbers_are_monotonic_and_never_reused() {
        let t = InodeTable::new(stat(0));
        let later = Instant::now() + Duration::from_secs(5);
        let a = t.upsert(ROOT_INO, "a", "a", Kind::File, stat(1), later);
        t.remember(a);
        t.forget(a, 1);
        assert!(t.get(a).is_none(), "removed at lookup count zero");
        let a2 = t.upsert(ROOT_INO, "a", "a", Kind::File, stat(1), later);
        assert!(a2 > a, "a new inode number, never a reused one");
    }

    #[test]
    fn forget_counts_lookups_and_saturates() {
        let t = InodeTable::new(stat(0));
        let later = Instant::now() + Duration::from_secs(5);
        let a = t.upsert(ROOT_INO, "a", "a", Kind::File, stat(1), later);
        t.remember(a);
        t.remember(a);
        t.forget(a, 1);
        assert_eq!(t.get(a).map(|n| n.lookups), Some(1));
        t.forget(a, 10);
        assert!(t.get(a).is_none());
        assert!(t.child(ROOT_INO, "a").is_none());
        t.forget(ROOT_INO, 100);
        assert!(t.get(ROOT_INO).is_some(), "the root is never forgotten");
    }

    #[test]
    fn same_kind_keeps_the_inode_other_kind_replaces_the_name() {
        let t = InodeTable::new(stat(0));
        let later = Instant::now() + Duration::from_secs(5);
        let f = t.upsert(ROOT_INO, "x", "x", Kind::File, stat(1), later);
        t.remember(f);
        assert_eq!(t.upsert(ROOT_INO, "x", "x", Kind::File, stat(2), later), f);
        assert_eq!(t.get(f).map(|n| n.stat.size), Some(2));
        let d = t.upsert(ROOT_INO, "x", "x/", Kind::Dir, stat(0), later);
        assert_ne!(d, f);
        assert_eq!(t.child(ROOT_INO, "x").map(|n| n.ino), Some(d));
        t.forget(f, 1);
        assert_eq!(
            t.child(ROOT_INO, "x").map(|n| n.ino),
            Some(d),
            "old inode's forget keeps the new name"
        );
    }
}
