//! Changes made elsewhere, as a store's feed reports them ([`crate::backend::Backend::changes`]):
//! forget exactly the cached listings, attributes and missing names they touch, and say which
//! names and inodes the kernel must forget too.

use super::inode::ROOT_INO;
use super::{parent_key, CloudFs};

impl CloudFs {
    /// The inode of directory key `dir` (no trailing `/`; `""` is the root), if known.
    fn dir_ino(&self, dir: &str) -> Option<u64> {
        let mut ino = ROOT_INO;
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            ino = self.inodes.child(ino, part)?.ino;
        }
        Some(ino)
    }

    /// Forget what the mount keeps about `keys` (files, and directories ending in `/` or
    /// `""` whose listing changed). Returns `(inode, parent, name)` of each name the kernel
    /// must forget (inode 0 when the mount knows no inode for it: a new name).
    pub fn forget_changed(&self, keys: &[String]) -> Vec<(u64, u64, String)> {
        let mut kernel = Vec::new();
        for key in keys {
            let trimmed = key.trim_end_matches('/');
            let dir = key.is_empty() || key.ends_with('/');
            if dir {
                self.dirs.invalidate(key);
            }
            if trimmed.is_empty() {
                self.inodes.expire(ROOT_INO);
                continue;
            }
            let parent_dir = parent_key(trimmed);
            self.dirs.invalidate(&parent_dir);
            let Some(parent) = self.dir_ino(parent_dir.trim_end_matches('/')) else {
                continue;
            };
            self.inodes.expire(parent);
            let name = trimmed.rsplit('/').next().unwrap_or(trimmed).to_string();
            self.negative.remove(parent, &name);
            let ino = match self.inodes.child(parent, &name) {
                Some(n) => {
                    self.inodes.expire(n.ino);
                    n.ino
                }
                None => 0,
            };
            kernel.push((ino, parent, name));
        }
        kernel
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::memory::MemoryBackend;
    use crate::config::MountConfig;
    use crate::fs::{CloudFs, FsError, ROOT_INO};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_reported_change_shows_at_once_whatever_the_timeouts() {
        let b = Arc::new(MemoryBackend::new());
        b.insert("d/a", b"1".to_vec());
        let cfg = MountConfig {
            attr_timeout: Duration::from_secs(3600),
            entry_timeout: Duration::from_secs(3600),
            negative_timeout: Duration::from_secs(3600),
            dir_cache_timeout: Duration::from_secs(3600),
            ..Default::default()
        };
        let fs = CloudFs::new(b.clone(), &cfg);
        let d = fs.lookup(ROOT_INO, "d").await.unwrap().attr.ino;
        let a = fs.lookup(d, "a").await.unwrap().attr.ino;
        assert_eq!(fs.lookup(d, "new").await.unwrap_err(), FsError::NotFound);
        b.insert("d/a", b"22".to_vec());
        b.insert("d/new", b"n".to_vec());
        assert_eq!(fs.getattr(a).await.unwrap().0.size, 1, "cached until told");
        let kernel = fs.forget_changed(&["d/a".into(), "d/new".into(), "d/".into()]);
        assert_eq!(fs.getattr(a).await.unwrap().0.size, 2);
        assert!(
            fs.lookup(d, "new").await.is_ok(),
            "the missing name was forgotten"
        );
        assert_eq!(kernel.len(), 3);
        assert_eq!(kernel[0], (a, d, "a".to_string()));
        assert_eq!(kernel[1], (0, d, "new".to_string()));
    }
}
