//! Checks made before mounting, each with a message that says how to fix the problem.

use crate::config::MountConfig;
use std::path::{Path, PathBuf};

/// The mountpoint must exist, be a directory, be reachable, and be empty unless `nonempty`. A
/// dead cloudmount mount left there by a daemon that died ("Transport endpoint is not
/// connected") is detached first.
pub fn check_mountpoint(path: &Path, nonempty: bool) -> Result<(), String> {
    // Found from mountinfo and the control socket, not from `stat`: the kernel may still hold
    // the dead root's attributes (for attr_timeout), so `stat` succeeds and only reading the
    // directory fails.
    if dead_cloudmount(path) && unmount_path(path, true).is_ok() {
        eprintln!(
            "cloudmount: detached a dead mount on {} left by a daemon that died",
            path.display()
        );
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) && clear_stale(path) => {
            eprintln!(
                "cloudmount: detached a dead mount on {} left by a daemon that died",
                path.display()
            );
            std::fs::metadata(path)
                .map_err(|e| format!("cannot use mountpoint {}: {e}", path.display()))?
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(format!(
                "mountpoint {} belongs to a dead FUSE mount (Transport endpoint is not connected); \
                 run `cloudmount unmount --lazy {}` (or `fusermount3 -uz {}`) and mount again",
                path.display(),
                path.display(),
                path.display()
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "mountpoint {} does not exist; create it with `mkdir -p {}`",
                path.display(),
                path.display()
            ))
        }
        Err(e) => return Err(format!("cannot use mountpoint {}: {e}", path.display())),
    };
    if !meta.is_dir() {
        return Err(format!("mountpoint {} is not a directory", path.display()));
    }
    if !nonempty {
        let mut entries = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read mountpoint {}: {e}", path.display()))?;
        if entries.next().is_some() {
            return Err(format!(
                "mountpoint {} is not empty; its files would be hidden while mounted. Empty it, \
                 or pass -o nonempty to mount over it anyway",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Whether `path` is a cloudmount mount (mountinfo) whose daemon is gone: its control socket
/// is there but nobody listens on it any more (a daemon killed by SIGKILL or the OOM killer
/// cannot remove it).
fn dead_cloudmount(path: &Path) -> bool {
    if !cloudmount_mounts().iter().any(|(mp, _)| mp == path) {
        return false;
    }
    let socket = super::control_socket(path);
    socket.exists()
        && matches!(
            std::os::unix::net::UnixStream::connect(&socket),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )
}

/// Detach the dead FUSE mount on `path` if cloudmount made it (type `fuse.cloudmount`);
/// whether that was done.
fn clear_stale(path: &Path) -> bool {
    let ours = cloudmount_mounts().iter().any(|(mp, _)| mp == path);
    ours && unmount_path(path, true).is_ok()
}

/// Unmount `path`: directly as root, through fusermount3 otherwise. `lazy` detaches it now
/// even if busy (`umount -l`, `fusermount3 -uz`), which also clears a dead mount, and then
/// the control socket its killed daemon left.
pub fn unmount_path(path: &Path, lazy: bool) -> Result<(), String> {
    detach(path, lazy)?;
    super::control::remove_if_dead(&super::control_socket(path));
    Ok(())
}

fn detach(path: &Path, lazy: bool) -> Result<(), String> {
    if nix::unistd::geteuid().is_root() {
        let flags = if lazy {
            nix::mount::MntFlags::MNT_DETACH
        } else {
            nix::mount::MntFlags::empty()
        };
        return nix::mount::umount2(path, flags).map_err(|e| match e {
            nix::errno::Errno::EBUSY => format!(
                "{} is busy (a process has a file open or its working directory there); \
                 close it or use --lazy",
                path.display()
            ),
            e => format!("unmount of {} failed: {e}", path.display()),
        });
    }
    let out = std::process::Command::new("fusermount3")
        .arg(if lazy { "-uz" } else { "-u" })
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run fusermount3 (install fuse3): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "fusermount3 failed on {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The source of the FUSE mount on `path` in this mount namespace (`/proc/self/mountinfo`),
/// or `None` when `path` is not a FUSE mount point.
pub fn fuse_mount_source(path: &Path) -> Option<String> {
    fuse_mounts()
        .into_iter()
        .find(|m| m.mountpoint == path)
        .map(|m| m.source)
}

/// One FUSE mount of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuseMount {
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// Its source (cloudmount's are URLs).
    pub source: String,
    /// `fuse`, or `fuse.SUBTYPE` (`fuse.cloudmount` for ours).
    pub fstype: String,
}

/// Every FUSE mount of this mount namespace, in mount order.
fn fuse_mounts() -> Vec<FuseMount> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let fstype = f.get(sep + 1)?;
            let source = f.get(sep + 2).copied().unwrap_or_default();
            let mountpoint = f.get(4)?;
            (*fstype == "fuse" || fstype.starts_with("fuse.")).then(|| FuseMount {
                mountpoint: PathBuf::from(unoctal(mountpoint)),
                source: unoctal(source),
                fstype: fstype.to_string(),
            })
        })
        .collect()
}

/// The mounts cloudmount made (type `fuse.cloudmount`): (mountpoint, source).
pub fn cloudmount_mounts() -> Vec<(PathBuf, String)> {
    fuse_mounts()
        .into_iter()
        .filter(|m| m.fstype == "fuse.cloudmount")
        .map(|m| (m.mountpoint, m.source))
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unoctal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = (b[i] == b'\\' && i + 3 < b.len())
            .then(|| &b[i + 1..i + 4])
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')))
            .and_then(|n| u8::try_from(n).ok());
        if let Some(c) = code {
            out.push(c);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A non-root user may use `allow_other`/`allow_root` only with `user_allow_other` in
/// `/etc/fuse.conf` (fusermount3's rule); say so before trying.
pub fn check_allow_other(cfg: &MountConfig) -> Result<(), String> {
    if !(cfg.allow_other || cfg.allow_root) || nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    let allowed = conf.lines().any(|l| {
        l.split('#')
            .next()
            .is_some_and(|l| l.trim() == "user_allow_other")
    });
    if allowed {
        return Ok(());
    }
    let opt = if cfg.allow_other {
        "allow_other"
    } else {
        "allow_root"
    };
    Err(format!(
        "-o {opt} needs the line `user_allow_other` in /etc/fuse.conf when a non-root user mounts; \
         add it (as root) or mount as root"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unoctal("/mnt/a\\040b"), "/mnt/a b");
        assert_eq!(unoctal("/x\\134y\\"), "/x\\y\\");
        assert_eq!(unoctal("\\777\\04"), "\\777\\04");
    }

    #[test]
    fn mountpoint_problems_are_explained() {
        let d = tempfile::tempdir().unwrap();
        assert!(check_mountpoint(d.path(), false).is_ok());
        let missing = d.path().join("nope");
        assert!(check_mountpoint(&missing, false)
            .unwrap_err()
            .contains("mkdir -p"));
        std::fs::write(d.path().join("f"), "x").unwrap();
        assert!(check_mountpoint(d.path(), false)
            .unwrap_err()
            .contains("-o nonempty"));
        assert!(check_mountpoint(d.path(), true).is_ok());
        assert!(check_mountpoint(&d.path().join("f"), true)
            .unwrap_err()
            .contains("not a directory"));
    }
}
