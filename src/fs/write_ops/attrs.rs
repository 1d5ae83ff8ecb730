//! Attribute changes (chmod, chown, utimens, setxattr): onto the session of a file open for
//! writing, or onto the stored object (a metadata-only copy where the store can, else the content
//! sent again), or onto a directory's marker.

use super::super::{CloudFs, FsError, FsResult, Kind, Node};
use crate::backend::{BackendError, PosixMeta};
use std::time::SystemTime;

impl CloudFs {
    /// Set mode, owner, mtime or extended attributes of `ino` (chmod, chown, utimens,
    /// setxattr); each also moves its ctime to now. A file's attributes go to the store with
    /// its content at the next upload when it is open for writing; else onto the stored
    /// object where the store can change metadata alone, or by uploading it again. A
    /// directory's go on its marker object, or stay in the mount where the store keeps no
    /// markers.
    pub async fn set_attrs(&self, ino: u64, change: PosixMeta) -> FsResult<()> {
        if change.is_empty() {
            return Ok(());
        }
        self.writable()?;
        // Joining counts a handle, so a session whose last handle is being released cannot be
        // retired under this change (it was then lost: made to a session nobody uploaded).
        let Some(w) = self.sessions.join(ino) else {
            let node = self.apply_attrs(ino, &change).await?;
            return self.store_attrs(&node).await;
        };
        let mut st = w.lock().await;
        // Under the session's lock: an upload of the last close has finished, and a writer
        // that opened meanwhile is counted (its writes wait for this lock). Other writers send
        // the change with what they close; alone, this is a complete operation.
        let alone = self.sessions.handles(ino) == 1;
        if alone && !st.dirty {
            // Its content is on the server: the change goes as for a closed file, made on the
            // inode once the session is gone (its end sets what it stored).
            drop(st);
            self.end_handle(ino).await;
            let node = self.apply_attrs(ino, &change).await?;
            return self.store_attrs(&node).await;
        }
        let result = match self.apply_attrs(ino, &change).await {
            Err(e) => Err(e),
            Ok(_) if !alone => {
                st.dirty = true;
                Ok(())
            }
            Ok(_) => {
                // Its content is not on the server yet (an upload failed): send both.
                st.dirty = true;
                st.unclosed = false;
                self.upload_locked(ino, &mut st).await
            }
        };
        drop(st);
        self.end_handle(ino).await;
        result
    }

    /// Set `change` on the inode of `ino` (with ctime now); its node as it is then.
    async fn apply_attrs(&self, ino: u64, change: &PosixMeta) -> FsResult<Node> {
        let node = self.node_with_meta(ino).await?;
        let mut stat = node.stat.clone();
        stat.meta = stat.meta.merged(&PosixMeta {
            // Keep the file type bits the object had (or a regular file's).
            mode: change.mode.map(|m| {
                let kind_bits = node.kind.type_bits();
                (stat.meta.mode.unwrap_or(kind_bits) & libc::S_IFMT) | (m & 0o7777)
            }),
            ctime: Some(SystemTime::now()),
            ..change.clone()
        });
        self.inodes.refresh(ino, stat, self.expiry());
        Ok(node)
    }

    /// Store the attributes the inode of `node` has now, for a file no session holds or a
    /// directory.
    async fn store_attrs(&self, node: &Node) -> FsResult<()> {
        let ino = node.ino;
        if node.unlinked {
            // fchmod of an unlinked file: its object is gone; storing would bring it back.
            return Ok(());
        }
        if node.kind == Kind::Dir {
            // Stored on the directory's marker object (made if there was none), as s3fs does;
            // where the store has no markers, kept in the mount only.
            if node.key.is_empty() || self.inodes.is_local(ino) {
                return Ok(());
            }
            return match self
                .backend
                .put_marker(&node.key, &self.meta_to_store(ino))
                .await
            {
                Ok(()) | Err(BackendError::Unsupported(_)) => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        if self.inodes.is_local(ino) {
            return Ok(());
        }
        if self.stored_meta_alone(node).await? {
            return Ok(());
        }
        // Closed, on a store that changes metadata only with the content: send it again.
        let w = self.stage(node, false).await?;
        let result = {
            let mut st = w.lock().await;
            st.dirty = true;
            self.upload_locked(ino, &mut st).await
        };
        self.end_handle(ino).await;
        result
    }

    /// Store the metadata of closed file `node` (as the inode has it now) without sending its
    /// content, where the store can; false where it cannot, or refused for this object (S3
    /// copies objects of at most 5 GiB onto themselves).
    async fn stored_meta_alone(&self, node: &Node) -> FsResult<bool> {
        let Some(etag) = node.stat.etag.as_deref() else {
            return Ok(false);
        };
        let meta = self.meta_to_store(node.ino);
        match self.backend.set_meta(&node.key, &meta, etag).await {
            Ok(new_etag) => {
                if let Some(mut now) = self.inodes.get(node.ino) {
                    now.stat.etag = new_etag.or(now.stat.etag);
                    self.inodes.refresh(node.ino, now.stat, self.expiry());
                }
                Ok(true)
            }
            Err(BackendError::Unsupported(_)) => Ok(false),
            Err(BackendError::Other(e)) => {
                tracing::debug!(key = %node.key, error = %e, "metadata change refused; the object is uploaded again");
                Ok(false)
            }
            Err(BackendError::Changed(_)) => {
                self.inodes.expire(node.ino);
                Err(FsError::Stale)
            }
            Err(e) => Err(e.into()),
        }
    }
}
