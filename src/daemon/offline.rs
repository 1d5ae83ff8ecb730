//! While the store does not answer: probe it every second, so the mount notices within a
//! second that it answers again; then send the closed content journaled meanwhile (and the
//! journal records the mount could not replay at its start), without a remount.

use crate::fs::CloudFs;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the store is probed while it does not answer.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How often content still waiting is tried again while the store answers (an upload that
/// failed for another reason, e.g. 503s).
const RETRY_EVERY: Duration = Duration::from_secs(10);

/// Run until the runtime ends.
pub(super) async fn watch(fs: Arc<CloudFs>) {
    let mut next_retry = Instant::now();
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let was_offline = !fs.connectivity().is_online();
        if was_offline && !fs.probe().await {
            continue;
        }
        if fs.unsent() == 0 || (!was_offline && Instant::now() < next_retry) {
            continue;
        }
        let waiting = fs.unsent();
        let left = fs.retry_unsent().await;
        next_retry = Instant::now() + RETRY_EVERY;
        if left < waiting {
            tracing::info!(
                sent = waiting - left,
                left,
                "closed content that waited for the store is uploaded"
            );
        }
    }
}
