//! Directory times go onto their marker objects once a second ([`CloudFs::store_dir_times`]),
//! and once more at the stop (run.rs).

use crate::fs::CloudFs;
use std::sync::Arc;
use std::time::Duration;

/// How often changed directories' times are written.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Run until the runtime ends.
pub(super) async fn flush(fs: Arc<CloudFs>) {
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        fs.store_dir_times().await;
    }
}
