//! Reading a store's feed of changes made elsewhere (Drive's `changes.list`), every
//! `poll_interval`, so that another writer's change shows within one interval even with
//! hour-long cache timeouts: exactly the entries it touched are forgotten, in the daemon and
//! in the kernel.

use crate::fs::CloudFs;
use crate::fuse::KernelCache;
use std::sync::Arc;
use std::time::Duration;

/// Poll `fs`'s backend every `every` until the runtime ends. The first call starts the feed,
/// right away, so nothing made after the mount is missed.
pub(super) async fn poll(fs: Arc<CloudFs>, kernel: Option<KernelCache>, every: Duration) {
    let mut failing = false;
    loop {
        match fs.backend().changes().await {
            Ok(keys) if keys.is_empty() => {}
            Ok(keys) => {
                let entries = fs.forget_changed(&keys);
                tracing::debug!(changed = keys.len(), "changes made elsewhere");
                if let Some(k) = kernel.clone() {
                    let _ = tokio::task::spawn_blocking(move || k.forget(&entries)).await;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read the changes feed; cached entries stay until their timeouts");
                }
                failing = true;
                tokio::time::sleep(every).await;
                continue;
            }
        }
        if failing {
            tracing::info!("the changes feed answers again");
            failing = false;
        }
        tokio::time::sleep(every).await;
    }
}
