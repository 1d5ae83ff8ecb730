//! SIGHUP (or a changed credential file, see `credential_check`): build the backend again from
//! freshly read credentials, swap it in once it answers, then drop cached metadata in the
//! daemon and in the kernel. One reload at a time, so the last one's credentials are the ones
//! that stay; a failed one changes nothing.

use super::notify::Notifier;
use super::run::{check_backend, MountRequest};
use crate::backend::{build_backend, Reloadable};
use crate::fs::CloudFs;
use crate::fuse::KernelCache;
use std::sync::Arc;

/// What a reload needs of a serving mount.
pub(super) struct Reloader {
    /// The mount (source and options to build the backend from).
    pub req: MountRequest,
    /// The backend every request goes through.
    pub backend: Arc<Reloadable>,
    /// The filesystem whose metadata is dropped.
    pub fs: Arc<CloudFs>,
    /// The kernel's caches of this mount (`None` once the session ended).
    pub kernel: Option<KernelCache>,
    /// Held while a reload runs.
    pub turn: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Reload because of `why` (SIGHUP, a changed file); a failure is logged and reported to
    /// systemd, and the mount goes on as it was.
    pub(super) async fn run(&self, why: &str) {
        let _turn = self.turn.lock().await;
        let notify = Notifier::from_env();
        tracing::info!("{why}: re-reading credentials and dropping cached metadata");
        let built = match build_backend(&self.req.source, &self.req.config) {
            Ok(b) => match check_backend(b.backend.as_ref(), &b.credentials, &self.req).await {
                Ok(()) => b,
                Err(e) => return failed(&notify, &e),
            },
            Err(e) => return failed(&notify, &e),
        };
        self.backend.replace(built.backend);
        tracing::info!(credentials = %built.credentials, "reloaded");
        self.drop_caches().await;
        notify.send(&format!(
            "STATUS=serving {} on {} (reloaded)",
            self.req.source,
            self.req.mountpoint.display()
        ));
    }

    /// Forget cached metadata, and make the kernel forget the attributes and names it holds
    /// too, so what changed on the server shows at once rather than after
    /// `attr_timeout`/`entry_timeout`.
    async fn drop_caches(&self) {
        let entries = self.fs.drop_metadata_cache();
        let Some(kernel) = self.kernel.clone() else {
            return;
        };
        let known = entries.len();
        match tokio::task::spawn_blocking(move || kernel.forget(&entries)).await {
            Ok(invalidated) => tracing::info!(known, invalidated, "kernel caches dropped"),
            Err(e) => tracing::warn!(error = %e, "kernel caches not dropped"),
        }
    }
}

fn failed(notify: &Notifier, e: &str) {
    tracing::error!(error = %e, "reload failed; the mount goes on with the credentials it had");
    notify.send(&format!("STATUS=reload failed: {e}"));
}
