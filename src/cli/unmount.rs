//! `cloudmount unmount MOUNTPOINT [--lazy]`.

use clap::Args;
use std::path::PathBuf;
use std::process::Command;

/// Arguments of `unmount`.
#[derive(Debug, Args)]
pub struct UnmountArgs {
    /// Where the filesystem is mounted.
    pub mountpoint: PathBuf,
    /// Detach now even if busy (also clears a dead mount: "Transport endpoint is not connected").
    #[arg(short = 'l', long)]
    pub lazy: bool,
}

/// Unmount: directly as root, through fusermount3 otherwise.
pub fn run(args: UnmountArgs) -> Result<(), String> {
    let mp = std::path::absolute(&args.mountpoint).unwrap_or(args.mountpoint.clone());
    if cloudmount::daemon::fuse_mount_source(&mp).is_none() {
        return Err(format!(
            "{} is not a FUSE mount (see /proc/self/mountinfo)",
            mp.display()
        ));
    }
    if nix::unistd::geteuid().is_root() {
        let flags = if args.lazy {
            nix::mount::MntFlags::MNT_DETACH
        } else {
            nix::mount::MntFlags::empty()
        };
        return nix::mount::umount2(&mp, flags).map_err(|e| match e {
            nix::errno::Errno::EBUSY => format!(
                "{} is busy (a process has a file open or its working directory there); \
                 close it or use --lazy",
                mp.display()
            ),
            e => format!("unmount of {} failed: {e}", mp.display()),
        });
    }
    let mut cmd = Command::new("fusermount3");
    cmd.arg(if args.lazy { "-uz" } else { "-u" }).arg(&mp);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run fusermount3 (install fuse3): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "fusermount3 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
