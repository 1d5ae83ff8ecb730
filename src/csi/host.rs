//! `cloudmount csi-mounter`: the host side of the CSI driver. It listens on a Unix socket
//! (0600, in a 0700 directory) and, for the node plugin, starts `cloudmount mount` daemons
//! with the credentials in their environment, and stops them. It runs as a systemd service of
//! the node (`KillMode=process`), so restarting or upgrading the plugin's pod — or this
//! service — leaves every daemon serving (docs/kubernetes.md).

use super::mounter::{Reply, Request, MAX_REQUEST};
use crate::daemon;
use std::io::{BufRead, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How the mounter runs.
#[derive(Debug, Clone)]
pub struct MounterConfig {
    /// The socket it listens on.
    pub socket: PathBuf,
    /// Targets must lie under this directory (kubelet's: `/var/lib/kubelet`).
    pub targets_under: PathBuf,
    /// Where each mount's cache and log go (`cache/`, `log/`).
    pub state_dir: PathBuf,
    /// The `cloudmount` binary the daemons run.
    pub binary: PathBuf,
}

impl Default for MounterConfig {
    fn default() -> Self {
        MounterConfig {
            socket: PathBuf::from("/run/cloudmount-csi/mounter.sock"),
            targets_under: PathBuf::from("/var/lib/kubelet"),
            state_dir: PathBuf::from("/var/lib/cloudmount-csi"),
            binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("cloudmount")),
        }
    }
}

/// How long a mount may take to answer (the daemon proves the store and the mount first).
const MOUNT_WAIT: Duration = Duration::from_secs(120);

/// How long a stopping daemon may take to send pending uploads and exit.
const STOP_WAIT: Duration = Duration::from_secs(180);

/// Listen and serve until killed.
pub fn serve(cfg: &MounterConfig) -> Result<(), String> {
    if let Some(dir) = cfg.socket.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&cfg.socket);
    let listener = UnixListener::bind(&cfg.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.socket.display()))?;
    std::fs::set_permissions(&cfg.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", cfg.socket.display()))?;
    tracing::info!(socket = %cfg.socket.display(), targets_under = %cfg.targets_under.display(), "mounter listening");
    for conn in listener.incoming() {
        let Ok(conn) = conn else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let cfg = cfg.clone();
        std::thread::spawn(move || answer(conn, &cfg));
    }
    Ok(())
}

/// Read one request, do it, reply.
fn answer(conn: UnixStream, cfg: &MounterConfig) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let read = std::io::BufReader::new((&conn).take(MAX_REQUEST)).read_line(&mut line);
    let result = match read {
        Err(e) => Err(format!("cannot read the request: {e}")),
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Err(e) => Err(format!("not a mounter request: {e}")),
            Ok(req) => {
                tracing::info!(request = ?req, "request");
                handle(req, cfg)
            }
        },
    };
    if let Err(e) = &result {
        tracing::warn!(error = %e, "request failed");
    }
    let reply = Reply {
        error: result.err(),
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    let _ = (&conn).write_all(&out);
}

fn handle(req: Request, cfg: &MounterConfig) -> Result<(), String> {
    match req {
        Request::Ping => Ok(()),
        Request::Mount {
            volume_id,
            source,
            target,
            options,
            env,
        } => {
            let target = allowed(&target, cfg)?;
            if daemon::fuse_mount_source(&target).is_some() {
                if answers(&target) {
                    return Ok(());
                }
                detach(&target)?;
            }
            std::fs::create_dir_all(&target)
                .map_err(|e| format!("cannot create {}: {e}", target.display()))?;
            let id = dir_name(&volume_id, &target);
            let cache = cfg.state_dir.join("cache").join(&id);
            let log = cfg.state_dir.join("log").join(format!("{id}.log"));
            let mut cmd = Command::new(&cfg.binary);
            cmd.arg("mount")
                .arg(&source)
                .arg(&target)
                .arg("-o")
                .arg(&options)
                .arg("-o")
                .arg(format!(
                    "cache={},log_file={}",
                    cache.display(),
                    log.display()
                ))
                .env_clear()
                .env(
                    "PATH",
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                )
                .envs(&env)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let out = run_bounded(&mut cmd, MOUNT_WAIT)?;
            if !out.0 {
                return Err(format!(
                    "cannot mount {source} at {}: {}",
                    target.display(),
                    out.1.trim()
                ));
            }
            tracing::info!(%source, target = %target.display(), log = %log.display(), "mounted");
            Ok(())
        }
        Request::Unmount { target } => {
            let target = allowed(&target, cfg)?;
            stop(&target)
        }
    }
}

