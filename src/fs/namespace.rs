//! Names through the mount: unlink, mkdir, rmdir, rename (files and whole directories).
//!
//! A new directory is a marker object `dir/` carrying its mode and owner, as s3fs writes one
//! (S3, Azure, and a real directory on the local backend); on stores without markers (GCS) it
//! exists only in the mount until a file is uploaded below it, listed by its parent meanwhile.
//! Renames copy then delete on the server (a directory: every object and marker below it, up
//! to `rename_dir_limit`), or move in one step where the store can (Drive, a local
//! directory: [`crate::backend::Backend::renames`]). Open files follow their new names.

use super::sessions::OpenWrite;
use super::{parent_key, CloudFs, Entry, FsError, FsResult, Kind, Node};
use crate::backend::{BackendError, PosixMeta};
use crate::write::journal::Expect;
use crate::write::Staged;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::OwnedMutexGuard;

impl CloudFs {
    /// Remove file `name` from `parent`.
    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.writable()?;
        let ino = self.resolve(parent, name).await?;
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        // The session (if open) is held across the delete: no upload can slip in between,
        // and it is marked unlinked only once the server confirmed the delete.
        let mut session = self.lock_session(ino).await;
        if !self.inodes.is_local(ino) {
            self.backend.delete(&node.key).await?;
        }
        if let Some(st) = session.as_mut() {
            Self::unlinked(st).await;
        }
        self.forget_name(parent, name, &node.key);
        self.inodes.mark_unlinked(ino);
        Ok(())
    }

    /// A failed rename may have copied over the object of session `st`: if the server no
    /// longer holds the version the session is based on, the session's content differs from
    /// it and is sent again at its next close.
    async fn overwritten_under(&self, st: &mut Staged) {
        let now = match self.backend.head(&st.key).await {
            Ok(info) => info.etag,
            Err(_) => return,
        };
        if now.is_some() && now != st.base_etag {
            tracing::warn!(key = %st.key, "a failed rename replaced the object of a file open for writing; its next close stores the file as the mount shows it");
            st.dirty = true;
        }
    }

    /// The session of `ino` (if it has one), locked.
    async fn lock_session(&self, ino: u64) -> Option<OwnedMutexGuard<Staged>> {
        match self.open_write(ino) {
            Some(w) => Some(w.locked().await),
            None => None,
        }
    }

    /// The name of a session's file is gone on the server: its content is never uploaded
    /// again, and nothing of it stays journaled.
    async fn unlinked(st: &mut Staged) {
        st.unlinked = true;
        st.unjournal();
        if let Some(s) = st.stream.as_mut() {
            s.stop().await;
        }
    }

    fn forget_name(&self, parent: u64, name: &str, key: &str) {
        self.inodes.unlink(parent, name);
        self.dirs.invalidate(&parent_key(key));
        self.negative.insert(parent, name);
        self.keep_dir(parent);
        self.touch_dir(parent);
    }

    /// Directory `ino` gained or lost an entry through the mount: its mtime and ctime are now,
    /// in the mount at once and on its marker object at the next flush (a prefix without a
    /// marker has no time of its own on the server): [`super::dir_times`].
    pub(super) fn touch_dir(&self, ino: u64) {
        if let Some(node) = self.inodes.get(ino) {
            let now = SystemTime::now();
            let mut stat = node.stat;
            stat.mtime = now;
            stat.meta.mtime = Some(now);
            stat.meta.ctime = Some(now);
            self.inodes.refresh(ino, stat, node.expires);
            self.dirty_dirs.mark(ino);
        }
    }

    /// Directory `ino` lost an entry through the mount: if that was its last object, the store
    /// no longer shows it (nor its parents, if they held nothing else), but they must stay, as
    /// after `rm dir/*` on a local disk. Marking a directory that still has objects is harmless:
    /// listings show a name once.
    fn keep_dir(&self, ino: u64) {
        let mut dir = ino;
        for _ in 0..super::MAX_KEY_LEN {
            if dir == super::ROOT_INO {
                break;
            }
            self.inodes.set_local(dir, true);
            dir = self.inodes.get(dir).map_or(super::ROOT_INO, |n| n.parent);
        }
    }

    /// Make directory `name` in `parent` with attributes `meta` (kept in the mount only; it
    /// exists only in the mount until a file is uploaded below it).
    pub async fn mkdir(&self, parent: u64, name: &str, meta: PosixMeta) -> FsResult<Entry> {
        self.writable()?;
        match self.resolve(parent, name).await {
            Ok(_) => return Err(FsError::Exists),
            Err(FsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let dir = self.node(parent)?;
        let key = format!("{}{name}/", dir.key);
        let meta = PosixMeta {
            mtime: Some(SystemTime::now()),
            ..meta
        };
        let ino = match self.backend.put_marker(&key, &meta).await {
            Ok(()) => {
                self.dirs.invalidate(&dir.key);
                // It has a marker now (its times are kept there): known to carry no xattrs.
                let meta = PosixMeta {
                    xattrs: Some(Default::default()),
                    ..meta
                };
                self.add_entry(parent, name, &key, Kind::Dir, meta)
            }
            Err(BackendError::Unsupported(_)) => {
                self.add_local(parent, name, &key, Kind::Dir, meta)
            }
            Err(e) => return Err(e.into()),
        };
        self.inodes.remember(ino);
        Ok(self.entry(&self.node(ino)?))
    }

    /// Whether directory `node` has no entries, here or in the store.
    async fn dir_is_empty(&self, node: &Node) -> FsResult<bool> {
        Ok(self.dir_state(node).await?.0)
    }

    /// Whether directory `node` has no entries, here or in the store, and whether the store
    /// has its marker object.
    async fn dir_state(&self, node: &Node) -> FsResult<(bool, bool)> {
        if !self.inodes.local_children(node.ino).is_empty() {
            return Ok((false, false));
        }
        let page = match self.backend.list(&node.key, None, 2).await {
            Ok(p) => p,
            Err(BackendError::NotFound(_)) => return Ok((true, false)),
            Err(e) => return Err(e.into()),
        };
        let empty = page.objects.is_empty() && page.prefixes.is_empty();
        Ok((empty, self.marker_in(&node.key, &page).await?))
    }

    /// Whether directory key `dir`, listed as `page`, has a marker object (asked of the
    /// store where its listings cannot tell).
    async fn marker_in(&self, dir: &str, page: &crate::backend::ListPage) -> FsResult<bool> {
        if page.marker || dir.is_empty() {
            return Ok(page.marker);
        }
        Ok(self.backend.has_marker(dir).await?.unwrap_or(false))
    }

    /// Delete the marker object of directory key `dir`.
    async fn remove_marker(&self, dir: &str) -> FsResult<()> {
        match self.backend.delete_marker(dir).await {
            Ok(()) => Ok(()),
            Err(BackendError::Unsupported(_)) => Err(FsError::Unsupported(format!(
                "{dir} is kept by a directory marker object, which {} cannot delete; delete \
                 the object {dir:?} with your storage's tools",
                self.backend.describe()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Remove the empty directory `name` from `parent`.
    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        self.writable()?;
        let ino = self.resolve(parent, name).await?;
        let node = self.node(ino)?;
        if node.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        let (empty, marker) = self.dir_state(&node).await?;
        if !empty {
            return Err(FsError::NotEmpty);
        }
        let _markers = self.dirty_dirs.markers().await;
        if marker {
            self.remove_marker(&node.key).await?;
        }
        self.dirs.invalidate(&node.key);
        self.forget_name(parent, name, &node.key);
        self.inodes.mark_unlinked(ino);
        Ok(())
    }

    /// Rename `name` in `parent` to `new_name` in `new_parent`; `noreplace` refuses to replace
    /// an existing name (RENAME_NOREPLACE).
    pub async fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        noreplace: bool,
    ) -> FsResult<()> {
        self.writable()?;
        let ino = self.resolve(parent, name).await?;
        let src = self.node(ino)?;
        let new_dir = self.node(new_parent)?;
        if new_dir.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        if src.kind == Kind::Dir && new_dir.key.starts_with(&src.key) {
            return Err(FsError::Invalid("a directory cannot move into itself"));
        }
        let existing = match self.resolve(new_parent, new_name).await {
            Ok(d) if d == ino => return Ok(()),
            Ok(d) => Some(self.node(d)?),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(e),
        };
        if let Some(dst) = &existing {
            if noreplace {
                return Err(FsError::Exists);
            }
            match (src.kind, dst.kind) {
                (from, Kind::Dir) if from != Kind::Dir => return Err(FsError::IsDir),
                (Kind::Dir, to) if to != Kind::Dir => return Err(FsError::NotDir),
                (Kind::Dir, Kind::Dir) if !self.dir_is_empty(dst).await? => {
                    return Err(FsError::NotEmpty)
                }
                _ => {}
            }
        }
        // The sessions of both files are held across the server round trips (in inode order),
        // so no upload of either lands between the copy and the delete; the replaced file is
        // marked unlinked only once the move succeeded.
        let dst_ino = existing.as_ref().map(|d| d.ino).filter(|d| *d != ino);
        let (mut src_session, mut dst_session) = match dst_ino {
            Some(d) if d < ino => {
                let dst = self.lock_session(d).await;
                (self.lock_session(ino).await, dst)
            }
            Some(d) => {
                let src = self.lock_session(ino).await;
                (src, self.lock_session(d).await)
            }
            None => (self.lock_session(ino).await, None),
        };
        let suffix = if src.kind == Kind::Dir { "/" } else { "" };
        let new_key = format!("{}{new_name}{suffix}", new_dir.key);
        // A directory's markers move: no flush of its times may write the old one back.
        let _markers = match src.kind {
            Kind::Dir => Some(self.dirty_dirs.markers().await),
            _ => None,
        };
        if src.kind == Kind::Dir {
            self.move_prefix(&src, &new_key).await?;
        } else {
            // A file only the mount has, moved over an object: that object is replaced now
            // (else it would come back once the moved file is unlinked).
            let replaces = dst_ino.is_some_and(|d| !self.inodes.is_local(d));
            let moved = self
                .move_file(&src, src_session.as_deref_mut(), &new_key, replaces)
                .await;
            if let (Err(_), Some(st)) = (&moved, dst_session.as_mut()) {
                // The copy may have gone through before the delete failed: the open file
                // that was to be replaced is then no longer what the server holds, and its
                // next close puts it back.
                self.overwritten_under(st).await;
            }
            moved?;
        }
        self.inodes.rename(ino, new_parent, new_name, &new_key);
        if let Some(d) = dst_ino {
            if let Some(st) = dst_session.as_mut() {
                Self::unlinked(st).await;
            }
            self.inodes.mark_unlinked(d);
        }
        drop((src_session, dst_session));
        self.keep_dir(parent);
        for key in [
            parent_key(&src.key),
            new_dir.key.clone(),
            src.key.clone(),
            new_key,
        ] {
            self.dirs.invalidate(&key);
        }
        self.negative.remove(new_parent, new_name);
        self.negative.insert(parent, name);
        self.touch_dir(parent);
        self.touch_dir(new_parent);
        Ok(())
    }

    /// Move file `src` to `new_key` on the server (`replaces`: an object there is replaced);
    /// `session` is its write session, locked by the caller for the whole move.
    async fn move_file(
        &self,
        src: &Node,
        session: Option<&mut Staged>,
        new_key: &str,
        replaces: bool,
    ) -> FsResult<()> {
        let local = self.inodes.is_local(src.ino);
        if local && replaces {
            self.backend.delete(new_key).await?;
        }
        // A rename moves the file's ctime; stored with the copy when all it stores is known
        // (else the copy keeps what the object has, rather than lose any of it).
        self.touch_ctime(src.ino);
        let meta = (src.stat.meta.xattrs.is_some()).then(|| self.meta_to_store(src.ino));
        let Some(st) = session else {
            if !local {
                self.move_object(&src.key, new_key, meta.as_ref()).await?;
            }
            return Ok(());
        };
        // What is not staged yet must be fetched before the object moves away (a one-step
        // move keeps the object, so nothing needs fetching).
        if !self.backend.renames() {
            let size = st.size();
            self.fetch_missing(st, 0..size).await?;
        }
        if !local {
            self.move_object(&src.key, new_key, meta.as_ref()).await?;
        }
        self.follow_rename(src.ino, st, new_key, local).await;
        Ok(())
    }

    /// Move object `from` to `to` on the server: one step where the store can, else a copy
    /// (with `meta` instead of the object's, when given) and a delete.
    async fn move_object(
        &self,
        from: &str,
        to: &str,
        meta: Option<&PosixMeta>,
    ) -> Result<(), BackendError> {
        if self.backend.renames() {
            return self.backend.rename(from, to).await;
        }
        match meta {
            Some(meta) => self.backend.copy_with_meta(from, to, meta).await?,
            None => self.backend.copy(from, to).await?,
        }
        self.backend.delete(from).await
    }

    /// The ctime of `ino` moves to now (in the mount; stored with its next change).
    fn touch_ctime(&self, ino: u64) {
        if let Some(mut node) = self.inodes.get(ino) {
            node.stat.meta.ctime = Some(SystemTime::now());
            self.inodes.refresh(ino, node.stat, node.expires);
        }
    }

    /// A session's file moved to `new_key` (the server confirmed it): later uploads go there,
    /// and journaled content names it, replacing what the move left there (`local`: the file
    /// had no object, so the move left the name as it was).
    async fn follow_rename(&self, ino: u64, st: &mut Staged, new_key: &str, local: bool) {
        st.key = new_key.to_string();
        // An upload of content with a base version asks the server itself (HEAD); only a
        // record, or content without a base, relies on what is known now.
        if st.journaled() || st.base_etag.is_none() {
            st.expect = match (local, self.backend.head(new_key).await) {
                (_, Ok(info)) => info.etag.map_or(Expect::Any, Expect::Etag),
                (_, Err(BackendError::NotFound(_))) => Expect::Absent,
                (false, Err(_)) => Expect::Any,
                (true, Err(_)) => st.expect.clone(),
            };
        }
        if st.journaled() {
            let state = super::upload::record_state(st);
            if let Err(e) = st.journal(&self.meta_to_store(ino), state, true).await {
                tracing::error!(key = %st.key, error = %e, "cannot rewrite the journal record of a renamed file");
            }
        }
    }

    /// Move every object below directory `src` to `new_key`. The sessions of open files below
    /// it are held for the whole move (in inode order); others are not waited for.
    async fn move_prefix(&self, src: &Node, new_key: &str) -> FsResult<()> {
        let native = self.backend.renames();
        let (keys, markers) = if native {
            (Vec::new(), Vec::new())
        } else {
            self.objects_below(&src.key).await?
        };
        // Nothing is copied unless everything can be.
        for key in keys.iter().chain(&markers) {
            self.backend.addressable(key)?;
        }
        let below: Vec<(u64, Arc<OpenWrite>)> = self
            .sessions
            .all()
            .into_iter()
            .filter(|(ino, _)| {
                self.inodes
                    .get(*ino)
                    .is_some_and(|n| n.key.starts_with(&src.key))
            })
            .collect();
        let mut held = Vec::with_capacity(below.len());
        for (ino, w) in below {
            held.push((ino, w.locked().await));
        }
        // Open files below: fetch what is not staged yet before their objects move away.
        for (_, st) in held.iter_mut().filter(|_| !native) {
            if st.key.starts_with(&src.key) {
                let size = st.size();
                self.fetch_missing(st, 0..size).await?;
            }
        }
        if native {
            self.backend.rename(&src.key, new_key).await?;
        }
        for key in &keys {
            let to = format!("{new_key}{}", &key[src.key.len()..]);
            self.backend.copy(key, &to).await?;
        }
        // Directory markers, with the mode, owner and attributes they carry.
        for dir in &markers {
            let to = format!("{new_key}{}", &dir[src.key.len()..]);
            let meta = self.backend.marker_meta(dir).await?.unwrap_or_default();
            self.backend.put_marker(&to, &meta).await?;
        }
        for key in &keys {
            self.backend.delete(key).await?;
        }
        // Deepest first (a local directory must be empty to go).
        let mut markers = markers;
        markers.sort_by_key(|d| std::cmp::Reverse(d.len()));
        for dir in &markers {
            self.remove_marker(dir).await?;
        }
        // Staged files below follow their directory.
        for (ino, st) in held.iter_mut() {
            if let Some(rest) = st.key.strip_prefix(&src.key) {
                let to = format!("{new_key}{rest}");
                let local = self.inodes.is_local(*ino);
                self.follow_rename(*ino, st, &to, local).await;
            }
        }
        Ok(())
    }

    /// Every object key below directory key `prefix`, and the directories (`prefix`
    /// included) that have marker objects; refuses more than `rename_dir_limit` objects.
    async fn objects_below(&self, prefix: &str) -> FsResult<(Vec<String>, Vec<String>)> {
        let limit = self.cfg.rename_dir_limit;
        let mut keys = Vec::new();
        let mut markers = Vec::new();
        let mut dirs = vec![prefix.to_string()];
        while let Some(dir) = dirs.pop() {
            let mut token: Option<String> = None;
            loop {
                let page = match self.backend.list(&dir, token.as_deref(), 1000).await {
                    Ok(p) => p,
                    Err(BackendError::NotFound(_)) => break,
                    Err(e) => return Err(e.into()),
                };
                if token.is_none() && self.marker_in(&dir, &page).await? {
                    markers.push(dir.clone());
                }
                keys.extend(page.objects.into_iter().map(|o| o.key));
                dirs.extend(page.prefixes);
                if keys.len() > limit {
                    return Err(FsError::TooMany(format!(
                        "renaming {prefix} would move more than {limit} objects; \
                         raise -o rename_dir_limit= or move them with your storage's tools"
                    )));
                }
                match page.next_token {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
        }
        Ok((keys, markers))
    }
}
