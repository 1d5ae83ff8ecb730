//! The thin FUSE adapter: one short method per operation. Each one opens a span, moves the
//! reply into a task on the async runtime, calls one [`CloudFs`] method and answers with the
//! result or its errno. No filesystem logic lives here.

mod passthrough;
mod session;

pub use passthrough::{Passthrough, Served};
pub use session::{mount, tune_read_ahead, MountHandle, KERNEL_READ_AHEAD_KB};

use crate::fs::{Attr, CloudFs, DirReplier, FsError, Kind};
use fuser::{
    BsdFileFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, InitFlags, KernelConfig, LockOwner, OpenAccMode, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen,
    ReplyStatfs, ReplyXattr, Request, TimeOrNow,
};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::runtime::Handle;
use tracing::Instrument;

/// Largest read the kernel sends at once (and its read-ahead), in bytes.
const MAX_READAHEAD: u32 = 1 << 20;

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

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: if a.kind == Kind::Dir { 2 } else { 1 },
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
    }
}

/// Log an error at its level and turn it into the errno to reply with.
fn errno(op: &str, e: &FsError) -> Errno {
    if e.is_expected() {
        tracing::debug!(op, error = %e, "failed");
    } else {
        tracing::warn!(op, error = %e, "failed");
    }
    Errno::from_i32(e.errno())
}

/// Name bytes as UTF-8; object keys are UTF-8, so other names cannot exist.
fn utf8(name: &OsStr) -> Option<String> {
    name.to_str().map(str::to_string)
}

struct PlusReplier(ReplyDirectoryPlus, Duration);

impl DirReplier for PlusReplier {
    fn add(&mut self, name: &str, attr: &Attr, offset: u64) -> bool {
        self.0.add(
            INodeNo(attr.ino),
            offset,
            name,
            &self.1,
            &file_attr(attr),
            Generation(0),
        )
    }
}

struct PlainReplier(ReplyDirectory);

impl DirReplier for PlainReplier {
    fn add(&mut self, name: &str, attr: &Attr, offset: u64) -> bool {
        self.0
            .add(INodeNo(attr.ino), offset, file_type(attr.kind), name)
    }
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Always readdirplus: one LIST answers `ls -l` with no lookup per entry.
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS) {
            tracing::info!(?missing, "kernel lacks readdirplus; plain readdir is used");
        }
        let _ = config.set_max_readahead(MAX_READAHEAD);
        if self.passthrough.enabled() {
            // Depth 1: our backing files live on a plain filesystem.
            let ok = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if !ok {
                tracing::info!("kernel lacks FUSE passthrough (Linux 6.9 or later); fully cached files are served by the daemon");
                self.passthrough.disable();
            }
        }
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
                match fs.lookup(parent.0, &name).await {
                    Ok(e) => reply.entry_with_ttls(
                        &e.attr_ttl,
                        &e.entry_ttl,
                        &file_attr(&e.attr),
                        Generation(0),
                    ),
                    Err(e) => reply.error(errno("lookup", &e)),
                }
            }
            .instrument(span),
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
                    Err(e) => reply.error(errno("getattr", &e)),
                }
            }
            .instrument(span),
        );
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("open", req = req.unique().0, ino = ino.0),
        );
        let write = flags.acc_mode() != OpenAccMode::O_RDONLY;
        let pt = self.passthrough.clone();
        self.rt.spawn(
            async move {
                match fs.open(ino.0, write).await {
                    Ok(o) => {
                        let fh = FileHandle(o.fh);
                        match pt.open(ino.0, o.fh, o.whole, |f| reply.open_backing(f)) {
                            Served::Passthrough(id) => {
                                fs.served_by_kernel(ino.0);
                                reply.opened_passthrough(fh, FopenFlags::empty(), &id)
                            }
                            Served::ByDaemon if o.keep_cache => {
                                reply.opened(fh, FopenFlags::FOPEN_KEEP_CACHE)
                            }
                            Served::ByDaemon => reply.opened(fh, FopenFlags::empty()),
                        }
                    }
                    Err(e) => reply.error(errno("open", &e)),
                }
            }
            .instrument(span),
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
                    Err(e) => reply.error(errno("read", &e)),
                }
            }
            .instrument(span),
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
        self.fs.release(fh.0);
        reply.ok();
    }

    // Namespace and metadata changes: this version is read-only (writes come with the write
    // path), so they answer EROFS like a read-only mount instead of ENOSYS.
    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(errno("setattr", &FsError::ReadOnly));
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno("mknod", &FsError::ReadOnly));
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno("mkdir", &FsError::ReadOnly));
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno("unlink", &FsError::ReadOnly));
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno("rmdir", &FsError::ReadOnly));
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(errno("symlink", &FsError::ReadOnly));
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(errno("rename", &FsError::ReadOnly));
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(errno("create", &FsError::ReadOnly));
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing is buffered for writing yet, so a close has nothing to report.
        reply.ok();
    }

    // No extended attributes. ENOSYS (not ENODATA) makes the kernel stop asking for the rest of
    // the mount's life: `ls -l` otherwise sends two getxattr per entry (ACL and SELinux probes),
    // 20,000 requests for a 10,000-entry directory.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, _size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
            Err(e) => reply.error(errno("opendir", &e)),
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
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("readdir", req = req.unique().0, ino = ino.0, offset),
        );
        self.rt.spawn(
            async move {
                let mut r = PlainReplier(reply);
                match fs.readdir(fh.0, offset, false, &mut r).await {
                    Ok(()) => r.0.ok(),
                    Err(e) => r.0.error(errno("readdir", &e)),
                }
            }
            .instrument(span),
        );
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectoryPlus,
    ) {
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("readdirplus", req = req.unique().0, ino = ino.0, offset),
        );
        self.rt.spawn(
            async move {
                let mut r = PlusReplier(reply, fs.entry_ttl());
                match fs.readdir(fh.0, offset, true, &mut r).await {
                    Ok(()) => r.0.ok(),
                    Err(e) => r.0.error(errno("readdirplus", &e)),
                }
            }
            .instrument(span),
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

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.bsize,
        );
    }
}
