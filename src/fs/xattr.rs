//! Extended attributes and POSIX ACLs, stored with each object as s3fs stores them (one
//! `xattr` metadata value: [`crate::backend::xattr`]), so that both tools read each other's.
//!
//! Which names: `user.*` and `trusted.*`; with `-o acl`, also `system.posix_acl_access` and
//! `system.posix_acl_default`, which the kernel reads, caches and enforces. `security.*` is
//! not stored (labels come from the mount's `context=`): it answers ENOTSUP, without a
//! request, and tools such as `ls` then stop asking for the whole mount. A change goes
//! through [`CloudFs::set_attrs`], so it moves ctime and is stored onto the object without
//! its content where the store can. Reading needs the object's metadata: a file known only
//! from a listing is HEADed once.

use super::{CloudFs, FsError, FsResult};
use crate::backend::xattr::Xattrs;
use crate::backend::PosixMeta;

/// Name of the access ACL attribute.
pub const ACL_ACCESS: &str = "system.posix_acl_access";
/// Name of the default ACL attribute (directories).
pub const ACL_DEFAULT: &str = "system.posix_acl_default";

/// How `setxattr` treats an existing attribute (its `flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetMode {
    /// Create or replace.
    Any,
    /// `XATTR_CREATE`: fail with EEXIST if it exists.
    Create,
    /// `XATTR_REPLACE`: fail with ENODATA if it does not.
    Replace,
}

impl SetMode {
    /// From `setxattr`'s flags.
    pub fn from_flags(flags: i32) -> SetMode {
        if flags & libc::XATTR_CREATE != 0 {
            SetMode::Create
        } else if flags & libc::XATTR_REPLACE != 0 {
            SetMode::Replace
        } else {
            SetMode::Any
        }
    }
}

impl CloudFs {
    /// Whether this mount keeps attribute `name`; the reason when it does not. Answers at
    /// once: the kernel asks for `security.capability` before every write(2), and `ls` for
    /// `security.selinux` and the ACLs.
    pub fn stored_name(&self, name: &str) -> FsResult<()> {
        let acl = name == ACL_ACCESS || name == ACL_DEFAULT;
        if name.starts_with("user.") || name.starts_with("trusted.") || (acl && self.cfg.acl) {
            return Ok(());
        }
        Err(FsError::Unsupported(if acl {
            "POSIX ACLs are off; mount with -o acl to store them".to_string()
        } else {
            format!("extended attribute {name:?}: only user.* and trusted.* are stored")
        }))
    }

    /// The extended attributes of `ino`.
    async fn xattrs_of(&self, ino: u64) -> FsResult<Xattrs> {
        let node = self.node_with_meta(ino).await?;
        Ok(node.stat.meta.xattrs.unwrap_or_default())
    }

    /// The value of attribute `name` of `ino`.
    pub async fn getxattr(&self, ino: u64, name: &str) -> FsResult<Vec<u8>> {
        self.stored_name(name)?;
        self.xattrs_of(ino)
            .await?
            .remove(name)
            .ok_or(FsError::NoAttribute)
    }

    /// The names of `ino`'s attributes, each followed by a NUL byte (what `listxattr` returns).
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        let mut out = Vec::new();
        for name in self.xattrs_of(ino).await?.into_keys() {
            if self.stored_name(&name).is_ok() {
                out.extend_from_slice(name.as_bytes());
                out.push(0);
            }
        }
        Ok(out)
    }

    /// Set attribute `name` of `ino` to `value`.
    pub async fn setxattr(
        &self,
        ino: u64,
        name: &str,
        value: &[u8],
        mode: SetMode,
    ) -> FsResult<()> {
        self.stored_name(name)?;
        self.writable()?;
        let mut attrs = self.xattrs_of(ino).await?;
        match (mode, attrs.contains_key(name)) {
            (SetMode::Create, true) => return Err(FsError::Exists),
            (SetMode::Replace, false) => return Err(FsError::NoAttribute),
            _ => {}
        }
        // Alone, it must fit the store's metadata (else E2BIG); with the rest, too (ENOSPC).
        let alone = Xattrs::from([(name.to_string(), value.to_vec())]);
        if !self.backend.metadata_fits(&with_xattrs(alone).to_pairs()) {
            return Err(FsError::AttributeTooBig(format!(
                "{name}: {} bytes do not fit the metadata {} keeps per object",
                value.len(),
                self.backend.describe()
            )));
        }
        attrs.insert(name.to_string(), value.to_vec());
        self.set_xattrs(ino, attrs).await
    }

    /// Remove attribute `name` of `ino`.
    pub async fn removexattr(&self, ino: u64, name: &str) -> FsResult<()> {
        self.stored_name(name)?;
        self.writable()?;
        let mut attrs = self.xattrs_of(ino).await?;
        if attrs.remove(name).is_none() {
            return Err(FsError::NoAttribute);
        }
        self.set_xattrs(ino, attrs).await
    }

    /// Store `attrs` as all of `ino`'s attributes, if its metadata still fits the store.
    async fn set_xattrs(&self, ino: u64, attrs: Xattrs) -> FsResult<()> {
        // Else the change would look stored and vanish with the next read of the object.
        if !self.backend.stores_metadata() {
            return Err(FsError::Unsupported(format!(
                "extended attributes are stored as object metadata, which {} cannot keep",
                self.backend.describe()
            )));
        }
        let node = self.node_with_meta(ino).await?;
        let mut meta = node.stat.meta.merged(&with_xattrs(attrs.clone()));
        // With the times the change stores.
        meta.ctime = Some(std::time::SystemTime::now());
        meta.mtime = meta.mtime.or(Some(node.stat.mtime));
        if !self.backend.metadata_fits(&meta.to_pairs()) {
            return Err(FsError::MetadataFull(format!(
                "{}: its attributes and extended attributes do not fit the metadata {} keeps \
                 per object",
                node.key,
                self.backend.describe()
            )));
        }
        self.set_attrs(ino, with_xattrs(attrs)).await
    }
}

/// A change of the extended attributes only.
fn with_xattrs(attrs: Xattrs) -> PosixMeta {
    PosixMeta {
        xattrs: Some(attrs),
        ..PosixMeta::default()
    }
}
