//! How an open is answered: the core opens the handle, then the passthrough bookkeeping
//! decides whether the kernel reads (or writes) a local file for it or the daemon serves it.
//! Write opens are checked first, before the core may truncate anything (see
//! [`Passthrough::begin_write`]).

use super::passthrough::{Passthrough, Served, WriteGate};
use super::reply::errno;
use crate::fs::{Access, CloudFs, Opened};
use fuser::{FileHandle, FopenFlags, ReplyCreate, ReplyOpen};
use std::sync::Arc;

/// Answer an open of `ino` with `access`.
pub(super) async fn open(
    fs: Arc<CloudFs>,
    pt: Arc<Passthrough>,
    ino: u64,
    access: Access,
    reply: ReplyOpen,
) {
    let gate = match access {
        Access::Read | Access::Exec | Access::ReadTruncate => None,
        Access::Write { .. } => match pt.begin_write(ino) {
            Some(g) => Some(g),
            None => return reply.error(errno(&fs, "open", &fs.write_refused(ino))),
        },
    };
    let session = gate.as_ref().and_then(WriteGate::session);
    let o = match fs.open_joining(ino, access, session).await {
        Ok(o) => o,
        Err(e) => return reply.error(errno(&fs, "open", &e)),
    };
    let fh = FileHandle(o.fh);
    if o.direct_io {
        return reply.opened(fh, FopenFlags::FOPEN_DIRECT_IO);
    }
    let register = |f: &std::fs::File| reply.open_backing(f);
    let served = match gate {
        Some(gate) => writer_served(&fs, gate, &o, register).await,
        None => pt.open_reader(ino, o.fh, o.version.as_deref(), o.whole, register),
    };
    match served {
        Served::Passthrough(id) => {
            fs.served_by_kernel(ino);
            reply.opened_passthrough(fh, FopenFlags::empty(), &id)
        }
        Served::ByDaemon if o.keep_cache => reply.opened(fh, FopenFlags::FOPEN_KEEP_CACHE),
        Served::ByDaemon => reply.opened(fh, FopenFlags::empty()),
        Served::Busy => {
            fs.abandon_write(o.fh).await;
            reply.error(errno(&fs, "open", &fs.write_refused(ino)))
        }
    }
}

/// Answer a create of `name` in `parent` (see [`CloudFs::create`]).
pub(super) async fn create(
    fs: Arc<CloudFs>,
    pt: Arc<Passthrough>,
    parent: u64,
    name: &str,
    meta: crate::backend::PosixMeta,
    reply: ReplyCreate,
) {
    let (e, o) = match fs.create(parent, name, meta).await {
        Ok(created) => created,
        Err(e) => return reply.error(errno(&fs, "create", &e)),
    };
    let (ino, fh, attr) = (
        e.attr.ino,
        FileHandle(o.fh),
        super::reply::file_attr(&e.attr),
    );
    // A new inode: nothing else has it open, so the gate opens.
    let Some(gate) = pt.begin_write(ino) else {
        fs.abandon_write(o.fh).await;
        return reply.error(errno(&fs, "create", &fs.write_refused(ino)));
    };
    let served = writer_served(&fs, gate, &o, |f| reply.open_backing(f)).await;
    let generation = fuser::Generation(0);
    match served {
        Served::Passthrough(id) => reply.created_passthrough(
            &e.entry_ttl,
            &attr,
            generation,
            fh,
            FopenFlags::empty(),
            &id,
        ),
        _ => reply.created(&e.entry_ttl, &attr, generation, fh, FopenFlags::empty()),
    }
}

/// How write open `o` is served: by the kernel writing its session's staging file when the
/// core offered it fresh and nothing else holds the inode (the core is told first, so it never
/// misses a write), joining where the kernel already writes it, else by the daemon.
async fn writer_served(
    fs: &CloudFs,
    gate: WriteGate,
    o: &Opened,
    register: impl FnOnce(&std::fs::File) -> std::io::Result<fuser::BackingId>,
) -> Served {
    let fresh = o.staging.as_ref().is_some_and(|s| s.fresh);
    let start = fresh && gate.would_back() && fs.write_by_kernel(o.fh).await.is_ok();
    let file = o.staging.as_ref().map(|s| s.file.clone());
    gate.serve(o.fh, file, start, register)
}
