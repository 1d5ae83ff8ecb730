//! What the control socket answers (`status`, `metrics`, `log-level`, `warm`), and the
//! numbers `-o metrics=` serves.

use super::control::Handler;
use super::run::MountRequest;
use crate::fs::CloudFs;
use crate::metrics::Snapshot;
use crate::read::DiskBlockCache;
use futures::stream::{self, StreamExt};
use std::sync::Arc;
use std::time::Instant;

/// The handler of the control socket of the mount `req` served by `fs`.
pub(super) fn handler(
    req: &MountRequest,
    fs: &Arc<CloudFs>,
    cache: Option<Arc<DiskBlockCache>>,
) -> Handler {
    let status = status_report(req, fs, cache, Instant::now());
    let snapshot = snapshots(req, fs);
    let fs = fs.clone();
    Arc::new(move |line: String| {
        let (verb, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let text = match verb {
            "" | "status" => status(),
            "metrics" => match serde_json::to_string(&snapshot()) {
                Ok(json) => json + "\n",
                Err(e) => format!("error=cannot encode the metrics: {e}\n"),
            },
            "log-level" => match super::logging::set_log_level(arg) {
                Ok(now) => format!("log_level={now}\n"),
                Err(e) => format!("error={e}\n"),
            },
            "warm" => return warm(fs.clone(), arg),
            other => format!(
                "error=unknown request {other:?}: this daemon answers status, metrics, \
                 log-level LEVEL and warm \"PATH\" (was it started by an older cloudmount?)\n"
            ),
        };
        stream::once(async move { text }).boxed()
    })
}

/// Every number of the mount `req` served by `fs`, at each call.
pub(super) fn snapshots(
    req: &MountRequest,
    fs: &Arc<CloudFs>,
) -> Arc<dyn Fn() -> Snapshot + Send + Sync> {
    let (source, mountpoint) = (req.source.to_string(), req.mountpoint.display().to_string());
    let (fs, started) = (fs.clone(), Instant::now());
    Arc::new(move || Snapshot {
        mountpoint: mountpoint.clone(),
        source: source.clone(),
        uptime_s: started.elapsed().as_secs_f64(),
        ..fs.snapshot()
    })
}

/// `warm "PATH"` (a JSON string, relative to the mount's root): fetch the file into the block
/// cache, answering `progress=BYTES` lines as chunks land, then `done=SIZE` or `error=...`.
fn warm(fs: Arc<CloudFs>, arg: &str) -> futures::stream::BoxStream<'static, String> {
    let path: String = match serde_json::from_str(arg) {
        Ok(p) => p,
        Err(e) => {
            let text = format!("error=warm takes a JSON string path, not {arg:?}: {e}\n");
            return stream::once(async move { text }).boxed();
        }
    };
    let (tx, rx) = futures::channel::mpsc::unbounded::<String>();
    let work = tokio::spawn(async move {
        let progress = tx.clone();
        let done = fs
            .warm(&path, move |n| {
                let _ = progress.unbounded_send(format!("progress={n}\n"));
            })
            .await;
        let last = match done {
            Ok(size) => format!("done={size}\n"),
            Err(e) => format!("error={}: {}\n", path, e.to_string().replace('\n', " ")),
        };
        let _ = tx.unbounded_send(last);
    });
    // The answer owns the work: a client that goes away (Ctrl-C on `warm`) stops the fetch.
    let stop = AbortOnDrop(work);
    rx.map(move |line| {
        let _ = &stop;
        line
    })
    .boxed()
}

/// Aborts its task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the control socket answers: `key=value` lines.
fn status_report(
    req: &MountRequest,
    fs: &Arc<CloudFs>,
    cache: Option<Arc<DiskBlockCache>>,
    started: Instant,
) -> impl Fn() -> String + Send + Sync {
    let (source, mountpoint) = (req.source.to_string(), req.mountpoint.clone());
    let fs = Arc::clone(fs);
    move || {
        let s = fs.stats();
        let mut out = format!(
            "source={source}\nmountpoint={}\npid={}\nuptime_s={}\n",
            mountpoint.display(),
            std::process::id(),
            started.elapsed().as_secs()
        );
        match &cache {
            Some(c) => out.push_str(&format!(
                "cache_dir={}\ncache_used={}\ncache_limit={}\n",
                c.dir().display(),
                c.used_bytes(),
                c.limit()
            )),
            None => out.push_str("cache_dir=\ncache_used=0\ncache_limit=0\n"),
        }
        out.push_str(&format!(
            "open_for_writing={}\nuploads_in_flight={}\nerrors={}\nlast_error={}\ninodes={}\n",
            s.open_for_writing,
            s.uploads_in_flight,
            s.errors,
            s.last_error.unwrap_or_default().replace('\n', " "),
            s.inodes
        ));
        let offline = s.offline_since.map_or(String::new(), |(since, why)| {
            let since = chrono::DateTime::<chrono::Utc>::from(since);
            format!(
                "{}\noffline_reason={}",
                since.format("%Y-%m-%d %H:%M:%S UTC"),
                why.replace('\n', " ")
            )
        });
        out.push_str(&format!(
            "offline_since={offline}\nstale_answers={}\nunsent={}\n",
            s.stale_answers, s.unsent
        ));
        out.push_str(&format!(
            "lost_found={}\nlost_found_dir={}\n",
            s.lost_found,
            fs.lost_found_dir()
                .map_or(String::new(), |d| d.display().to_string())
        ));
        out
    }
}
