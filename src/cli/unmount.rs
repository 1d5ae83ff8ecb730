//! `cloudmount unmount MOUNTPOINT [--lazy]` and `cloudmount unmount --all [--lazy]`.

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::Command;

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
}

/// Unmount one mount, or all of them (every one is tried; the errors are reported together).
pub fn run(args: UnmountArgs) -> Result<(), String> {
    if args.all {
        let mounts = cloudmount::daemon::cloudmount_mounts();
        let mut errors = Vec::new();
        for (mp, source) in mounts.iter().rev() {
            match unmount(mp, args.lazy) {
                Ok(()) => println!("unmounted {source} from {}", mp.display()),
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
    unmount(&mp, args.lazy)
}

/// Unmount `mp`: directly as root, through fusermount3 otherwise.
fn unmount(mp: &Path, lazy: bool) -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        let flags = if lazy {
            nix::mount::MntFlags::MNT_DETACH
        } else {
            nix::mount::MntFlags::empty()
        };
        return nix::mount::umount2(mp, flags).map_err(|e| match e {
            nix::errno::Errno::EBUSY => format!(
                "{} is busy (a process has a file open or its working directory there); \
                 close it or use --lazy",
                mp.display()
            ),
            e => format!("unmount of {} failed: {e}", mp.display()),
        });
    }
    let mut cmd = Command::new("fusermount3");
    cmd.arg(if lazy { "-uz" } else { "-u" }).arg(mp);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run fusermount3 (install fuse3): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "fusermount3 failed on {}: {}",
            mp.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
