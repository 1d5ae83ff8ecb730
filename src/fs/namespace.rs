//! Names through the mount: unlink, mkdir, rmdir, rename (files and whole directories).
//!
//! A new directory exists only in the mount until a file is uploaded below it (object stores
//! have no empty directories that object_store can create); it is listed by its parent
//! meanwhile. Renames copy then delete on the server (a directory: every object below it, up
//! to `rename_dir_limit`). Open files follow their new names.

use super::write_ops::OpenWrite;
use super::Stat;
use super::{lock, parent_key, CloudFs, Entry, FsError, FsResult, Kind, Node};
use crate::backend::{BackendError, PosixMeta};
use bytes::Bytes;
use std::sync::Arc;
use std::time::SystemTime;

impl CloudFs {
    /// Remove file `name` from `parent`.
    pub async fn unlink(&self, parent: u64, name: &str) -> FsResult<()> {
        self.writable()?;
        let ino = self.resolve(parent, name).await?;
        let node = self.node(ino)?;
        if node.kind == Kind::Dir {
            return Err(FsError::IsDir);
        }
        if let Some(w) = self.open_write(ino) {
            let mut st = w.staged.lock().await;
            st.unlinked = true;
            if let Some(s) = st.stream.as_mut() {
                s.stop().await;
            }
        }
        if !self.inodes.is_local(ino) {
            self.backend.delete(&node.key).await?;
        }
        self.forget_name(parent, name, &node.key);
        Ok(())
    }

    fn forget_name(&self, parent: u64, name: &str, key: &str) {
        self.inodes.unlink(parent, name);
        self.dirs.invalidate(&parent_key(key));
        self.negative.insert(parent, name);
        self.keep_dir(parent);
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
        let ino = self.add_local(parent, name, &key, Kind::Dir, meta);
        self.inodes.remember(ino);
        Ok(self.entry(&self.node(ino)?))
    }

