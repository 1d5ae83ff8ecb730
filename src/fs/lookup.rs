//! Names and attributes: `lookup`, `getattr`, and asking the store about a name or an
//! object whose cached answer ran out. While the store does not answer (`-o offline=on`),
//! what is cached answers instead, past its TTL ([`super::offline`]).

use super::{check_name, parent_key, Attr};
use super::{CloudFs, Entry, FsError, FsResult, Kind, Listed, Node, Stat};
use crate::backend::BackendError;
use std::time::{Duration, Instant};

impl CloudFs {
    /// Resolve `name` in directory `parent`; counts one kernel reference on success.
    pub async fn lookup(&self, parent: u64, name: &str) -> FsResult<Entry> {
        let ino = self.resolve(parent, name).await?;
        self.inodes.remember(ino);
        let node = self.node(ino)?;
        Ok(self.entry(&self.with_staged_size(node)))
    }

    /// The inode of `name` in directory `parent` (not counted as a kernel reference).
    pub(super) async fn resolve(&self, parent: u64, name: &str) -> FsResult<u64> {
        let dir = self.node(parent)?;
        if dir.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        check_name(&dir.key, name, self.cfg.listing.name_max)?;
        if let Some(node) = self.inodes.child(parent, name) {
            // What exists only in the mount, or is being written, is not asked of the store.
            if Instant::now() < node.expires
                || self.inodes.is_local(node.ino)
                || self.is_open_for_write(node.ino)
            {
                return Ok(node.ino);
            }
        }
        if self.negative.contains(parent, name) {
            return Err(FsError::NotFound);
        }
        // A cached listing answers for the names it has; a name it lacks may have been made
        // elsewhere since, so it is asked of the store (then kept as missing for
        // negative_timeout).
        let cached = self.dirs.get(&dir.key);
        let mut listed = cached.as_ref().and_then(|l| l.get(name).cloned());
        let burst = cached
            .is_none()
            .then(|| self.bursts.start(&dir.key))
            .flatten();
        if let Some(burst) = burst {
            self.list_for_burst(burst, &dir.key, dir.stat.mtime).await;
            listed = self.dirs.get(&dir.key).and_then(|l| l.get(name).cloned());
        }
        let found = match listed {
            Some(found) => Some(found),
            None => match self.remote_lookup(&dir.key, name).await {
                Ok(found) => found,
                Err(FsError::Backend(e)) if self.serves_offline(&e) => {
                    return self.resolve_offline(parent, &dir.key, name, e);
                }
                Err(e) => return Err(e),
            },
        };
        let Some(found) = found else {
            self.negative.insert(parent, name);
            self.inodes.unlink(parent, name);
            return Err(FsError::NotFound);
        };
        let ino = self.inodes.upsert(
            parent,
            name,
            &found.key,
            found.kind,
            found.stat,
            self.expiry(),
        );
        Ok(ino)
    }

