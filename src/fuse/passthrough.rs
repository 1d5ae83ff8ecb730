//! FUSE passthrough bookkeeping: which inodes the kernel reads (or writes) straight from a
//! local file.
//!
//! The kernel runs each inode either in cached mode (reads and writes come to the daemon) or in
//! passthrough mode (they go to one backing file), and while an inode has a backing file it
//! refuses (with `EIO`) every open that is not a passthrough open of that same file, direct
//! I/O included. So an open joins the mode of the inode's open handles; with none open, it
//! uses passthrough when the core offers a file:
//! - a reader, the complete cache file of the version it reads. Later readers join it whatever
//!   version they were to read (the object changed on the server meanwhile: they read the one
//!   already open until every open of it has closed, logged); a writer cannot join a cache file
//!   and is refused with `EBUSY` (logged) until its readers close.
//! - a writer that starts the file's content empty (create, `O_TRUNC`), alone, its staging
//!   file: the kernel writes it without the daemon, which learns of the writes from the file
//!   (see `write::kernel`). Every later open of the inode, reader or writer, joins it.
//!
//! All opens of an inode in passthrough share one backing id; the id (and the cache pin of a
//! cached version) live until the last of those handles is released.
//!
//! When registering a backing file fails (no CAP_SYS_ADMIN, or the kernel refuses), passthrough
//! is turned off for the mount with one log line, and files are served by the daemon.

use crate::fs::WholeFile;
use fuser::BackingId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How one open is served.
#[derive(Debug)]
pub enum Served<Id = BackingId> {
    /// Reads and writes come to the daemon.
    ByDaemon,
    /// The kernel reads (and writes) this backing file.
    Passthrough(Arc<Id>),
    /// A write open of an inode the kernel reads from a cache file: the kernel allows no
    /// other kind of open next to it, so the open fails (`EBUSY`).
    Busy,
}

/// The file behind an inode in passthrough, held open as long as the inode is.
#[derive(Debug)]
enum Backing {
    /// A complete cached version (read only).
    Cached(WholeFile),
    /// A write session's staging file.
    Staging(Arc<std::fs::File>),
}

impl Backing {
    fn file(&self) -> &std::fs::File {
        match self {
            Backing::Cached(w) => &w.file,
            Backing::Staging(f) => f,
        }
    }
}

#[derive(Debug)]
struct Backed<Id> {
    id: Arc<Id>,
    /// The version (ETag) of the backing file.
    version: Option<String>,
    opens: u32,
    backing: Backing,
}

#[derive(Debug)]
struct State<Id> {
    enabled: bool,
    /// Whether passthrough for reads, and for writes, was logged.
    announced: (bool, bool),
    backed: HashMap<u64, Backed<Id>>,
    by_daemon: HashMap<u64, u32>,
    /// Passthrough handles and their inode.
    handles: HashMap<u64, u64>,
    /// Write opens between their check and their answer, by inode: readers meanwhile start no
    /// backing file there (the writer could not join it).
    pending_writers: HashMap<u64, u32>,
}

impl<Id> State<Id> {
    /// Open `fh` joins `ino`'s backing file (there is one).
    fn join(&mut self, ino: u64, fh: u64) -> Served<Id> {
        let Some(b) = self.backed.get_mut(&ino) else {
            return Served::Busy;
        };
        b.opens += 1;
        let id = b.id.clone();
        self.handles.insert(fh, ino);
        Served::Passthrough(id)
    }

    /// Open `fh` of `ino` (which has no backing file) starts passthrough with `backing`, or
    /// is served by the daemon (no file, passthrough off, or other opens by the daemon).
    fn start(
        &mut self,
        ino: u64,
        fh: u64,
        version: Option<&str>,
        backing: Option<Backing>,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> Served<Id> {
        let backing = match backing {
            Some(b) if self.enabled && !self.by_daemon.contains_key(&ino) => b,
            _ => {
                *self.by_daemon.entry(ino).or_insert(0) += 1;
                return Served::ByDaemon;
            }
        };
        match register(backing.file()) {
            Ok(id) => {
                match &backing {
                    Backing::Cached(_) if !self.announced.0 => {
                        self.announced.0 = true;
                        tracing::info!("FUSE passthrough in use: the kernel reads fully cached files straight from the cache");
                    }
                    Backing::Staging(_) if !self.announced.1 => {
                        self.announced.1 = true;
                        tracing::info!("FUSE passthrough for writes in use: files opened from empty are written by the kernel straight into their staging file");
                    }
                    _ => {}
                }
                let id = Arc::new(id);
                self.backed.insert(
                    ino,
                    Backed {
                        id: id.clone(),
                        version: version.map(str::to_string),
                        opens: 1,
                        backing,
                    },
                );
                self.handles.insert(fh, ino);
                Served::Passthrough(id)
            }
            Err(e) => {
                self.enabled = false;
                tracing::info!(error = %e, "FUSE passthrough unavailable (it needs Linux 6.9 or later and a daemon running as root); files are read and written through the daemon");
                *self.by_daemon.entry(ino).or_insert(0) += 1;
                Served::ByDaemon
            }
        }
    }
}

/// A write open between its check ([`Passthrough::begin_write`]) and its answer.
#[derive(Debug)]
pub struct WriteGate<Id = BackingId> {
    pt: Arc<Passthrough<Id>>,
    ino: u64,
    session: Option<Arc<std::fs::File>>,
}

impl<Id> WriteGate<Id> {
    /// The staging file the kernel writes for `ino` now: the open may only join the write
    /// session of that file (any other would write a file the kernel does not use).
    pub fn session(&self) -> Option<Arc<std::fs::File>> {
        self.session.clone()
    }

