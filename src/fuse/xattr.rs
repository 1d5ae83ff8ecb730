//! Extended attributes: the adapter's `getxattr`, `listxattr`, `setxattr` and `removexattr`
//! (the core decides what is stored: [`crate::fs::xattr`]).

use super::reply::Timed;
use super::{empty, errno, utf8, FuseAdapter};
use crate::fs::xattr::SetMode;
use crate::fs::{CloudFs, FsResult};
use fuser::{Errno, INodeNo, ReplyEmpty, ReplyXattr, Request};
use std::ffi::OsStr;
use tracing::Instrument;

impl FuseAdapter {
    // With `-o xattr=false`, ENOSYS (not ENODATA) makes the kernel stop asking for the rest of
    // the mount's life. Otherwise `security.*` (ls asks for SELinux labels) answers ENOTSUP at
    // once in the core, after which ls stops asking for this mount.
    pub(super) fn get_xattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        size: u32,
        reply: ReplyXattr,
    ) {
        if !self.fs.xattr_support().0 {
            return reply.error(Errno::ENOSYS);
        }
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("getxattr", req = req.unique().0, ino = ino.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::ENODATA);
        };
        // Names never stored (security.capability before every write) answer here, at once.
        if let Err(e) = fs.stored_name(&name) {
            return reply.error(Errno::from_i32(e.errno()));
        }
        self.rt.spawn(
            async move {
                let r = fs.getxattr(ino.0, &name).await;
                xattr_reply(&fs, reply, "getxattr", size, r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "getxattr"),
        );
    }

    pub(super) fn list_xattr(&self, req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        if !self.fs.xattr_support().0 {
            return reply.error(Errno::ENOSYS);
        }
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("listxattr", req = req.unique().0, ino = ino.0),
        );
        self.rt.spawn(
            async move {
                let r = fs.listxattr(ino.0).await;
                xattr_reply(&fs, reply, "listxattr", size, r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "listxattr"),
        );
    }

    #[allow(clippy::too_many_arguments)] // fuser's setxattr
    pub(super) fn set_xattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        value: &[u8],
        flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        if !self.fs.xattr_support().0 {
            return reply.error(Errno::ENOSYS);
        }
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("setxattr", req = req.unique().0, ino = ino.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::EINVAL);
        };
        let (value, mode) = (value.to_vec(), SetMode::from_flags(flags));
        self.rt.spawn(
            async move {
                let r = fs.setxattr(ino.0, &name, &value, mode).await;
                empty(&fs, reply, "setxattr", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "setxattr"),
        );
    }

    pub(super) fn remove_xattr(
        &self,
        req: &Request,
        ino: INodeNo,
        name: &OsStr,
        reply: ReplyEmpty,
    ) {
        if !self.fs.xattr_support().0 {
            return reply.error(Errno::ENOSYS);
        }
        let (fs, span) = (
            self.fs.clone(),
            tracing::debug_span!("removexattr", req = req.unique().0, ino = ino.0, ?name),
        );
        let Some(name) = utf8(name) else {
            return reply.error(Errno::ENODATA);
        };
        self.rt.spawn(
            async move {
                let r = fs.removexattr(ino.0, &name).await;
                empty(&fs, reply, "removexattr", r)
            }
            .instrument(span)
            .timed(self.fs.metrics().clone(), "removexattr"),
        );
    }
}

/// Answer `getxattr`/`listxattr`: the size when asked with size 0, ERANGE when the data is
/// larger than `size`.
fn xattr_reply(fs: &CloudFs, reply: ReplyXattr, op: &str, size: u32, r: FsResult<Vec<u8>>) {
    match r {
        Ok(data) => match u32::try_from(data.len()) {
            Ok(n) if size == 0 => reply.size(n),
            Ok(n) if n <= size => reply.data(&data),
            _ => reply.error(Errno::ERANGE),
        },
        Err(e) => reply.error(errno(fs, op, &e)),
    }
}
