//! The thin FUSE adapter: one short method per operation. Each one opens a span, moves the
//! reply into a task on the async runtime, calls one [`CloudFs`] method and answers with the
//! result or its errno. No filesystem logic lives here.

mod init;
mod open;
mod passthrough;
mod reply;
mod session;
mod xattr;

pub use passthrough::{Passthrough, Served};
pub use session::{mount, tune_read_ahead, KernelCache, MountHandle, KERNEL_READ_AHEAD_KB};

use crate::backend::PosixMeta;
use crate::fs::{Access, CloudFs};
use fuser::{
    BsdFileFlags, Errno, FileHandle, Filesystem, FopenFlags, INodeNo, KernelConfig, LockOwner,
    OpenAccMode, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr,
    Request, TimeOrNow, WriteFlags,
};
use reply::{
    creator, empty, entry, errno, file_attr, utf8, PlainReplier, PlusReplier, Replier, Timed,
};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::runtime::Handle;
use tracing::Instrument;

/// The kernel's `__FMODE_EXEC` open flag: the open of a file to execute it (FUSE passes the
/// open's flags as they are; no `O_` flag uses this bit).
const FMODE_EXEC: i32 = 0x20;

/// `fuser::Filesystem` over a [`CloudFs`].
#[derive(Debug)]
pub struct FuseAdapter {
    fs: Arc<CloudFs>,
    rt: Handle,
    passthrough: Arc<Passthrough>,
}

impl FuseAdapter {
    /// Serve `fs`, running every operation on the runtime behind `rt`; `passthrough` lets the
    /// kernel read fully cached files itself where it can.
    pub fn new(fs: Arc<CloudFs>, rt: Handle, passthrough: bool) -> Self {
        FuseAdapter {
            fs,
            rt,
            passthrough: Arc::new(Passthrough::new(passthrough)),
        }
    }
}