    /// Whether a fresh staging file would be backed now (nothing else open in another mode).
    pub fn would_back(&self) -> bool {
        let s = self.pt.lock();
        s.enabled && !s.backed.contains_key(&self.ino) && !s.by_daemon.contains_key(&self.ino)
    }

    /// Answer write open `fh` (see [`Passthrough::open_writer`]).
    pub fn serve(
        self,
        fh: u64,
        staging: Option<Arc<std::fs::File>>,
        start: bool,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> Served<Id> {
        self.pt.open_writer(self.ino, fh, staging, start, register)
    }
}

impl<Id> Drop for WriteGate<Id> {
    fn drop(&mut self) {
        let mut s = self.pt.lock();
        if let Some(n) = s.pending_writers.get_mut(&self.ino) {
            *n -= 1;
            if *n == 0 {
                s.pending_writers.remove(&self.ino);
            }
        }
    }
}

/// The passthrough state of one mount (`Id` is the kernel's backing id; tests use a stand-in).
#[derive(Debug)]
pub struct Passthrough<Id = BackingId> {
    state: Mutex<State<Id>>,
}

impl<Id> Passthrough<Id> {
    /// Bookkeeping for a mount where passthrough is wanted (`enabled`) or not.
    pub fn new(enabled: bool) -> Self {
        Passthrough {
            state: Mutex::new(State {
                enabled,
                announced: (false, false),
                backed: HashMap::new(),
                by_daemon: HashMap::new(),
                handles: HashMap::new(),
                pending_writers: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<Id>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether passthrough may still be used.
    pub fn enabled(&self) -> bool {
        self.lock().enabled
    }

    /// Turn passthrough off for the mount.
    pub fn disable(&self) {
        self.lock().enabled = false;
    }

    /// Decide how read open `fh` of `ino`, of `version`, is served; `whole` is the version's
    /// complete cache file if the core has one; `register` makes a backing id of a file.
    pub fn open_reader(
        &self,
        ino: u64,
        fh: u64,
        version: Option<&str>,
        whole: Option<WholeFile>,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> Served<Id> {
        let mut s = self.lock();
        if let Some(b) = s.backed.get(&ino) {
            if matches!(b.backing, Backing::Cached(_)) && b.version.as_deref() != version {
                tracing::info!(ino, "the object changed on the server while open: this open reads the version already open (the kernel serves one file per inode) until every open of it has closed");
            }
            return s.join(ino, fh);
        }
        let whole = whole.filter(|_| !s.pending_writers.contains_key(&ino));
        s.start(ino, fh, version, whole.map(Backing::Cached), register)
    }

    /// Check a write open of `ino` before the core opens it (which may truncate the file).
    /// `None`: refused, the kernel reads the inode from a cache file and allows no write open
    /// next to it. Else a gate, answered by [`WriteGate::serve`]; while it lives, readers
    /// start no backing file of `ino`.
    pub fn begin_write(self: &Arc<Self>, ino: u64) -> Option<WriteGate<Id>> {
        let mut s = self.lock();
        let session = match s.backed.get(&ino).map(|b| &b.backing) {
            Some(Backing::Cached(_)) => return None,
            Some(Backing::Staging(f)) => Some(f.clone()),
            None => None,
        };
        *s.pending_writers.entry(ino).or_insert(0) += 1;
        Some(WriteGate {
            pt: self.clone(),
            ino,
            session,
        })
    }

    /// Decide how write open `fh` of `ino` is served: `staging` is its session's staging
    /// file, which the kernel may start writing when `start` (the core was told) and may join
    /// where it already writes it.
    fn open_writer(
        &self,
        ino: u64,
        fh: u64,
        staging: Option<Arc<std::fs::File>>,
        start: bool,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> Served<Id> {
        let mut s = self.lock();
        match (s.backed.get(&ino).map(|b| &b.backing), staging) {
            (Some(Backing::Staging(f)), Some(ours)) if Arc::ptr_eq(f, &ours) => s.join(ino, fh),
            // A cache file, or the staging file of a session that ended (readers still
            // read it): nothing a write may go to.
            (Some(_), _) => Served::Busy,
            (None, Some(ours)) if start => {
                s.start(ino, fh, None, Some(Backing::Staging(ours)), register)
            }
            (None, _) => s.start(ino, fh, None, None, register),
        }
    }

    /// Forget open `fh` of `ino`; the last passthrough handle of an inode drops its backing id.
    pub fn release(&self, ino: u64, fh: u64) {
        let mut s = self.lock();
        if s.handles.remove(&fh).is_some() {
            if let Some(b) = s.backed.get_mut(&ino) {
                b.opens -= 1;
                if b.opens == 0 {
                    s.backed.remove(&ino);
                }
            }
        } else if let Some(n) = s.by_daemon.get_mut(&ino) {
            *n -= 1;
            if *n == 0 {
                s.by_daemon.remove(&ino);
            }
        }
    }

    /// Inodes with a backing file now.
    pub fn backed_inodes(&self) -> usize {
        self.lock().backed.len()
    }
}

#[cfg(test)]
mod tests;
