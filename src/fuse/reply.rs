//! Turning the core's answers into FUSE replies: attributes, errno values (each failure logged
//! at its level), and directory entries.

use crate::backend::PosixMeta;
use crate::fs::{Attr, CloudFs, DirReplier, Entry, FsError, Kind};
use crate::metrics::Metrics;
use fuser::{
    Errno, FileAttr, FileType, Generation, INodeNo, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty,
    ReplyEntry, Request,
};
use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: 4096,
        flags: 0,
    }
}

pub(super) fn file_type(k: Kind) -> FileType {
    match k {
        Kind::File => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink => FileType::Symlink,
        Kind::Fifo => FileType::NamedPipe,
        Kind::Socket => FileType::Socket,
        Kind::CharDevice => FileType::CharDevice,
        Kind::BlockDevice => FileType::BlockDevice,
    }
}

/// Log an error at its level and turn it into the errno to reply with.
pub(super) fn errno(fs: &CloudFs, op: &str, e: &FsError) -> Errno {
    fs.note_error(op, e);
    fs.metrics().errno(e.errno());
    if e.is_expected() {
        tracing::debug!(op, error = %e, "failed");
    } else {
        tracing::warn!(op, error = %e, "failed");
    }
    Errno::from_i32(e.errno())
}

/// Futures of FUSE operations, timed into the mount's metrics.
pub(super) trait Timed: std::future::Future + Sized {
    /// This operation, its latency (from now until it answered) recorded as `op`.
    fn timed(
        self,
        metrics: Arc<Metrics>,
        op: &'static str,
    ) -> impl std::future::Future<Output = Self::Output> {
        let started = Instant::now();
        async move {
            let out = self.await;
            metrics.fuse.record(op, "", started.elapsed());
            out
        }
    }
}

impl<F: std::future::Future> Timed for F {}

/// The attributes of something `req`'s caller creates with `mode`.
pub(super) fn creator(req: &Request, mode: u32) -> PosixMeta {
    PosixMeta {
        mode: Some(mode),
        uid: Some(req.uid()),
        gid: Some(req.gid()),
        rdev: None,
        mtime: None,
        ctime: None,
        xattrs: None,
    }
}

/// Answer an operation without data.
pub(super) fn empty(fs: &CloudFs, reply: ReplyEmpty, op: &str, r: Result<(), FsError>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(fs, op, &e)),
    }
}

/// Answer an operation that resolves or makes a name.
pub(super) fn entry(fs: &CloudFs, reply: ReplyEntry, op: &str, r: Result<Entry, FsError>) {
    match r {
        Ok(e) => reply.entry_with_ttls(
            &e.attr_ttl,
            &e.entry_ttl,
            &file_attr(&e.attr),
            Generation(0),
        ),
        Err(e) => reply.error(errno(fs, op, &e)),
    }
}

pub(super) fn utf8(name: &OsStr) -> Option<String> {
    name.to_str().map(str::to_string)
}

/// Entries of a `readdirplus` reply, with the kernel's entry TTL.
pub(super) struct PlusReplier(pub(super) ReplyDirectoryPlus, pub(super) Duration);

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

/// Entries of a `readdir` reply.
pub(super) struct PlainReplier(pub(super) ReplyDirectory);

impl DirReplier for PlainReplier {
    fn add(&mut self, name: &str, attr: &Attr, offset: u64) -> bool {
        self.0
            .add(INodeNo(attr.ino), offset, file_type(attr.kind), name)
    }
}

/// A directory reply: entries, then the end or an error.
pub(super) trait Replier: DirReplier + Send + 'static {
    /// The operation (for spans and logs).
    const OP: &'static str;
    /// Whether entries carry attributes (`readdirplus`).
    const PLUS: bool;
    /// Send the entries added so far.
    fn ok(self);
    /// Fail the reply.
    fn error(self, e: Errno);
}

impl Replier for PlainReplier {
    const OP: &'static str = "readdir";
    const PLUS: bool = false;
    fn ok(self) {
        self.0.ok()
    }
    fn error(self, e: Errno) {
        self.0.error(e)
    }
}

impl Replier for PlusReplier {
    const OP: &'static str = "readdirplus";
    const PLUS: bool = true;
    fn ok(self) {
        self.0.ok()
    }
    fn error(self, e: Errno) {
        self.0.error(e)
    }
}
