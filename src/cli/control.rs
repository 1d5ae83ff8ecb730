//! Finding the daemon that serves a path, for the subcommands that talk to it over its
//! control socket (`stats`, `log-level`, `warm`).

use cloudmount::daemon;
use std::path::{Path, PathBuf};

/// The cloudmount mount that holds `path`: its mount point, source and control socket.
#[derive(Debug, Clone)]
pub struct Served {
    /// The mount point.
    pub mountpoint: PathBuf,
    /// The source URL.
    pub source: String,
    /// Its daemon's control socket.
    pub socket: PathBuf,
}

/// The innermost cloudmount mount at or above `path`.
pub fn mount_of(path: &Path) -> Result<Served, String> {
    let abs =
        std::path::absolute(path).map_err(|e| format!("cannot resolve {}: {e}", path.display()))?;
    let mounts = daemon::cloudmount_mounts();
    let found = mounts
        .iter()
        .filter(|(mp, _)| abs.starts_with(mp))
        .max_by_key(|(mp, _)| mp.components().count());
    let Some((mountpoint, source)) = found else {
        return Err(format!(
            "{} is not on a cloudmount mount (`cloudmount status` lists them)",
            path.display()
        ));
    };
    Ok(Served {
        socket: daemon::control_socket(mountpoint),
        mountpoint: mountpoint.clone(),
        source: source.clone(),
    })
}

/// Send `request` to the daemon of `m` and read its whole answer; an `error=` answer is
/// returned as an error.
pub fn ask(m: &Served, request: &str) -> Result<String, String> {
    let text = daemon::query(&m.socket, request).map_err(|e| unreachable(m, &e))?;
    match text.strip_prefix("error=") {
        Some(e) => Err(format!(
            "the daemon of {}: {}",
            m.mountpoint.display(),
            e.trim_end()
        )),
        None => Ok(text),
    }
}

/// What to say when the daemon of `m` does not answer.
pub fn unreachable(m: &Served, e: &std::io::Error) -> String {
    format!(
        "no answer from the daemon of {} ({}: {e}); it runs as another user, or died \
         (`cloudmount status` shows which)",
        m.mountpoint.display(),
        m.socket.display()
    )
}
