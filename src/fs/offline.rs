//! Serving while the store does not answer (`-o offline=on`, the default).
//!
//! Whether it answers is decided in one place, [`Connectivity`], which every request of the
//! core passes through (the backend is wrapped in [`Guarded`] when the core is built). Here is
//! what the core does with it: a name or an attribute whose TTL ran out is answered from what
//! is cached (the inode table, a listing kept past its TTL), marked stale by a kernel TTL of
//! 1 s; a close whose upload finds the store down is journaled durably and succeeds; and
//! [`CloudFs::retry_unsent`] sends such content, and journal records the mount could not
//! replay at its start, once the store answers again. Uncached data fails at once with
//! `ENETUNREACH` (the guard does not send the request), never after a timeout per request.

use super::{lock, CloudFs, FsError, FsResult, Node};
use crate::backend::{BackendError, Connectivity};
use crate::write::journal::RecordState;
use crate::write::Staged;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The kernel TTL of an answer the store could not confirm.
const STALE_TTL: Duration = Duration::from_secs(1);

impl CloudFs {
    /// Whether the store answers, since when it does not (shared with the daemon).
    pub fn connectivity(&self) -> &Arc<Connectivity> {
        &self.conn
    }

    /// Ask the store one cheap question, even while offline; whether it answered.
    pub async fn probe(&self) -> bool {
        self.guard.probe().await
    }

    /// Whether `e` means the store does not answer and the mount serves what it has instead:
    /// a request not sent because the mount is offline, or one that got no answer and turned
    /// it offline (not one that timed out while the store still answers others).
    pub(super) fn serves_offline(&self, e: &BackendError) -> bool {
        self.cfg.offline
            && match e {
                BackendError::Offline(_) => true,
                BackendError::Unreachable(_) => !self.conn.is_online(),
                _ => false,
            }
    }

    /// The kernel TTL for what `node` says: `full`, or at most 1 s while the store does not
    /// answer and `node`'s own TTL ran out (a stale answer).
    pub(super) fn ttl(&self, node: &Node, full: Duration) -> Duration {
        if Instant::now() < node.expires || self.conn.is_online() {
            full
        } else {
            full.min(STALE_TTL)
        }
    }

    /// `name` in directory `parent` (key `dir_key`) from what is cached, as the store did not
    /// answer (`e`): the inode known by that name, else the directory's last listing however
    /// old; `e` when neither is there.
    pub(super) fn resolve_offline(
        &self,
        parent: u64,
        dir_key: &str,
        name: &str,
        e: BackendError,
    ) -> FsResult<u64> {
        if let Some(node) = self.inodes.child(parent, name) {
            self.activity.served_stale();
            return Ok(node.ino);
        }
        let Some(listing) = self.dirs.get_stale(dir_key) else {
            return Err(e.into());
        };
        self.activity.served_stale();
        match listing.get(name) {
            Some(found) => Ok(self.inodes.upsert(
                parent,
                name,
                &found.key,
                found.kind,
                found.stat.clone(),
                Instant::now(),
            )),
            None => Err(FsError::NotFound),
        }
    }

    /// A flush or fsync whose upload failed with `err`: when the store does not answer (and
    /// `offline=on`), the closed content is journaled durably instead, the close succeeds,
    /// and [`CloudFs::retry_unsent`] sends it once the store answers. Otherwise `err`.
    pub(super) async fn journal_instead(
        &self,
        ino: u64,
        st: &mut Staged,
        err: FsError,
    ) -> FsResult<()> {
        let FsError::Backend(e) = &err else {
            return Err(err);
        };
        // Content whose start left staging (a stream) cannot be sent again.
        if !self.serves_offline(e) || st.dropped() > 0 || st.unclosed {
            return Err(err);
        }
        if !st.journaled_durably(RecordState::Closed) {
            let meta = self.meta_to_store(ino);
            if let Err(j) = st.journal(&meta, RecordState::Closed, true).await {
                tracing::error!(key = %st.key, error = %j, "the store does not answer and the closed content cannot be journaled (is the cache directory's disk full?); the close fails");
                return Err(err);
            }
            tracing::info!(key = %st.key, staged = %st.path().display(), "closed while the store is offline: journaled, and uploaded once it answers");
        }
        Ok(())
    }

