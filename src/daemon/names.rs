//! Names derived from a mountpoint: its systemd unit name (`systemd-escape --path`) and
//! the daemon's control socket.

use std::path::{Component, Path, PathBuf};

/// The unit name of a path, as `systemd-escape --path` gives it: `/srv/cvat share` is
/// `srv-cvat\x20share`.
pub fn escape_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let parts: Vec<&[u8]> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes()),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return "-".into();
    }
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        for (j, &b) in part.iter().enumerate() {
            let leading_dot = i == 0 && j == 0 && b == b'.';
            if (b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'.') && !leading_dot {
                out.push(b as char);
            } else {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out
}

/// The directory of control sockets: `/run/cloudmount` for root, else
/// `$XDG_RUNTIME_DIR/cloudmount` (or `/tmp/cloudmount-UID`).
pub fn runtime_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/cloudmount");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("cloudmount"),
        None => PathBuf::from(format!("/tmp/cloudmount-{uid}")),
    }
}

/// The control socket of the daemon serving `mountpoint` (`cloudmount status` reads it).
pub fn control_socket(mountpoint: &Path) -> PathBuf {
    let dir = runtime_dir();
    let name = escape_path(mountpoint);
    // A socket path holds at most 107 bytes; long mountpoints get a checksum name instead.
    if dir.as_os_str().len() + name.len() + 6 < 100 {
        return dir.join(format!("{name}.sock"));
    }
    let sum = crc32fast::hash(name.as_bytes());
    dir.join(format!("mnt-{sum:08x}.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_escape_as_systemd_escape_does() {
        assert_eq!(escape_path(Path::new("/")), "-");
        assert_eq!(escape_path(Path::new("/mnt/data")), "mnt-data");
        assert_eq!(
            escape_path(Path::new("//srv/cvat share/")),
            "srv-cvat\\x20share"
        );
        assert_eq!(escape_path(Path::new("/a-b/.x/ä")), "a\\x2db-.x-\\xc3\\xa4");
        assert_eq!(escape_path(Path::new("/.hidden")), "\\x2ehidden");
    }
}
