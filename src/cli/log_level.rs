//! `cloudmount log-level MOUNTPOINT LEVEL`: change a running daemon's log level.

use clap::Args;
use std::path::PathBuf;

/// Arguments of `log-level`.
#[derive(Debug, Args)]
pub struct LogLevelArgs {
    /// The mount point (or any path on the mount).
    pub mountpoint: PathBuf,
    /// error, warn, info, debug or trace (cloudmount's own lines), or RUST_LOG directives
    /// such as `cloudmount=debug,fuser=info`.
    pub level: String,
}

/// Send the new level; print the directives now in force.
pub fn run(args: LogLevelArgs) -> Result<(), String> {
    let m = super::control::mount_of(&args.mountpoint)?;
    if args.level.contains('\n') {
        return Err("the level must be one line".into());
    }
    let answer = super::control::ask(&m, &format!("log-level {}", args.level))?;
    let now = answer
        .lines()
        .find_map(|l| l.strip_prefix("log_level="))
        .unwrap_or(answer.trim());
    println!("{}: log level now {now}", m.mountpoint.display());
    Ok(())
}