    /// Send closed content that waits for the store: files whose last close found it down
    /// (their sessions stay, journaled), and the journal records of an earlier run that the
    /// mount could not replay at its start. Stops at the first that finds the store down
    /// again. Returns how many still wait.
    pub async fn retry_unsent(&self) -> usize {
        if self.is_stopping() {
            return self.unsent();
        }
        for (ino, w) in self.sessions.idle() {
            // In use (an open joined it, or its upload runs): that one sends it.
            let Ok(mut st) = w.staged.try_lock() else {
                continue;
            };
            w.caught_up(&mut st).await;
            if st.dirty && !st.unlinked && !st.unclosed {
                if let Err(e) = self.upload_locked(ino, &mut st).await {
                    tracing::debug!(key = %st.key, error = %e, "sending closed content again failed; it stays journaled");
                    break;
                }
                tracing::info!(key = %st.key, "closed content journaled while the store did not answer is uploaded");
            }
            if !st.dirty || st.unlinked {
                self.sessions.retire(ino, &w);
            }
        }
        let records = std::mem::take(&mut *lock(&self.unsent_records));
        if let (Some(area), false) = (&self.staging, records.is_empty()) {
            let left = self.replay(area, records).await;
            lock(&self.unsent_records).extend(left);
        }
        self.unsent()
    }

    /// Closed content waiting for the store: idle sessions with unsent content, and journal
    /// records of an earlier run not replayed yet.
    pub fn unsent(&self) -> usize {
        let idle = self
            .sessions
            .idle()
            .iter()
            .filter(|(_, w)| w.staged.try_lock().map_or(true, |st| st.dirty))
            .count();
        idle + lock(&self.unsent_records).len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Access, CloudFs, DirReplier, ROOT_INO};
    use crate::backend::fault::{Fault, FaultBackend, Faulty, Op};
    use crate::backend::memory::MemoryBackend;
    use crate::backend::{Backend, BackendError, PosixMeta};
    use crate::config::MountConfig;
    use crate::fs::{Attr, FsError};
    use crate::read::DiskBlockCache;
    use std::sync::Arc;
    use std::time::Duration;

    const OPS: [Op; 8] = [
        Op::Head,
        Op::List,
        Op::Get,
        Op::Put,
        Op::Part,
        Op::Complete,
        Op::Copy,
        Op::Delete,
    ];

    fn down(fb: &FaultBackend) {
        for op in OPS {
            fb.inject(op, "", Fault::Down, usize::MAX);
        }
    }

    fn mount(
        offline: bool,
        cache: &tempfile::TempDir,
    ) -> (Arc<MemoryBackend>, Arc<FaultBackend>, CloudFs) {
        let mem = Arc::new(MemoryBackend::new());
        mem.insert("d/cached", b"cached bytes".to_vec());
        mem.insert("d/other", b"never read".to_vec());
        let fb = FaultBackend::new(mem.clone());
        let cfg = MountConfig {
            attr_timeout: Duration::from_millis(1),
            entry_timeout: Duration::from_millis(1),
            negative_timeout: Duration::ZERO,
            dir_cache_timeout: Duration::from_millis(1),
            offline,
            ..MountConfig::default()
        };
        let blocks = DiskBlockCache::open(cache.path(), "memory://", 1 << 30, 1 << 20).ok();
        let fs = CloudFs::with_cache(Arc::new(Faulty(fb.clone())), &cfg, blocks.map(Arc::new));
        (mem, fb, fs)
    }

    #[derive(Default)]
    struct Names(Vec<String>);

    impl DirReplier for Names {
        fn add(&mut self, name: &str, _attr: &Attr, _offset: u64) -> bool {
            self.0.push(name.to_string());
            false
        }
    }

    async fn ls(fs: &CloudFs, ino: u64) -> Result<Vec<String>, FsError> {
        let fh = fs.opendir(ino)?;
        let mut n = Names::default();
        let done = fs.readdir(fh, 0, false, &mut n).await;
        fs.releasedir(fh);
        done?;
        Ok(n.0.into_iter().filter(|x| x != "." && x != "..").collect())
    }

