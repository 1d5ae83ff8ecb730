//! FUSE passthrough bookkeeping: which inodes the kernel reads straight from a cache file.
//!
//! The kernel runs each inode either in cached mode (reads come to the daemon) or in
//! passthrough mode (reads go to one backing file), and refuses an open of the other mode while
//! any open of the inode exists. So an open joins the mode of the inode's open handles; with
//! none open, it uses passthrough when the core offers the complete cache file. All opens of an
//! inode in passthrough share one backing id (the kernel refuses a second backing file for an
//! inode); the id and the cache pin of that version live until the last of those handles is
//! released. A read open joins passthrough only when it reads the same version (ETag) as the
//! backing file; one of a newer version (the file was rewritten meanwhile) is served by the
//! daemon with direct I/O, which the kernel allows next to passthrough opens, so it never
//! reads the old version's cache file.
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
    /// Reads come to the daemon.
    ByDaemon,
    /// The kernel reads this backing file.
    Passthrough(Arc<Id>),
    /// A write open while the inode is in passthrough mode: direct I/O to the daemon, which
    /// the kernel allows next to passthrough opens.
    DirectIo,
}

#[derive(Debug)]
struct Backed<Id> {
    id: Arc<Id>,
    /// The version (ETag) of the backing file.
    version: Option<String>,
    opens: u32,
    _whole: WholeFile,
}

#[derive(Debug)]
struct State<Id> {
    enabled: bool,
    announced: bool,
    backed: HashMap<u64, Backed<Id>>,
    by_daemon: HashMap<u64, u32>,
    /// Passthrough handles and their inode.
    handles: HashMap<u64, u64>,
    /// Direct-I/O handles (counted in no mode).
    direct: std::collections::HashSet<u64>,
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
                announced: false,
                backed: HashMap::new(),
                by_daemon: HashMap::new(),
                handles: HashMap::new(),
                direct: Default::default(),
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

    /// Decide how open `fh` of `ino` (for writing when `write`; reading `version` otherwise)
    /// is served; `register` makes a backing id of a file.
    pub fn open(
        &self,
        ino: u64,
        fh: u64,
        write: bool,
        version: Option<&str>,
        whole: Option<WholeFile>,
        register: impl FnOnce(&std::fs::File) -> std::io::Result<Id>,
    ) -> Served<Id> {
        let mut s = self.lock();
        let joins = |b: &Backed<Id>| !write && b.version.as_deref() == version;
        match s.backed.get_mut(&ino) {
            Some(b) if joins(b) => {
                b.opens += 1;
                let id = b.id.clone();
                s.handles.insert(fh, ino);
                return Served::Passthrough(id);
            }
            Some(_) => {
                // A writer, or a reader of another version.
                s.direct.insert(fh);
                return Served::DirectIo;
            }
            None => {}
        }
        let whole = match whole {
            Some(w) if s.enabled && !s.by_daemon.contains_key(&ino) => w,
            _ => {
                *s.by_daemon.entry(ino).or_insert(0) += 1;
                return Served::ByDaemon;
            }
        };
        match register(&whole.file) {
            Ok(id) => {
                if !s.announced {
                    s.announced = true;
                    tracing::info!("FUSE passthrough in use: the kernel reads fully cached files straight from the cache");
                }
                let id = Arc::new(id);
                s.backed.insert(
                    ino,
                    Backed {
                        id: id.clone(),
                        version: version.map(str::to_string),
                        opens: 1,
                        _whole: whole,
                    },
                );
                s.handles.insert(fh, ino);
                Served::Passthrough(id)
            }
            Err(e) => {
                s.enabled = false;
                tracing::info!(error = %e, "FUSE passthrough unavailable (it needs Linux 6.9 or later and a daemon running as root); fully cached files are served by the daemon");
                *s.by_daemon.entry(ino).or_insert(0) += 1;
                Served::ByDaemon
            }
        }
    }

    /// Forget open `fh` of `ino`; the last passthrough handle of an inode drops its backing id.
    pub fn release(&self, ino: u64, fh: u64) {
        let mut s = self.lock();
        if s.direct.remove(&fh) {
            return;
        }
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