impl FuseAdapter {
    /// `readdir` and `readdirplus`: entries from `offset` of directory handle `fh` into `r`.
    fn list_dir<R: Replier>(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut r: R,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!(
                "readdir",
                op = R::OP,
                req = req.unique().0,
                ino = ino.0,
                offset
            ),
        );
        self.rt.spawn(
            async move {
                match fs.readdir(fh.0, offset, R::PLUS, &mut r).await {
                    Ok(()) => r.ok(),
                    Err(e) => r.error(errno(&fs, R::OP, &e)),
                }
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), R::OP),
        );
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        init::negotiate(config, self.fs.xattr_support().1, &self.passthrough);
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("lookup", req = req.unique().0, parent = parent.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::ENOENT);
        };
        self.rt.spawn(
            async move {
                let r = fs.lookup(parent.0, &name).await;
                entry(&fs, reply, "lookup", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "lookup"),
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("getattr", req = req.unique().0, ino = ino.0),
        );
        self.rt.spawn(
            async move {
                match fs.getattr(ino.0).await {
                    Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
                    Err(e) => reply.error(errno(&fs, "getattr", &e)),
                }
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "getattr"),
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let span = tracing::debug_span!("open", req = req.unique().0, ino = ino.0);
        let truncate = flags.0 & libc::O_TRUNC != 0;
        let access = match flags.acc_mode() {
            OpenAccMode::O_RDONLY if truncate => Access::ReadTruncate,
            OpenAccMode::O_RDONLY if flags.0 & FMODE_EXEC != 0 => Access::Exec,
            OpenAccMode::O_RDONLY => Access::Read,
            _ => Access::Write { truncate },
        };
        let (fs, pt) = (self.fs.clone(), self.passthrough.clone());
        self.rt.spawn(
            open::open(fs, pt, ino.0, access, reply)
                .instrument(span)
                .timed(self.fs.metrics().clone(), "open"),
        );
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("read", req = req.unique().0, ino = ino.0, offset, size),
        );
        self.rt.spawn(
            async move {
                match fs.read(fh.0, offset, size).await {
                    Ok(data) => reply.data(&data),
                    Err(e) => reply.error(errno(&fs, "read", &e)),
                }
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "read"),
        );
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.passthrough.release(ino.0, fh.0);
        let fs = self.fs.clone();
        self.rt.spawn(async move { fs.release(fh.0).await });
        reply.ok();
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        // Size, mode, owner and mtime are stored; atime is not kept.
        let change = PosixMeta {
            mode,
            uid,
            gid,
            rdev: None,
            mtime: mtime.map(|t| match t {
                TimeOrNow::SpecificTime(t) => t,
                TimeOrNow::Now => SystemTime::now(),
            }),
            // The core moves ctime with every change.
            ctime: None,
            xattrs: None,
        };
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("setattr", req = req.unique().0, ino = ino.0, ?size),
        );
        self.rt.spawn(
            async move {
                let mut done = match size {
                    Some(n) => fs.set_size(ino.0, n).await,
                    None => Ok(()),
                };
                if done.is_ok() {
                    done = fs.set_attrs(ino.0, change).await;
                }
                match done {
                    Ok(()) => match fs.getattr(ino.0).await {
                        Ok((a, ttl)) => reply.attr(&ttl, &file_attr(&a)),
                        Err(e) => reply.error(errno(&fs, "setattr", &e)),
                    },
                    Err(e) => reply.error(errno(&fs, "setattr", &e)),
                }
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "setattr"),
        );
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let meta = creator(req, (mode & libc::S_IFMT) | (mode & !umask & 0o7777));
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("mknod", req = req.unique().0, parent = parent.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::EINVAL);
        };
        self.rt.spawn(
            async move {
                let r = fs.mknod(parent.0, &name, meta, u64::from(rdev)).await;
                entry(&fs, reply, "mknod", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "mknod"),
        );
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let meta = creator(req, libc::S_IFDIR | (mode & !umask & 0o7777));
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("mkdir", req = req.unique().0, parent = parent.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::EINVAL);
        };
        self.rt.spawn(
            async move {
                let r = fs.mkdir(parent.0, &name, meta).await;
                entry(&fs, reply, "mkdir", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "mkdir"),
        );
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("unlink", req = req.unique().0, parent = parent.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::ENOENT);
        };
        self.rt.spawn(
            async move { empty(&fs, reply, "unlink", fs.unlink(parent.0, &name).await) }
                .instrument(span)
                .timed(self.fs.metrics().clone(), "unlink"),
        );
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("rmdir", req = req.unique().0, parent = parent.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::ENOENT);
        };
        self.rt.spawn(
            async move { empty(&fs, reply, "rmdir", fs.rmdir(parent.0, &name).await) }
                .instrument(span)
                .timed(self.fs.metrics().clone(), "rmdir"),
        );
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let meta = creator(req, libc::S_IFLNK | 0o777);
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("symlink", req = req.unique().0, parent = parent.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::EINVAL);
        };
        let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
        self.rt.spawn(
            async move {
                let r = fs.symlink(parent.0, &name, &target, meta).await;
                entry(&fs, reply, "symlink", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "symlink"),
        );
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("readlink", req = req.unique().0, ino = ino.0),
        );
        self.rt.spawn(
            async move {
                match fs.readlink(ino.0).await {
                    Ok(target) => reply.data(&target),
                    Err(e) => reply.error(errno(&fs, "readlink", &e)),
                }
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "readlink"),
        );
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!(
                "rename",
                req = req.unique().0,
                parent = parent.0,
                ?name,
                newparent = newparent.0,
                ?newname
            ),
        );
        let (Some(name), Some(newname)) = (utf8(name), utf8(newname)) else {
            return reply.error(Errno::ENOENT);
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            return reply.error(Errno::EINVAL);
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        self.rt.spawn(
            async move {
                let r = fs
                    .rename(parent.0, &name, newparent.0, &newname, noreplace)
                    .await;
                empty(&fs, reply, "rename", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "rename"),
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let meta = creator(req, libc::S_IFREG | (mode & !umask & 0o7777));
        let span = tracing::debug_span!("create", req = req.unique().0, parent = parent.0, ?name);
        let Some(name) = utf8(name) else {
            return reply.error(Errno::EINVAL);
        };
        let (fs, pt) = (self.fs.clone(), self.passthrough.clone());
        self.rt.spawn(
            async move { open::create(fs, pt, parent.0, &name, meta, reply).await }
                .instrument(span)
                .timed(self.fs.metrics().clone(), "create"),
        );
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!(
                "write",
                req = req.unique().0,
                ino = ino.0,
                offset,
                len = data.len()
            ),
        );
        let data = bytes::Bytes::copy_from_slice(data);
        self.rt.spawn(
            async move {
                match fs.write(fh.0, offset, data).await {
                    Ok(n) => reply.written(n),
                    Err(e) => reply.error(errno(&fs, "write", &e)),
                }
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "write"),
        );
    }

    fn flush(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("flush", req = req.unique().0, ino = ino.0),
        );
        self.rt.spawn(
            async move { empty(&fs, reply, "flush", fs.flush(fh.0).await) }
                .instrument(span)
                .timed(self.fs.metrics().clone(), "flush"),
        );
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("fsync", req = req.unique().0, ino = ino.0),
        );
        self.rt.spawn(
            async move { empty(&fs, reply, "fsync", fs.fsync(fh.0).await) }
                .instrument(span)
                .timed(self.fs.metrics().clone(), "fsync"),
        );
    }

    fn getxattr(&self, req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.get_xattr(req, ino, name, size, reply)
    }

    fn listxattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.list_xattr(req, ino, size, reply)
    }

    fn setxattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        position: u32,
        reply: ReplyEmpty,
    ) {
        self.set_xattr(req, ino, name, value, flags, position, reply)
    }

    fn removexattr(&self, req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove_xattr(req, ino, name, reply)
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno(&self.fs, "opendir", &e)),
        }
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        self.list_dir(req, ino, fh, offset, PlainReplier(reply));
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        self.list_dir(
            req,
            ino,
            fh,
            offset,
            PlusReplier(reply, self.fs.entry_ttl()),
        );
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!(
                "fallocate",
                req = req.unique().0,
                ino = ino.0,
                offset,
                length,
                mode
            ),
        );
        self.rt.spawn(
            async move {
                let r = fs.fallocate(fh.0, offset, length, mode).await;
                empty(&fs, reply, "fallocate", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "fallocate"),
        );
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
        );
    }
}
