//! The daemon's control socket: a Unix socket only its owner can open (0600, in a 0700
//! directory). A client sends one request line (`status`, `metrics`, `log-level debug`,
//! `warm "path"`), the daemon streams its answer and closes. `cloudmount status`, `stats`,
//! `log-level` and `warm` speak it.

use futures::stream::BoxStream;
use futures::StreamExt;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// Answers requests: the request line (without its newline) to the chunks of the answer.
pub type Handler = Arc<dyn Fn(String) -> BoxStream<'static, String> + Send + Sync>;

/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 << 10;

/// How long a client has to send its request.
const REQUEST_WAIT: Duration = Duration::from_secs(5);

/// The socket file, removed when dropped unless another daemon has replaced it meanwhile (a
/// new mount on the same path, started while this daemon was still finishing its stop).
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    /// Device and inode of the file this daemon bound.
    id: Option<(u64, u64)>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if file_id(&self.path).is_some_and(|id| Some(id) == self.id) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Device and inode of `path`, if it exists.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Listen on `path` (in the current tokio runtime) and answer each connection's request
/// with `handler`. A socket file left by a dead daemon is replaced.
pub fn serve_control(path: &Path, handler: Handler) -> std::io::Result<ControlSocket> {
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
            let Ok((conn, _)) = listener.accept().await else {
                // Out of descriptors, say: try again later rather than spin.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            tokio::spawn(answer(conn, handler.clone()));
        }
    });
    Ok(ControlSocket {
        path: path.to_path_buf(),
        id: file_id(path),
    })
}

/// Read one request from `conn` and stream the handler's answer back.
async fn answer(conn: tokio::net::UnixStream, handler: Handler) {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    let mut limited = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST));
    let got = tokio::time::timeout(REQUEST_WAIT, limited.read_line(&mut line)).await;
    if !matches!(got, Ok(Ok(_))) {
        let _ = write.write_all(b"error=no request line within 5 s\n").await;
        return;
    }
    let mut chunks = handler(line.trim_end_matches('\n').to_string());
    while let Some(chunk) = chunks.next().await {
        if write.write_all(chunk.as_bytes()).await.is_err() {
            // The client went away: dropping the stream stops the work behind it.
            return;
        }
    }
    let _ = write.shutdown().await;
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

/// Wait, at most `limit`, until the daemon of the control socket `path` is gone: it removes
/// its socket as the last step of its stop, and a killed one leaves a file nobody listens on
/// (probed once a second, each probe being a connection the daemon answers). Whether it is
/// gone; `waiting` is called once, when the daemon is still there after a second.
pub fn wait_until_closed(path: &Path, limit: Duration, waiting: impl FnOnce()) -> bool {
    let start = std::time::Instant::now();
    let mut waiting = Some(waiting);
    let mut probed: Option<std::time::Instant> = None;
    while path.exists() {
        if probed.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            if std::os::unix::net::UnixStream::connect(path).is_err() {
                return true;
            }
            probed = Some(std::time::Instant::now());
        }
        if start.elapsed() >= limit {
            return false;
        }
        if start.elapsed() >= Duration::from_secs(1) {
            if let Some(say) = waiting.take() {
                say();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Send `request` to the daemon listening on `path`; its answer is read from the stream
/// returned, each read waiting at most `wait`.
pub fn request(
    path: &Path,
    request: &str,
    wait: Duration,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    let mut conn = std::os::unix::net::UnixStream::connect(path)?;
    conn.set_read_timeout(Some(wait))?;
    conn.set_write_timeout(Some(wait))?;
    conn.write_all(format!("{request}\n").as_bytes())?;
    conn.shutdown(std::net::Shutdown::Write)?;
    Ok(conn)
}

/// Send `request` to the daemon listening on `path` and read its whole answer.
pub fn query(path: &Path, req: &str) -> std::io::Result<String> {
    let mut conn = request(path, req, Duration::from_secs(5))?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    Ok(text)
}

/// Ask the daemon listening on `path` for its status (`key=value` lines).
pub fn query_status(path: &Path) -> std::io::Result<String> {
    query(path, "status")
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

    #[test]
    fn waits_until_the_daemon_closes_its_socket_and_no_longer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        assert!(wait_until_closed(&path, Duration::ZERO, || {}), "no socket");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let said = std::cell::Cell::new(false);
        let gone = wait_until_closed(&path, Duration::from_millis(1200), || said.set(true));
        assert!(
            !gone && said.get(),
            "still listening: waited, said so, gave up"
        );
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(listener);
        });
        assert!(wait_until_closed(&path, Duration::from_secs(10), || {}));
        closer.join().unwrap();
        assert!(
            path.exists(),
            "a killed daemon leaves its file: nobody listens, so gone"
        );
        std::fs::remove_file(&path).unwrap();
        // The file removed at the end of the stop.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let p = path.clone();
        let remover = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::remove_file(&p).unwrap();
        });
        let t = std::time::Instant::now();
        assert!(wait_until_closed(&path, Duration::from_secs(10), || {}));
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "seen gone without a probe"
        );
        remover.join().unwrap();
        drop(listener);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_with_the_status_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/x.sock");
        let handler: Handler = Arc::new(|req: String| {
            futures::stream::iter(vec![format!("req={req}\n"), "pid=7\n".to_string()]).boxed()
        });
        let sock = serve_control(&path, handler).unwrap();
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
        assert_eq!(text, "req=status\npid=7\n");
        drop(sock);
        assert!(!path.exists());

        // A directory others may write to is refused.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let none: Handler = Arc::new(|_| futures::stream::empty().boxed());
        let err = serve_control(&open.join("x.sock"), none).unwrap_err();
        assert!(
            err.to_string().contains("only its owner can write"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_daemon_ending_late_leaves_the_socket_of_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/x.sock");
        let answer = |pid: &'static str| -> Handler {
            Arc::new(move |_| futures::stream::iter(vec![format!("pid={pid}\n")]).boxed())
        };
        let old = serve_control(&path, answer("1")).unwrap();
        // A new mount on the same path while the old daemon still finishes its stop.
        let new = serve_control(&path, answer("2")).unwrap();
        drop(old);
        let p = path.clone();
        let text = tokio::task::spawn_blocking(move || query_status(&p))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(text, "pid=2\n", "the new daemon's socket is still there");
        drop(new);
        assert!(!path.exists());
    }
}
