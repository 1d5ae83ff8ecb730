//! Write sessions whose staging file the kernel writes (write passthrough): offering the
//! staging file to the FUSE adapter, refusing the write opens the kernel could not serve, and
//! streaming such a file's parts while it is written (see `write::kernel` for how the writes
//! are seen, and `write::stream` for how parts are checked at close).

use super::sessions::OpenWrite;
use super::{CloudFs, FsError, FsResult, StagingOffer};
use crate::backend::{Backend, PosixMeta};
use crate::write::Streamer;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often a file the kernel writes is looked at for parts to stream.
const FOLLOW_EVERY: Duration = Duration::from_millis(20);

impl CloudFs {
    /// If the kernel wrote `w`'s staging file since the inode last looked: its size and times
    /// after that change (returns whether there was one).
    pub(super) fn note_kernel_writes(&self, ino: u64, w: &OpenWrite) -> bool {
        let Some(size) = w.kernel_change() else {
            return false;
        };
        self.touch(ino, size);
        true
    }

    /// The staging file of `ino`'s session, for the kernel to write (FUSE passthrough): fresh
    /// when the mount allows it and the one handle of the session, opened `truncate`, starts
    /// its content empty.
    pub(super) fn offer_staging(&self, ino: u64, truncate: bool) -> Option<StagingOffer> {
        let w = self.open_write(ino)?;
        let fresh = self.kernel_writes
            && truncate
            && self.sessions.handles(ino) == 1
            && w.size() == 0
            && !w.by_kernel();
        Some(StagingOffer {
            file: w.file.clone(),
            fresh,
        })
    }

    /// Why a write open of `ino` is refused while the kernel serves the file from a local
    /// file for other opens (FUSE passthrough allows no other kind of open next to them).
    pub fn write_refused(&self, ino: u64) -> FsError {
        let key = self.inodes.get(ino).map(|n| n.key).unwrap_or_default();
        FsError::InUse(format!(
            "{key}: open for writing refused while other opens read it straight from a local \
             file (FUSE passthrough allows no other kind of open next to them); retry once they \
             are closed, or mount with -o passthrough=false"
        ))
    }

    /// Write open `fh` could not be answered (see [`CloudFs::write_refused`]): forget it. A
    /// session it started alone with nothing written (an `O_TRUNC`) is dropped unsent, so the
    /// failed open changes nothing on the server.
    pub async fn abandon_write(&self, fh: u64) {
        let Ok(h) = self.handle(fh) else {
            return;
        };
        if let Some(w) = self.open_write(h.ino) {
            let mut st = w.lock().await;
            let alone = self.sessions.handles(h.ino) == 1;
            // The open was never answered, so the kernel wrote nothing through it.
            if alone && st.size() == 0 && !st.journaled() {
                st.dirty = false;
                st.unclosed = false;
                // Its size and times were the open's: ask the server again.
                self.inodes.expire(h.ino);
            }
        }
        self.release(fh).await;
    }

    /// Handle `fh` is written by the kernel straight into the staging file it was offered
    /// ([`Opened::staging`]): from now on the session learns of writes from that file.
    pub async fn write_by_kernel(&self, fh: u64) -> FsResult<()> {
        let h = self.handle(fh)?;
        let w = self.open_write(h.ino).ok_or(FsError::BadHandle(fh))?;
        let mut st = w.lock().await;
        if st.by_kernel().is_some() {
            // Already (a second call): its stream and follower run.
            return Ok(());
        }
        w.write_by_kernel(&mut st)?;
        st.stream = Some(Streamer::following(self.part_plan()));
        tracing::debug!(key = %st.key, staged = %st.path().display(), "written by the kernel (write passthrough)");
        drop(st);
        follow(
            Arc::downgrade(&w),
            self.backend.clone(),
            self.meta_to_store(h.ino),
        );
        Ok(())
    }
}

/// While the session of `w` lives: every [`FOLLOW_EVERY`], stream the parts the kernel's writer
/// is past, while its content differs from the store's (`meta`: the attributes a streamed
/// upload starts with; a close with others sends the file whole).
fn follow(w: Weak<OpenWrite>, backend: Arc<dyn Backend>, meta: PosixMeta) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(FOLLOW_EVERY).await;
            let Some(w) = w.upgrade() else {
                return;
            };
            let mut st = w.lock().await;
            if !st.dirty || st.unlinked {
                continue;
            }
            let Some(mut stream) = st.stream.take() else {
                return;
            };
            stream.follow(backend.as_ref(), &st, &meta).await;
            st.stream = Some(stream);
        }
    });
}
