//! One mount from start to unmount: build the backend, prove it answers, mount, prove the mount
//! answers, report readiness, then serve until SIGTERM/SIGINT or an external unmount.

use super::daemonize::Readiness;
use super::events::{Event, Events};
use super::notify::Notifier;
use super::reload::Reloader;
use crate::backend::{build_backend, Backend, BackendError, Reloadable};
use crate::config::{MountConfig, Source};
use crate::credentials::CredentialWatch;
use crate::fs::CloudFs;
use crate::read::DiskBlockCache;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// Keep the allocator from hoarding freed block buffers: glibc gives threads arenas of their
/// own, and a block freed in one arena is not reused by another, so the resident size grows
/// far past the read-ahead budget. One arena reuses them.
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
    let backend = Arc::new(Reloadable::new(built.backend));
    let fs = Arc::new(CloudFs::with_cache(
        backend.clone(),
        &req.config,
        cache.clone(),
    ));
    // Before mounting: a SIGTERM from here on must unmount, not kill a daemon that has a mount.
    let mut events = {
        let _guard = rt.enter();
        let watch = CredentialWatch::new(&req.source, &req.config);
        if let Some(w) = &watch {
            tracing::debug!(files = ?w.files(), every = ?req.config.credential_check, "watching the credential files");
        }
        Events::new(watch)
    };
    // Journaled uploads of an earlier run finish (or are set aside) before the mount serves,
    // so none of them lands after a write made through this mount.
    rt.block_on(fs.resume_uploads());
    let journaled = fs.journaled_keys();
    let stale_after = req.config.abort_stale_uploads;
    if !stale_after.is_zero() {
        rt.spawn(super::cleanup::abort_stale_uploads(
            fs.clone(),
            stale_after,
            journaled,
        ));
    }
    rt.spawn(super::offline::watch(fs.clone()));
    rt.spawn(super::dir_times::flush(fs.clone()));
    // Before mounting: a port already taken fails the mount with nothing to undo.
    if let Some(addr) = req.config.metrics {
        let _guard = rt.enter();
        super::metrics_http::serve(addr, super::requests::snapshots(&req, &fs))?;
    }
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
    let socket = super::control_socket(&req.mountpoint);
    let control = {
        let _guard = rt.enter();
        super::control::serve_control(&socket, super::requests::handler(&req, &fs, cache))
    };
    let _control = match control {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(socket = %socket.display(), error = %e, "no control socket; `cloudmount status` cannot show this mount");
            None
        }
    };
    readiness.ready();
    // The mount answered above, so systemd may start what depends on it.
    let notify = Notifier::from_env();
    notify.send(&format!(
        "READY=1\nSTATUS=serving {} on {}",
        req.source,
        req.mountpoint.display()
    ));
    let reloader = Arc::new(Reloader {
        req: req.clone(),
        backend,
        fs: fs.clone(),
        kernel: handle.kernel_cache(),
        turn: tokio::sync::Mutex::new(()),
    });
    if let Some(every) = fs.backend().change_interval() {
        rt.spawn(super::changes::poll(
            fs.clone(),
            handle.kernel_cache(),
            every,
        ));
    }
    let reason = loop {
        match rt.block_on(events.next(&handle, &notify)) {
            Event::Stop(reason) => break reason,
            // Apart, so the watchdog is fed while the new credentials are tried.
            Event::Reload(why) => {
                let reloader = reloader.clone();
                rt.spawn(async move { reloader.run(why).await });
            }
        }
    };
    let stats = fs.stats();
    notify.send(&format!(
        "STOPPING=1\nSTATUS=sending pending uploads, then unmounting ({reason})"
    ));
    tracing::info!(%reason, pending = stats.open_for_writing + stats.uploads_in_flight, "stopping");
    let left = rt.block_on(fs.drain(req.config.stop_timeout));
    rt.block_on(fs.store_dir_times());
    if left > 0 {
        tracing::warn!(left, stop_timeout = ?req.config.stop_timeout, "files not uploaded at the stop are kept in the staging directory: closed ones are sent by the next mount (an upload cut short by the stop timeout: -o stop_timeout= waits longer), unclosed ones go to lost+found (see the lines above for each file)");
    }
    tracing::info!(%reason, "unmounting");
    let unmounted = handle.unmount();
    // Busy: a process still has a file open there. Leave no dead mount behind.
    let detached = unmounted.is_err() && super::checks::unmount_path(&req.mountpoint, true).is_ok();
    let kept = rt.block_on(fs.keep_unsent());
    if kept > 0 {
        tracing::warn!(
            kept,
            "files not uploaded before the stop are kept for the next mount"
        );
    }
    if let Err(e) = unmounted {
        if !detached {
            return Err(format!(
                "unmount of {} failed: {e}",
                req.mountpoint.display()
            ));
        }
        tracing::warn!(error = %e, "the mount was busy, so it was detached; processes still using files there get errors from now on");
    }
    if !rt.block_on(fs.blocks().drain_cache_writes(Duration::from_secs(30))) {
        tracing::warn!("cache writes still pending after 30 s; those blocks will be fetched again");
    }
    tracing::info!("unmounted");
    Ok(())
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
pub(super) async fn check_backend(
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
    let drive = matches!(req.source, crate::config::Source::Gdrive { .. });
    match listed {
        Ok(_) => Ok(()),
        Err(BackendError::NotFound(m)) if drive => Err(format!(
            "{}: the folder does not exist (create it first, check the path, root_folder= or \
             drive_id=): {m}",
            req.source
        )),
        Err(BackendError::Denied(m)) if drive => Err(format!(
            "{}: Google Drive refused the credentials of {credentials}: {m}",
            req.source
        )),
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