    async fn cat(fs: &CloudFs, ino: u64) -> Result<Vec<u8>, FsError> {
        let o = fs.open(ino, Access::Read).await?;
        let data = fs.read(o.fh, 0, 100).await;
        fs.release(o.fh).await;
        Ok(data?.to_vec())
    }

    #[tokio::test]
    async fn cached_answers_stay_uncached_reads_fail_at_once_and_closed_writes_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (mem, fb, fs) = mount(true, &dir);
        let d = fs.lookup(ROOT_INO, "d").await.unwrap().attr.ino;
        assert_eq!(ls(&fs, d).await.unwrap().len(), 2);
        let cached = fs.lookup(d, "cached").await.unwrap().attr.ino;
        assert_eq!(cat(&fs, cached).await.unwrap(), b"cached bytes");
        tokio::time::sleep(Duration::from_millis(5)).await;
        down(&fb);

        // The first request finds the store down; from then on nothing is sent.
        let e = fs.lookup(d, "cached").await.unwrap();
        assert!(fs.connectivity().offline_since().is_some());
        assert!(e.attr_ttl <= Duration::from_secs(1), "marked stale");
        let sent = fb.injected();
        assert_eq!(ls(&fs, d).await.unwrap().len(), 2, "the old listing");
        assert_eq!(fs.getattr(cached).await.unwrap().0.size, 12);
        assert_eq!(
            cat(&fs, cached).await.unwrap(),
            b"cached bytes",
            "from the block cache"
        );
        let other = fs.lookup(d, "other").await.unwrap().attr.ino;
        let err = cat(&fs, other).await.unwrap_err();
        assert_eq!(err.errno(), libc::ENETUNREACH, "{err}");
        assert!(matches!(
            fs.lookup(d, "absent").await,
            Err(FsError::NotFound)
        ));
        assert_eq!(fb.injected(), sent, "no request was sent while offline");
        assert!(fs.stats().stale_answers > 0);

        // A closed write is journaled and the close succeeds.
        let (_, o) = fs.create(d, "new", PosixMeta::default()).await.unwrap();
        fs.write(o.fh, 0, bytes::Bytes::from_static(b"written offline"))
            .await
            .unwrap();
        fs.flush(o.fh).await.unwrap();
        fs.release(o.fh).await;
        assert_eq!(fs.unsent(), 1);
        // Still down: it stays.
        assert!(!fs.probe().await);
        assert_eq!(fs.retry_unsent().await, 1);
        assert!(mem.head("d/new").await.is_err());

        // Back: the probe ends the outage and the content goes up.
        fb.clear();
        assert!(fs.probe().await);
        assert!(fs.connectivity().is_online());
        assert_eq!(fs.retry_unsent().await, 0);
        let size = mem.head("d/new").await.unwrap().size;
        let stored = mem.get_range("d/new", 0..size, None).await.unwrap();
        assert_eq!(&stored[..], b"written offline");
        assert_eq!(fs.stats().open_for_writing, 0);
    }

    #[tokio::test]
    async fn with_offline_off_every_operation_asks_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (_mem, fb, fs) = mount(false, &dir);
        let d = fs.lookup(ROOT_INO, "d").await.unwrap().attr.ino;
        assert_eq!(ls(&fs, d).await.unwrap().len(), 2);
        let cached = fs.lookup(d, "cached").await.unwrap().attr.ino;
        tokio::time::sleep(Duration::from_millis(5)).await;
        down(&fb);
        let e = fs.getattr(cached).await.unwrap_err();
        assert!(matches!(e, FsError::Backend(BackendError::Unreachable(_))));
        let before = fb.injected();
        assert!(ls(&fs, d).await.is_err());
        assert!(fb.injected() > before, "sent although the store was down");
        let (_, o) = fs
            .create(d, "new", PosixMeta::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        fs.write(o.fh, 0, bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(fs.flush(o.fh).await.unwrap_err().errno(), libc::EIO);
        fs.release(o.fh).await;
    }
}
