//! Write sessions: one per inode open for writing, owning its staged content.
//!
//! The map and every session's count of write handles live under one lock, so an open that
//! joins a session and the last close that retires it cannot interleave: a session leaves the
//! map only while nobody holds a handle on it and its owner (holding the session's own async
//! lock) has found nothing unsent in it ([`Sessions::retire`]). Everything else about the
//! session (key, unlinked, staged ranges, stream, the upload in flight) is in [`Staged`],
//! behind that async lock, which every data and namespace operation holds for its whole server
//! round trip. Lock order: a session's async lock, then this map's lock (never the reverse).

use super::{lock, FsError, FsResult};
use crate::write::{KernelWrites, Staged};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The staged content of an inode open for writing, shared by its write handles.
#[derive(Debug)]
pub struct OpenWrite {
    pub(super) staged: Arc<tokio::sync::Mutex<Staged>>,
    /// Size of the staged content (readable without the lock).
    size: AtomicU64,
    /// The staging file (the same for the whole session), to offer the kernel.
    pub(super) file: Arc<std::fs::File>,
    /// Set when the kernel writes the staging file (FUSE passthrough): its size and changes
    /// are read from the file, without the lock.
    kernel: std::sync::OnceLock<Arc<KernelWrites>>,
}

impl OpenWrite {
    /// The session's lock, with what the kernel wrote since the last look taken in.
    pub(super) async fn lock(&self) -> tokio::sync::MutexGuard<'_, Staged> {
        let mut st = self.staged.lock().await;
        self.caught_up(&mut st).await;
        st
    }

    /// The session's lock, as a guard that owns its share of the session (caught up as
    /// [`OpenWrite::lock`]).
    pub(super) async fn locked(&self) -> tokio::sync::OwnedMutexGuard<Staged> {
        let mut st = self.staged.clone().lock_owned().await;
        self.caught_up(&mut st).await;
        st
    }

    /// Take in what the kernel wrote into `st` (a no-op unless it writes the file).
    pub(super) async fn caught_up(&self, st: &mut Staged) {
        if self.kernel.get().is_some() {
            st.catch_up().await;
            self.set_size(st.size());
        }
    }

    /// The staged size, without waiting for the session's lock.
    pub(super) fn size(&self) -> u64 {
        match self.kernel.get().map(|k| k.size()) {
            Some(Ok(size)) => size,
            _ => self.size.load(Ordering::Relaxed),
        }
    }

    /// Whether the kernel writes the staging file.
    pub(super) fn by_kernel(&self) -> bool {
        self.kernel.get().is_some()
    }

    /// When the kernel writes the staging file: its size if it changed since the inode's
    /// attributes last looked.
    pub(super) fn kernel_change(&self) -> Option<u64> {
        self.kernel.get().and_then(|k| k.inode_change())
    }

    /// The kernel writes the staging file from now on (`st` is this session's, locked).
    pub(super) fn write_by_kernel(&self, st: &mut Staged) -> FsResult<()> {
        let k = st.write_by_kernel()?;
        let _ = self.kernel.set(k);
        Ok(())
    }

    /// Note the staged size (after a change made under the session's lock).
    pub(super) fn set_size(&self, size: u64) {
        self.size.store(size, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Slot {
    w: Arc<OpenWrite>,
    handles: u64,
}

/// Every write session, by inode.
#[derive(Debug, Default)]
pub(super) struct Sessions {
    map: Mutex<HashMap<u64, Slot>>,
}

impl Sessions {
    /// The session of `ino`, if any.
    pub(super) fn get(&self, ino: u64) -> Option<Arc<OpenWrite>> {
        lock(&self.map).get(&ino).map(|s| s.w.clone())
    }

    /// Whether `ino` has a session (open for writing, or holding content not uploaded yet).
    pub(super) fn contains(&self, ino: u64) -> bool {
        lock(&self.map).contains_key(&ino)
    }

    /// How many sessions there are.
    pub(super) fn len(&self) -> usize {
        lock(&self.map).len()
    }

    /// Every session.
    pub(super) fn all(&self) -> Vec<(u64, Arc<OpenWrite>)> {
        let mut all: Vec<_> = lock(&self.map)
            .iter()
            .map(|(ino, s)| (*ino, s.w.clone()))
            .collect();
        all.sort_by_key(|(ino, _)| *ino);
        all
    }

    /// Sessions no handle holds: closed content kept because its upload failed.
    pub(super) fn idle(&self) -> Vec<(u64, Arc<OpenWrite>)> {
        let mut idle: Vec<_> = lock(&self.map)
            .iter()
            .filter(|(_, s)| s.handles == 0)
            .map(|(ino, s)| (*ino, s.w.clone()))
            .collect();
        idle.sort_by_key(|(ino, _)| *ino);
        idle
    }

    /// Count one more write handle on `ino`'s session, starting it with what `make` stages
    /// when there is none (at most `max` sessions with handles: closed content waiting for
    /// the store does not count). With `only`, the open may only join the session whose
    /// staging file that is, and otherwise fails with what its function says, changing
    /// nothing. Returns the session and whether it was joined (true) or started.
    pub(super) fn open(
        &self,
        ino: u64,
        max: usize,
        only: Option<(&Arc<std::fs::File>, impl FnOnce() -> FsError)>,
        make: impl FnOnce() -> FsResult<Staged>,
    ) -> FsResult<(Arc<OpenWrite>, bool)> {
        let mut map = lock(&self.map);
        let slot = map.get_mut(&ino);
        if let Some((file, refused)) = only {
            if !slot.as_ref().is_some_and(|s| Arc::ptr_eq(&s.w.file, file)) {
                return Err(refused());
            }
        }
        if let Some(slot) = slot {
            slot.handles += 1;
            return Ok((slot.w.clone(), true));
        }
        if map.values().filter(|s| s.handles > 0).count() >= max {
            return Err(FsError::TooManyWriters(max));
        }
        let staged = make()?;
        let w = Arc::new(OpenWrite {
            size: AtomicU64::new(staged.size()),
            file: staged.shared_file(),
            staged: Arc::new(tokio::sync::Mutex::new(staged)),
            kernel: Default::default(),
        });
        map.insert(
            ino,
            Slot {
                w: w.clone(),
                handles: 1,
            },
        );
        Ok((w, false))
    }

    /// Count one more write handle on `ino`'s session, if it has one.
    pub(super) fn join(&self, ino: u64) -> Option<Arc<OpenWrite>> {
        let mut map = lock(&self.map);
        let slot = map.get_mut(&ino)?;
        slot.handles += 1;
        Some(slot.w.clone())
    }

    /// How many write handles `ino`'s session has.
    pub(super) fn handles(&self, ino: u64) -> u64 {
        lock(&self.map).get(&ino).map_or(0, |s| s.handles)
    }

    /// A write handle of `ino` closed. Returns the session when that was its last handle (it
    /// stays in the map until [`Sessions::retire`]).
    pub(super) fn close(&self, ino: u64) -> Option<Arc<OpenWrite>> {
        let mut map = lock(&self.map);
        let slot = map.get_mut(&ino)?;
        slot.handles = slot.handles.saturating_sub(1);
        (slot.handles == 0).then(|| slot.w.clone())
    }

    /// Remove `ino`'s session if it is still `w` and no handle joined it meanwhile. The
    /// caller holds `w`'s lock and has made sure nothing in it is left to send. Returns
    /// whether it was removed.
    pub(super) fn retire(&self, ino: u64, w: &Arc<OpenWrite>) -> bool {
        let mut map = lock(&self.map);
        match map.get(&ino) {
            Some(slot) if slot.handles == 0 && Arc::ptr_eq(&slot.w, w) => {
                map.remove(&ino);
                true
            }
            _ => false,
        }
    }
}
