//! The daemon's control socket: a Unix socket only its owner can open (0600, in a 0700
//! directory) that answers every connection with the mount's status as `key=value` lines
//! and closes. `cloudmount status` reads it.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// The socket file, removed when dropped.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listen on `path` (in the current tokio runtime) and answer each connection with
/// `status()`. A socket file left by a dead daemon is replaced.
pub fn serve_control(
    path: &Path,
    status: Arc<dyn Fn() -> String + Send + Sync>,
) -> std::io::Result<ControlSocket> {
    if let Some(dir) = path.parent() {
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        check_private_dir(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                // Out of descriptors, say: try again later rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let text = status();
            tokio::spawn(async move {
                let _ = conn.write_all(text.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(ControlSocket {
        path: path.to_path_buf(),
    })
}

/// Refuse a socket directory someone else owns or others may write to (in `/tmp`, another
/// user could have made it first to catch or replace the socket).
fn check_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{} must be a directory owned by uid {me} that only its owner can write to \
                 (it is uid {}, mode {:o}); remove it",
                dir.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Remove the control socket `path` if no daemon listens on it any more (one killed by
/// SIGKILL cannot remove its own); a socket a daemon still answers on is left alone.
pub fn remove_if_dead(path: &Path) {
    match std::os::unix::net::UnixStream::connect(path) {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            if let Err(e) = std::fs::remove_file(path) {
                tracing::debug!(socket = %path.display(), error = %e, "cannot remove a dead control socket");
            }
        }
        _ => {}
    }
}

/// Ask the daemon listening on `path` for its status (`key=value` lines).
pub fn query_status(path: &Path) -> std::io::Result<String> {
    let mut conn = std::os::unix::net::UnixStream::connect(path)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_socket_nobody_listens_on_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.sock");
        let _listening = std::os::unix::net::UnixListener::bind(&live).unwrap();
        remove_if_dead(&live);
        assert!(live.exists(), "a daemon still answers there");
        let dead = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
        assert!(
            dead.exists(),
            "a closed listener leaves its file, as a killed daemon does"
        );
        remove_if_dead(&dead);
        assert!(!dead.exists());
        remove_if_dead(&dir.path().join("missing.sock"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_with_the_status_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/x.sock");
        let sock = serve_control(&path, Arc::new(|| "pid=7\n".to_string())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        let p = path.clone();
        let text = tokio::task::spawn_blocking(move || query_status(&p))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text, "pid=7\n");
        drop(sock);
        assert!(!path.exists());

        // A directory others may write to is refused.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = serve_control(&open.join("x.sock"), Arc::new(String::new)).unwrap_err();
        assert!(
            err.to_string().contains("only its owner can write"),
            "{err}"
        );
    }
}
