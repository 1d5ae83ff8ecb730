//! Objects that only their metadata makes more than a file, stored as s3fs stores them so that
//! both tools show the same tree: symbolic links (the content is the target, the `mode` has
//! `S_IFLNK`) and special files made by `mknod`/`mkfifo` (an empty object whose `mode` carries
//! the type bits, plus `rdev` for device files). Regular files made by `mknod` are empty
//! objects with their mode. All are stored at once: they have no content to write later.

use super::{CloudFs, Entry, FsError, FsResult, Kind, Stat};
use crate::backend::PosixMeta;
use bytes::Bytes;
use std::time::SystemTime;

impl CloudFs {
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
        if target.is_empty() {
            return Err(FsError::NotFound);
        }
        if target.len() >= libc::PATH_MAX as usize {
            return Err(FsError::NameTooLong);
        }
        let meta = PosixMeta {
            mode: Some(libc::S_IFLNK | 0o777),
            ..meta
        };
        self.store_new(parent, name, Bytes::copy_from_slice(target), meta)
            .await
    }

    /// Make `name` in `parent` with `meta` (the mode with its type bits, the creator) as
    /// `mknod` does: a regular file (type bits 0 or `S_IFREG`), FIFO, socket, or character or
    /// block device with device number `rdev`. Directories are made by `mkdir` only.
    pub async fn mknod(
        &self,
        parent: u64,
        name: &str,
        meta: PosixMeta,
        rdev: u64,
    ) -> FsResult<Entry> {
        let mode = meta.mode.unwrap_or(libc::S_IFREG | 0o644);
        let kind = match mode & libc::S_IFMT {
            0 => Kind::File,
            libc::S_IFDIR => return Err(FsError::Invalid("mknod cannot make a directory")),
            _ => Kind::of_object(&meta),
        };
        let device = matches!(kind, Kind::CharDevice | Kind::BlockDevice);
        let meta = PosixMeta {
            mode: Some(kind.type_bits() | (mode & 0o7777)),
            rdev: device.then_some(rdev),
            ..meta
        };
        self.store_new(parent, name, Bytes::new(), meta).await
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

    /// Store the new object `name` in `parent` at once, with `content` and `meta` (whose mode
    /// says its kind), and make it known to the mount.
    async fn store_new(
        &self,
        parent: u64,
        name: &str,
        content: Bytes,
        meta: PosixMeta,
    ) -> FsResult<Entry> {
        self.writable()?;
        match self.resolve(parent, name).await {
            Ok(_) => return Err(FsError::Exists),
            Err(FsError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let kind = Kind::of_object(&meta);
        if kind != Kind::File && !self.backend.stores_metadata() {
            return Err(FsError::Unsupported(format!(
                "{kind:?} files are stored as objects with metadata, which {} cannot keep",
                self.backend.describe()
            )));
        }
        let dir = self.node(parent)?;
        let key = format!("{}{name}", dir.key);
        let now = SystemTime::now();
        let meta = PosixMeta {
            mtime: Some(now),
            ctime: Some(now),
            ..meta
        };
        let info = self.backend.put(&key, content, &meta).await?;
        let stat = Stat {
            size_unknown: false,
            meta,
            ..Stat::from(info)
        };
        let ino = self
            .inodes
            .upsert(parent, name, &key, kind, stat, self.expiry());
        self.negative.remove(parent, name);
        self.dirs.invalidate(&dir.key);
        self.touch_dir(parent);
        self.inodes.remember(ino);
        Ok(self.entry(&self.node(ino)?))
    }
}