    /// Make symbolic link `name` in `parent` pointing at `target`, stored at once as s3fs
    /// stores one: an object whose content is the target, with `meta` (mode `S_IFLNK|0777`
    /// and the creator) as its metadata.
    pub async fn symlink(
        &self,
        parent: u64,
        name: &str,
        target: &[u8],
        meta: PosixMeta,
    ) -> FsResult<Entry> {
        self.writable()?;
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        if target.len() >= libc::PATH_MAX as usize {
            return Err(FsError::NameTooLong);
        }
        match self.resolve(parent, name).await {
            Ok(_) => return Err(FsError::Exists),
            Err(FsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        if !self.backend.stores_metadata() {
            return Err(FsError::Unsupported(format!(
                "symbolic links are stored as objects with metadata, which {} cannot keep",
                self.backend.describe()
            )));
        }
        let dir = self.node(parent)?;
        let key = format!("{}{name}", dir.key);
        let meta = PosixMeta {
            mode: Some(libc::S_IFLNK | 0o777),
            mtime: Some(SystemTime::now()),
            ..meta
        };
        let info = self
            .backend
            .put(&key, Bytes::copy_from_slice(target), &meta)
            .await?;
        let stat = Stat {
            meta,
            ..Stat::from(info)
        };
        let ino = self
            .inodes
            .upsert(parent, name, &key, Kind::Symlink, stat, self.expiry());
        self.negative.remove(parent, name);
        self.dirs.invalidate(&dir.key);
        self.inodes.remember(ino);
        Ok(self.entry(&self.node(ino)?))
    }

    /// The target of symbolic link `ino` (the object's content).
    pub async fn readlink(&self, ino: u64) -> FsResult<Bytes> {
        let node = self.fresh_node(ino).await?;
        if node.kind != Kind::Symlink {
            return Err(FsError::Invalid("not a symbolic link"));
        }
        if node.stat.size == 0 {
            return Ok(Bytes::new());
        }
        let target = self
            .backend
            .get_range(&node.key, 0..node.stat.size, node.stat.etag.as_deref())
            .await?;
        Ok(target)
    }

    /// Whether directory `node` has no entries, here or in the store.
    async fn dir_is_empty(&self, node: &Node) -> FsResult<bool> {
        if !self.inodes.local_children(node.ino).is_empty() {
            return Ok(false);
        }
        let page = match self.backend.list(&node.key, None, 2).await {
            Ok(p) => p,
            Err(BackendError::NotFound(_)) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        if !page.objects.is_empty() || !page.prefixes.is_empty() {
            return Ok(false);
        }
        if page.marker {
            return Err(FsError::Unsupported(format!(
                "{} is an empty directory kept by a directory marker object, which this \
                 version cannot delete; delete the object {:?} with your storage's tools",
                node.key, node.key
            )));
        }
        Ok(true)
    }

    /// Remove the empty directory `name` from `parent`.
    pub async fn rmdir(&self, parent: u64, name: &str) -> FsResult<()> {
        self.writable()?;
        let ino = self.resolve(parent, name).await?;
        let node = self.node(ino)?;
        if node.kind != Kind::Dir {
            return Err(FsError::NotDir);
        }
        if !self.dir_is_empty(&node).await? {
            return Err(FsError::NotEmpty);
        }
        self.dirs.invalidate(&node.key);
        self.forget_name(parent, name, &node.key);
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
                (Kind::File | Kind::Symlink, Kind::Dir) => return Err(FsError::IsDir),
                (Kind::Dir, Kind::File | Kind::Symlink) => return Err(FsError::NotDir),
                (Kind::Dir, Kind::Dir) if !self.dir_is_empty(dst).await? => {
                    return Err(FsError::NotEmpty)
                }
                _ => {}
            }
            if let Some(w) = self.open_write(dst.ino) {
                w.staged.lock().await.unlinked = true;
            }
        }
        let suffix = if src.kind == Kind::Dir { "/" } else { "" };
        let new_key = format!("{}{new_name}{suffix}", new_dir.key);
        if src.kind == Kind::Dir {
            self.move_prefix(&src, &new_key).await?;
        } else {
            self.move_file(&src, &new_key).await?;
        }
        self.inodes.rename(ino, new_parent, new_name, &new_key);
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
        Ok(())
    }

    async fn move_file(&self, src: &Node, new_key: &str) -> FsResult<()> {
        let staged = self.open_write(src.ino);
        if let Some(w) = &staged {
            let mut st = w.staged.lock().await;
            // What is not staged yet must be fetched before the object moves away.
            let size = st.size();
            self.fetch_missing(&mut st, 0..size).await?;
            // Later uploads of the open file go to the new name.
            st.key = new_key.to_string();
        }
        if self.inodes.is_local(src.ino) {
            return Ok(());
        }
        self.backend.copy(&src.key, new_key).await?;
        self.backend.delete(&src.key).await?;
        Ok(())
    }

    /// Move every object below directory `src` to `new_key`.
    async fn move_prefix(&self, src: &Node, new_key: &str) -> FsResult<()> {
        let keys = self.objects_below(&src.key).await?;
        // Open files below: fetch what is not staged yet before their objects move away.
        let below: Vec<Arc<OpenWrite>> = lock(&self.writes).values().cloned().collect();
        for w in &below {
            let mut st = w.staged.lock().await;
            if st.key.starts_with(&src.key) {
                let size = st.size();
                self.fetch_missing(&mut st, 0..size).await?;
            }
        }
        for key in &keys {
            let to = format!("{new_key}{}", &key[src.key.len()..]);
            self.backend.copy(key, &to).await?;
        }
        for key in &keys {
            self.backend.delete(key).await?;
        }
        // Staged files below follow their directory.
        for w in below {
            let mut st = w.staged.lock().await;
            if let Some(rest) = st.key.strip_prefix(&src.key) {
                st.key = format!("{new_key}{rest}");
            }
        }
        Ok(())
    }

    /// Every object key below directory key `prefix`, refusing more than `rename_dir_limit`.
    async fn objects_below(&self, prefix: &str) -> FsResult<Vec<String>> {
        let limit = self.cfg.rename_dir_limit;
        let mut keys = Vec::new();
        let mut dirs = vec![prefix.to_string()];
        while let Some(dir) = dirs.pop() {
            let mut token: Option<String> = None;
            loop {
                let page = match self.backend.list(&dir, token.as_deref(), 1000).await {
                    Ok(p) => p,
                    Err(BackendError::NotFound(_)) => break,
                    Err(e) => return Err(e.into()),
                };
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
        Ok(keys)
    }
}
