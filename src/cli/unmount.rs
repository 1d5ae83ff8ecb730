//! `cloudmount unmount MOUNTPOINT [--lazy]` and `cloudmount unmount --all [--lazy]`.

use clap::Args;
use cloudmount::daemon::unmount_path;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `unmount`.
#[derive(Debug, Args)]
pub struct UnmountArgs {
    /// Where the filesystem is mounted.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub mountpoint: Option<PathBuf>,
    /// Unmount every cloudmount mount (see `cloudmount status`).
    #[arg(long)]
    pub all: bool,
    /// Detach now even if busy (also clears a dead mount: "Transport endpoint is not connected").
    #[arg(short = 'l', long)]
    pub lazy: bool,
    /// Return as soon as the kernel let go of the mount. By default `unmount` then waits (up to
    /// 2 minutes) for the daemon to finish its stop: files still being uploaded, the last
    /// directory times, blocks on their way to the cache. A new mount of the same bucket
    /// started before that could see an older state. `--lazy` never waits (files may still be
    /// open).
    #[arg(long)]
    pub no_wait: bool,
}

/// Longest wait for a daemon to finish after its mount is gone: its stop timeout for uploads
/// (60 s by default) and its 30 s for cache writes, with room to spare.
const DAEMON_WAIT: Duration = Duration::from_secs(120);

/// Unmount one mount, or all of them (every one is tried; the errors are reported together).
pub fn run(args: UnmountArgs) -> Result<(), String> {
    if args.all {
        let mounts = cloudmount::daemon::cloudmount_mounts();
        let mut errors = Vec::new();
        for (mp, source) in mounts.iter().rev() {
            match unmount_path(mp, args.lazy) {
                Ok(()) => {
                    println!("unmounted {source} from {}", mp.display());
                    wait_for_daemon(mp, &args);
                }
                Err(e) => errors.push(e),
            }
        }
        if mounts.is_empty() {
            println!("no cloudmount mounts");
        }
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        };
    }
    let Some(mp) = &args.mountpoint else {
        return Err("give MOUNTPOINT or --all".into());
    };
    let mp = std::fs::canonicalize(mp)
        .or_else(|_| std::path::absolute(mp))
        .unwrap_or(mp.clone());
    if cloudmount::daemon::fuse_mount_source(&mp).is_none() {
        return Err(format!(
            "{} is not a FUSE mount (see /proc/self/mountinfo)",
            mp.display()
        ));
    }
    unmount_path(&mp, args.lazy)?;
    wait_for_daemon(&mp, &args);
    Ok(())
}

/// Wait for the daemon that served `mp` to end (unless `--lazy` or `--no-wait`), saying so
/// when that takes longer than a second.
fn wait_for_daemon(mp: &Path, args: &UnmountArgs) {
    if args.lazy || args.no_wait {
        return;
    }
    let socket = cloudmount::daemon::control_socket(mp);
    let said = || {
        eprintln!(
            "waiting for the daemon of {} to finish its stop (pending uploads); \
             --no-wait returns at once",
            mp.display()
        )
    };
    if !cloudmount::daemon::wait_until_closed(&socket, DAEMON_WAIT, said) {
        eprintln!(
            "the daemon of {} is still finishing after {} s; it goes on in the background \
             (its log says what it is sending)",
            mp.display(),
            DAEMON_WAIT.as_secs()
        );
    }
}
