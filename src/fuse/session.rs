//! Mounting: kernel mount options from [`MountConfig`], and the FUSE session's life.

use super::FuseAdapter;
use crate::config::MountConfig;
use crate::fs::CloudFs;
use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use std::path::Path;
use std::sync::Arc;

/// A live mount; dropping it unmounts.
#[derive(Debug)]
pub struct MountHandle {
    session: Option<BackgroundSession>,
}

impl MountHandle {
    /// Whether the session ended (for example after an external `umount`).
    pub fn is_finished(&self) -> bool {
        self.session.as_ref().is_none_or(|s| s.guard.is_finished())
    }

    /// Unmount and wait for the session to end.
    pub fn unmount(mut self) -> std::io::Result<()> {
        match self.session.take() {
            Some(s) if !s.guard.is_finished() => s.umount_and_join(),
            Some(s) => s.join(),
            None => Ok(()),
        }
    }
}

/// The kernel mount options for `cfg`.
pub fn fuse_config(cfg: &MountConfig, source: &str) -> Config {
    let mut opts = vec![
        MountOption::FSName(source.to_string()),
        MountOption::Subtype("cloudmount".to_string()),
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::NoAtime,
    ];
    opts.push(if cfg.read_only {
        MountOption::RO
    } else {
        MountOption::RW
    });
    if cfg.kernel_permission_checks() {
        opts.push(MountOption::DefaultPermissions);
    }
    let mut c = Config::default();
    c.mount_options = opts;
    c.acl = if cfg.allow_other {
        SessionACL::All
    } else if cfg.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    c.n_threads = Some(cfg.fuse_threads);
    c.clone_fd = cfg.fuse_threads > 1;
    c
}

/// Mount `fs` at `mountpoint` and serve it on background threads.
pub fn mount(
    fs: Arc<CloudFs>,
    rt: tokio::runtime::Handle,
    mountpoint: &Path,
    cfg: &MountConfig,
) -> std::io::Result<MountHandle> {
    let config = fuse_config(cfg, &fs.backend().describe());
    let session = fuser::Session::new(FuseAdapter::new(fs, rt), mountpoint, &config)?;
    Ok(MountHandle {
        session: Some(session.spawn()?),
    })
}
