//! Attributes as the core hands them out (no `fuser` types), and how they are derived.

use crate::backend::PosixMeta;
use crate::config::MountConfig;
use std::time::{Duration, SystemTime};

/// File, directory, symbolic link or special file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (an object).
    File,
    /// A directory (a common prefix or a `dir/` marker).
    Dir,
    /// A symbolic link: an object whose content is the target and whose stored `mode` has the
    /// `S_IFLNK` type bits (how s3fs stores one).
    Symlink,
    /// A named pipe: an empty object whose stored `mode` has the `S_IFIFO` type bits (how
    /// s3fs stores what `mkfifo` makes). The kernel serves its opens, reads and writes.
    Fifo,
    /// A socket file, stored like a FIFO with `S_IFSOCK`.
    Socket,
    /// A character device file, stored like a FIFO with `S_IFCHR` and its device number.
    CharDevice,
    /// A block device file, stored like a FIFO with `S_IFBLK` and its device number.
    BlockDevice,
}

impl Kind {
    /// The kind of an object with stored attributes `meta`: what the type bits of its mode
    /// say, a regular file when it has none (or a directory's, which an object cannot be).
    pub fn of_object(meta: &PosixMeta) -> Kind {
        match meta.mode.map(|m| m & libc::S_IFMT) {
            Some(libc::S_IFLNK) => Kind::Symlink,
            Some(libc::S_IFIFO) => Kind::Fifo,
            Some(libc::S_IFSOCK) => Kind::Socket,
            Some(libc::S_IFCHR) => Kind::CharDevice,
            Some(libc::S_IFBLK) => Kind::BlockDevice,
            _ => Kind::File,
        }
    }

    /// The `st_mode` type bits of this kind.
    pub fn type_bits(self) -> u32 {
        match self {
            Kind::File => libc::S_IFREG,
            Kind::Dir => libc::S_IFDIR,
            Kind::Symlink => libc::S_IFLNK,
            Kind::Fifo => libc::S_IFIFO,
            Kind::Socket => libc::S_IFSOCK,
            Kind::CharDevice => libc::S_IFCHR,
            Kind::BlockDevice => libc::S_IFBLK,
        }
    }

    /// A FIFO, socket or device file: an empty object that only its metadata makes special,
    /// never opened through the mount (the kernel serves it).
    pub fn is_special(self) -> bool {
        matches!(
            self,
            Kind::Fifo | Kind::Socket | Kind::CharDevice | Kind::BlockDevice
        )
    }
}

/// What the store says about an object or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time.
    pub mtime: SystemTime,
    /// Entity tag of the content (files only).
    pub etag: Option<String>,
    /// POSIX attributes stored with the object, or set through the mount.
    pub meta: PosixMeta,
    /// The size is unknown until read (see [`crate::backend::ObjectInfo::size_unknown`]).
    pub size_unknown: bool,
}

impl From<crate::backend::ObjectInfo> for Stat {
    fn from(o: crate::backend::ObjectInfo) -> Self {
        Stat {
            size_unknown: o.size_unknown,
            size: o.size,
            mtime: o.mtime,
            etag: o.etag,
            meta: o.meta,
        }
    }
}

/// Attributes of one inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// File, directory or symbolic link.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification (and access) time.
    pub mtime: SystemTime,
    /// Status change time.
    pub ctime: SystemTime,
    /// Number of names: 2 for a directory, 1 for others, 0 once unlinked while still open.
    pub nlink: u32,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number of a device file (0 for others).
    pub rdev: u32,
}

/// A name resolved to an inode, with how long the kernel may trust it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The inode's attributes.
    pub attr: Attr,
    /// How long the kernel may keep the name → inode mapping.
    pub entry_ttl: Duration,
    /// How long the kernel may keep the attributes.
    pub attr_ttl: Duration,
}

/// Owner, modes and times of inodes: from the object's POSIX metadata where it has some
/// (s3fs's `mode`, `uid`, `gid`, `mtime`), bounded by the mount options as s3fs bounds them
/// (docs/permissions.md): `uid=`/`gid=` replace the stored owner, `umask=` masks stored modes
/// too, `file_mode=`/`dir_mode=` replace them; objects without metadata get the defaults.
#[derive(Debug, Clone)]
pub struct AttrPolicy {
    /// The owner without `uid=`/`gid=` and without a stored one: the mounting user.
    uid: u32,
    gid: u32,
    /// `uid=`/`gid=`: every inode's owner.
    force_uid: Option<u32>,
    force_gid: Option<u32>,
    /// Modes of inodes without a stored mode.
    file_perm: u16,
    dir_perm: u16,
    /// `file_mode=`/`dir_mode=`: every file's or directory's mode.
    force_file: Option<u16>,
    force_dir: Option<u16>,
    /// `umask=`: bits cleared from stored modes.
    umask: u16,
}

impl AttrPolicy {
    /// From the mount options; owner defaults to the mounting user.
    pub fn new(cfg: &MountConfig) -> Self {
        let perm = |m: Option<u32>| m.map(|m| (m & 0o7777) as u16);
        AttrPolicy {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            force_uid: cfg.uid,
            force_gid: cfg.gid,
            file_perm: cfg.file_perm(),
            dir_perm: cfg.dir_perm(),
            force_file: perm(cfg.file_mode),
            force_dir: perm(cfg.dir_mode),
            umask: (cfg.umask.unwrap_or(0) & 0o7777) as u16,
        }
    }

    /// The permission bits shown for `kind` with stored mode `stored`.
    fn perm(&self, kind: Kind, stored: Option<u32>) -> u16 {
        let (forced, default) = match kind {
            Kind::Dir => (self.force_dir, self.dir_perm),
            Kind::Symlink => return 0o777,
            // Special files are files to `file_mode=` and the defaults, as in s3fs.
            _ => (self.force_file, self.file_perm),
        };
        match (forced, stored) {
            (Some(p), _) => p,
            (None, Some(mode)) => (mode & 0o7777) as u16 & !self.umask,
            (None, None) => default,
        }
    }

    /// The attributes of inode `ino`.
    pub fn attr(&self, ino: u64, kind: Kind, stat: &Stat) -> Attr {
        let m = &stat.meta;
        let mtime = m.mtime.unwrap_or(stat.mtime);
        Attr {
            ino,
            kind,
            size: if kind == Kind::Dir { 0 } else { stat.size },
            mtime,
            ctime: m.ctime.unwrap_or(mtime),
            nlink: if kind == Kind::Dir { 2 } else { 1 },
            perm: self.perm(kind, m.mode),
            uid: self.force_uid.or(m.uid).unwrap_or(self.uid),
            gid: self.force_gid.or(m.gid).unwrap_or(self.gid),
            rdev: match kind {
                Kind::CharDevice | Kind::BlockDevice => {
                    m.rdev.and_then(|r| u32::try_from(r).ok()).unwrap_or(0)
                }
                _ => 0,
            },
        }
    }
}
