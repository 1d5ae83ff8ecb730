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
use crate::write::Staged;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The staged content of an inode open for writing, shared by its write handles.
#[derive(Debug)]
pub struct OpenWrite {
    pub(super) staged: Arc<tokio::sync::Mutex<Staged>>,
    /// Size of the staged content (readable without the lock).
    size: AtomicU64,
}

impl OpenWrite {
    /// The session's lock, as a guard that owns its share of the session.
    pub(super) async fn locked(&self) -> tokio::sync::OwnedMutexGuard<Staged> {
        self.staged.clone().lock_owned().await
    }

    /// The staged size, without waiting for the session's lock.
    pub(super) fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
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
    /// the store does not count). Returns the session and whether it was
    /// joined (true) or started.
    pub(super) fn open(
        &self,
        ino: u64,
        max: usize,
        make: impl FnOnce() -> FsResult<Staged>,
    ) -> FsResult<(Arc<OpenWrite>, bool)> {
        let mut map = lock(&self.map);
        if let Some(slot) = map.get_mut(&ino) {
            slot.handles += 1;
            return Ok((slot.w.clone(), true));
        }
        if map.values().filter(|s| s.handles > 0).count() >= max {
            return Err(FsError::TooManyWriters(max));
        }
        let staged = make()?;
        let w = Arc::new(OpenWrite {
            size: AtomicU64::new(staged.size()),
            staged: Arc::new(tokio::sync::Mutex::new(staged)),
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
