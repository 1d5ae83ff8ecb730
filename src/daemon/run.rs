//! One mount from start to unmount: build the backend, prove it answers, mount, prove the mount
//! answers, report readiness, then serve until SIGTERM/SIGINT or an external unmount.

use super::daemonize::Readiness;
use super::notify::Notifier;
use crate::backend::{build_backend, Backend, BackendError};
use crate::config::{MountConfig, Source};
use crate::fs::CloudFs;
use crate::read::DiskBlockCache;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

/// What to mount where, and how.
#[derive(Debug, Clone)]
pub struct MountRequest {
    /// What to mount.
    pub source: Source,
    /// Where (absolute).
    pub mountpoint: PathBuf,
    /// Options.
    pub config: MountConfig,
}

/// Mount and serve until told to stop. Errors before readiness are also sent to `readiness`.
pub fn run_mount(req: MountRequest, readiness: &mut Readiness) -> Result<(), String> {
    let result = serve(req, readiness);
    if let Err(msg) = &result {
        tracing::error!("{msg}");
        readiness.failed(msg);
    }
    result
}

/// Keep the allocator from hoarding freed part buffers: glibc raises its mmap threshold to the
/// size of every large block freed (our 8 MiB parts), after which they stay in per-thread arenas
/// and the resident size grows far past the read-ahead budget. A fixed threshold returns them.
fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn serve(req: MountRequest, readiness: &mut Readiness) -> Result<(), String> {
    tune_allocator();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .max(2),
        )
        .thread_name("cloudmount-worker")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let built = {
        let _guard = rt.enter();
        build_backend(&req.source, &req.config)?
    };
    rt.block_on(check_backend(
        built.backend.as_ref(),
        &built.credentials,
        &req,
    ))?;
    let cache = open_cache(&req)?;
    let fs = Arc::new(CloudFs::with_cache(built.backend, &req.config, cache));
    let handle = crate::fuse::mount(
        fs.clone(),
        rt.handle().clone(),
        &req.mountpoint,
        &req.config,
    )
    .map_err(|e| {
        format!(
            "cannot mount {} on {}: {e}",
            req.source,
            req.mountpoint.display()
        )
    })?;
    let mp = req.mountpoint.clone();
    let answered = rt.block_on(async {
        let stat = tokio::task::spawn_blocking(move || std::fs::metadata(&mp));
        tokio::time::timeout(Duration::from_secs(30), stat).await
    });
    match answered {
        Ok(Ok(Ok(_))) => {}
        other => {
            let _ = handle.unmount();
            return Err(format!(
                "the mount at {} does not answer: {other:?}",
                req.mountpoint.display()
            ));
        }
    }
    crate::fuse::tune_read_ahead(&req.mountpoint, crate::fuse::KERNEL_READ_AHEAD_KB);
    tracing::info!(source = %req.source, mountpoint = %req.mountpoint.display(), "mounted");
    let resume = fs.clone();
    rt.spawn(async move { resume.resume_uploads().await });
    readiness.ready();
    // The mount answered above, so systemd may start what depends on it.
    let notify = Notifier::from_env();
    notify.send(&format!(
        "READY=1\nSTATUS=serving {} on {}",
        req.source,
        req.mountpoint.display()
    ));
    let reason = rt.block_on(wait_for_stop(&handle, &notify));
    notify.send(&format!("STOPPING=1\nSTATUS=unmounting ({reason})"));
    tracing::info!(%reason, "unmounting");
    handle
        .unmount()
        .map_err(|e| format!("unmount of {} failed: {e}", req.mountpoint.display()))?;
    if !rt.block_on(fs.blocks().drain_cache_writes(Duration::from_secs(30))) {
        tracing::warn!("cache writes still pending after 30 s; those blocks will be fetched again");
    }
    tracing::info!("unmounted");
    Ok(())
}

/// Wait for SIGTERM, SIGINT or the end of the session; says which. Meanwhile, while the
/// session runs, pings systemd's watchdog when it asks for that.
async fn wait_for_stop(handle: &crate::fuse::MountHandle, notify: &Notifier) -> &'static str {
    let watchdog = Notifier::watchdog_interval().filter(|_| notify.enabled());
    let mut last_ping = std::time::Instant::now();
    let mut ping = || {
        if let Some(every) = watchdog {
            if last_ping.elapsed() >= every {
                notify.send("WATCHDOG=1");
                last_ping = std::time::Instant::now();
            }
        }
    };
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot install signal handlers; unmount with `cloudmount unmount`");
        loop {
            if handle.is_finished() {
                return "the filesystem was unmounted";
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => return "SIGTERM",
            _ = int.recv() => return "SIGINT",
            _ = hup.recv() => tracing::info!("SIGHUP ignored (credential reload comes with the systemd work)"),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                if handle.is_finished() {
                    return "the filesystem was unmounted";
                }
                ping();
            }
        }
    }
}

/// Open (and lock) the block cache of this source, if the cache is on.
fn open_cache(req: &MountRequest) -> Result<Option<Arc<DiskBlockCache>>, String> {
    // A local directory needs no second copy on disk unless a cache directory is asked for.
    if matches!(req.source, Source::Local { .. }) && req.config.cache == Some(None) {
        return Ok(None);
    }
    let Some(root) = req.config.cache_root() else {
        return Ok(None);
    };
    // The endpoint is part of the identity: two servers may both have a bucket of that name.
    let id = format!(
        "{}|{}",
        req.source,
        req.config.endpoint.as_deref().unwrap_or("")
    );
    let cache = DiskBlockCache::open(
        &root,
        &id,
        req.config.cache_size,
        req.config.cache_block_size,
    )?;
    tracing::info!(dir = %cache.dir().display(), used = cache.used_bytes(), limit = req.config.cache_size, "block cache");
    Ok(Some(Arc::new(cache)))
}

/// Prove before mounting that the store answers, the bucket exists and the keys are accepted.
/// `credentials` says where the keys came from, so a refusal names the file to fix.
async fn check_backend(
    backend: &dyn Backend,
    credentials: &str,
    req: &MountRequest,
) -> Result<(), String> {
    let limit =
        req.config.request_timeout * (req.config.retries as u32 + 1) + Duration::from_secs(5);
    let listed = tokio::time::timeout(limit, backend.list("", None, 1))
        .await
        .map_err(|_| format!("{}: no answer from the server within {limit:?}", req.source))?;
    let endpoint = req
        .config
        .endpoint
        .as_deref()
        .unwrap_or("the default endpoint");
    match listed {
        Ok(_) => Ok(()),
        Err(BackendError::NotFound(m)) => Err(format!(
            "{}: the bucket or container does not exist (create it first, or check the name): {m}",
            req.source
        )),
        Err(BackendError::Denied(m)) => Err(format!(
            "{}: the server refused the credentials (credentials: {credentials}); fix them or \
             point cloudmount at others (passwd_file, profile, AWS_* or AZURE_STORAGE_* \
             variables, config_file): {m}",
            req.source
        )),
        Err(BackendError::Unreachable(m)) => Err(format!(
            "{}: cannot reach {endpoint}; check -o endpoint= and that the server is running: {m}",
            req.source
        )),
        Err(e) => Err(format!(
            "{}: the first listing failed (credentials: {credentials}): {e}",
            req.source
        )),
    }
}
