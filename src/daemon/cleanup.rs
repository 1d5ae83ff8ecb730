//! `abort_stale_uploads`: multipart uploads a killed daemon (or another client) left
//! unfinished stay on S3, invisible and billed, until someone aborts them. At mount time and
//! then hourly, those under the mounted prefix older than the option's age are aborted, except
//! for keys the mount still has content for.

use crate::fs::CloudFs;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How often the server is looked at after the first time.
const EVERY: Duration = Duration::from_secs(3600);

/// Abort stale uploads now and every hour; `journaled` are keys of journal records left at
/// mount time.
pub(super) async fn abort_stale_uploads(
    fs: Arc<CloudFs>,
    older_than: Duration,
    journaled: HashSet<String>,
) {
    loop {
        match fs.abort_stale_uploads(older_than, &journaled).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                aborted = n,
                "aborted multipart uploads left unfinished on the server"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot look for multipart uploads left unfinished; trying again in an hour")
            }
        }
        tokio::time::sleep(EVERY).await;
    }
}