/// `target`, if it lies under the directory targets must be in.
fn allowed(target: &Path, cfg: &MounterConfig) -> Result<PathBuf, String> {
    let clean = target.is_absolute()
        && !target
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if !clean || !target.starts_with(&cfg.targets_under) {
        return Err(format!(
            "target {} is not an absolute path under {} (--targets-under)",
            target.display(),
            cfg.targets_under.display()
        ));
    }
    Ok(target.to_path_buf())
}

/// A directory name for the mount of `volume_id` at `target` (two pods of one volume on a
/// node get a cache each).
fn dir_name(volume_id: &str, target: &Path) -> String {
    let safe: String = volume_id
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = crc32fast::hash(target.as_os_str().as_encoded_bytes());
    format!("{safe}-{hash:08x}")
}

/// Whether the mount at `target` answers (a daemon killed by SIGKILL leaves one that gives
/// ENOTCONN).
pub fn answers(target: &Path) -> bool {
    let t = target.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::metadata(&t).is_ok());
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap_or(false)
}

/// Detach a dead mount at `target`.
fn detach(target: &Path) -> Result<(), String> {
    tracing::warn!(target = %target.display(), "the mount there does not answer (its daemon died); detaching it");
    daemon::unmount_path(target, true)
}

/// Stop the daemon of `target` as systemd would (SIGTERM: pending uploads first), wait for
/// it, and detach whatever is left. Not mounted: nothing to do.
fn stop(target: &Path) -> Result<(), String> {
    if daemon::fuse_mount_source(target).is_none() {
        return Ok(());
    }
    let pid = daemon::query_status(&daemon::control_socket(target))
        .ok()
        .and_then(|r| {
            r.lines()
                .find_map(|l| l.strip_prefix("pid="))
                .and_then(|p| p.trim().parse::<i32>().ok())
        });
    if let Some(pid) = pid {
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let started = Instant::now();
        while started.elapsed() < STOP_WAIT && nix::sys::signal::kill(pid, None).is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if daemon::fuse_mount_source(target).is_some() {
        daemon::unmount_path(target, true)?;
    }
    tracing::info!(target = %target.display(), "unmounted");
    Ok(())
}

/// Run `cmd` for at most `limit`; (success, stderr).
fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<(bool, String), String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", cmd.get_program().to_string_lossy()))?;
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the mount did not answer within {limit:?}"));
            }
            Err(e) => return Err(format!("cannot wait for the mount: {e}")),
        }
    };
    let err = reader.join().unwrap_or_default();
    Ok((status.success(), err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_outside_the_kubelet_directory_are_refused() {
        let cfg = MounterConfig {
            targets_under: "/var/lib/kubelet".into(),
            ..Default::default()
        };
        assert!(allowed(Path::new("/var/lib/kubelet/pods/x/mount"), &cfg).is_ok());
        for bad in [
            "/etc",
            "/var/lib/kubelet/../../etc",
            "var/lib/kubelet/x",
            "/var/lib/kubeletx",
        ] {
            assert!(allowed(Path::new(bad), &cfg).is_err(), "{bad}");
        }
        let a = dir_name("pv/1 x", Path::new("/t/1"));
        assert!(a.starts_with("pv_1_x-"), "{a}");
        assert_ne!(a, dir_name("pv/1 x", Path::new("/t/2")));
    }
}
