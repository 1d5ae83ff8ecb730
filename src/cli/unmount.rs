//! `cloudmount unmount MOUNTPOINT [--lazy]` and `cloudmount unmount --all [--lazy]`.

use clap::Args;
use cloudmount::daemon::unmount_path;
use std::path::PathBuf;

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
            match unmount_path(mp, args.lazy) {
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
    unmount_path(&mp, args.lazy)
}