    /// List directory `key` whole into the listing cache, for a burst of lookups in it (see
    /// [`super::bursts`]); a failure or a directory too large leaves lookups to go by name.
    async fn list_for_burst(
        &self,
        burst: super::bursts::Listing<'_>,
        key: &str,
        mtime: std::time::SystemTime,
    ) {
        let started = std::time::Instant::now();
        let mut stream = super::listing::DirStream::new(key, &self.cfg.listing, mtime);
        let mut entries = Vec::new();
        loop {
            match stream.next(self.backend.as_ref()).await {
                Ok(Some(e)) => {
                    entries.push(e);
                    if entries.len() > super::bursts::MAX_ENTRIES
                        || !self.dirs.accepts(entries.len())
                    {
                        tracing::debug!(
                            dir = key,
                            "too many entries to list for a burst of lookups"
                        );
                        return burst.too_big();
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(dir = key, error = %e, "listing for a burst of lookups failed");
                    return;
                }
            }
        }
        tracing::debug!(
            dir = key,
            entries = entries.len(),
            "listed for a burst of lookups"
        );
        self.dirs.put(key, entries, started);
    }

    /// Ask the store whether `name` exists under directory key `dir_key`.
    pub(super) async fn remote_lookup(
        &self,
        dir_key: &str,
        name: &str,
    ) -> FsResult<Option<Listed>> {
        let key = format!("{dir_key}{name}");
        let as_dir = format!("{key}/");
        let (head, list) =
            tokio::join!(self.backend.head(&key), self.backend.list(&as_dir, None, 1));
        let (is_dir, marker) = match list {
            Ok(p) => (p.shows_directory(), p.marker),
            Err(BackendError::NotFound(_)) => (false, false),
            Err(e) => return Err(e.into()),
        };
        if is_dir {
            // A marker object (s3fs writes one per directory) carries the mode and owner.
            let meta = match marker {
                true => self.backend.marker_meta(&as_dir).await?.unwrap_or_default(),
                false => Default::default(),
            };
            let stat = Stat {
                size_unknown: false,
                size: 0,
                mtime: self.mounted_at,
                etag: None,
                meta,
            };
            return Ok(Some(Listed {
                name: name.to_string(),
                key: as_dir,
                kind: Kind::Dir,
                stat,
            }));
        }
        match head {
            Ok(o) => {
                let stat = Stat::from(o);
                return Ok(Some(Listed {
                    name: name.to_string(),
                    key,
                    kind: Kind::of_object(&stat.meta),
                    stat,
                }));
            }
            Err(BackendError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
        // A file hidden by a directory of the same name is reachable as NAME + suffix.
        let suffix = self.cfg.listing.suffix.as_str();
        if let Some(base) = name.strip_suffix(suffix).filter(|b| !b.is_empty()) {
            let base_key = format!("{dir_key}{base}");
            let base_dir = format!("{base_key}/");
            let (head, list) = tokio::join!(
                self.backend.head(&base_key),
                self.backend.list(&base_dir, None, 1)
            );
            let shadowed = list.is_ok_and(|p| p.shows_directory());
            if let (true, Ok(o)) = (shadowed, head) {
                let stat = Stat::from(o);
                return Ok(Some(Listed {
                    name: name.to_string(),
                    key: base_key,
                    kind: Kind::of_object(&stat.meta),
                    stat,
                }));
            }
        }
        Ok(None)
    }

    /// Attributes of `ino`; a file whose attributes expired is checked with a HEAD.
    pub async fn getattr(&self, ino: u64) -> FsResult<(Attr, Duration)> {
        let node = self.fresh_node(ino).await?;
        let mut attr = self.policy.attr(ino, node.kind, &node.stat);
        if node.unlinked {
            attr.nlink = 0;
        }
        Ok((attr, self.ttl(&node, self.cfg.attr_timeout)))
    }

    /// The node of `ino` with its stored metadata read: a file known only from a listing
    /// (which carries none) is asked of the store, so that a change of its attributes or
    /// content keeps the rest of what it stores (owner, mode, extended attributes).
    /// Directories keep what this mount knows (their marker's metadata, read at lookup).
    pub(super) async fn node_with_meta(&self, ino: u64) -> FsResult<Node> {
        let node = self.fresh_node(ino).await?;
        let known = node.stat.meta.xattrs.is_some();
        if known || node.kind == Kind::Dir || node.unlinked || self.inodes.is_local(ino) {
            return Ok(node);
        }
        self.inodes.expire(ino);
        self.fresh_node(ino).await
    }

    /// The node of `ino`, refreshed from the store when it is a file whose TTL ran out; a
    /// file open for writing has the size of its staged content. An unlinked inode is not
    /// asked of the store, where its old name may hold another object by now.
    pub(super) async fn fresh_node(&self, ino: u64) -> FsResult<Node> {
        let node = self.node(ino)?;
        if self.is_open_for_write(ino) {
            return Ok(self.with_staged_size(node));
        }
        if node.kind == Kind::Dir
            || node.unlinked
            || Instant::now() < node.expires
            || self.inodes.is_local(ino)
        {
            return Ok(node);
        }
        match self.backend.head(&node.key).await {
            Ok(o) => {
                let stat = Stat::from(o);
                let relinked = node.kind == Kind::Symlink && stat.etag != node.stat.etag;
                if Kind::of_object(&stat.meta) != node.kind || relinked {
                    // Became (or stopped being) a symbolic link, or a link got a new target:
                    // a new inode, found by the kernel's next lookup of the name.
                    self.inodes.unlink(node.parent, &node.name);
                    self.dirs.invalidate(&parent_key(&node.key));
                    return Err(FsError::Stale);
                }
                self.inodes.refresh(ino, stat, self.expiry());
                self.node(ino)
            }
            Err(BackendError::NotFound(_)) => {
                self.inodes.unlink(node.parent, &node.name);
                self.dirs.invalidate(&parent_key(&node.key));
                Err(FsError::NotFound)
            }
            Err(e) if self.serves_offline(&e) => {
                self.activity.served_stale();
                Ok(node)
            }
            Err(e) => Err(e.into()),
        }
    }
}
