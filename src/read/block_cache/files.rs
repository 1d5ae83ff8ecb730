//! File-level helpers of the disk cache: hole punching, the directory lock, private
//! directories.

use std::fs::{self, File};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

/// Free the disk space of `len` bytes at `offset` (the file keeps its size).
pub(super) fn punch_hole(f: &File, offset: u64, len: u64) {
    use nix::fcntl::{fallocate, FallocateFlags};
    let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
    if fallocate(f, flags, offset as i64, len as i64).is_err() {
        // Filesystems without hole punching: overwrite with zeros (the record is gone anyway).
        let _ = f.write_all_at(&vec![0u8; len as usize], offset);
    }
}

/// How long `open` waits for the lock: a daemon that was just unmounted still finishes its
/// cache writes before it exits, and an immediate remount should wait for it, not fail.
pub(super) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `flock` the file exclusively, retrying for up to `wait`.
pub(super) fn lock_with_patience(
    mut file: File,
    wait: std::time::Duration,
) -> Result<nix::fcntl::Flock<File>, File> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, _)) if std::time::Instant::now() < deadline => {
                file = f;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err((f, _)) => return Err(f),
        }
    }
}

/// Create `d` with mode 0700, or tighten an existing one that others could enter.
pub(super) fn private_dir(d: &Path) -> Result<(), String> {
    match fs::metadata(d) {
        Ok(m) if !m.is_dir() => Err(format!(
            "cache path {} exists and is not a directory",
            d.display()
        )),
        Ok(m) => {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(dir = %d.display(), "cache directory was open to other users; set to 0700");
                fs::set_permissions(d, fs::Permissions::from_mode(0o700)).map_err(|e| {
                    format!(
                        "cache directory {} is open to other users and cannot be fixed: {e}",
                        d.display()
                    )
                })?;
            }
            Ok(())
        }
        Err(_) => {
            fs::create_dir_all(d).map_err(|e| {
                format!(
                    "cannot create cache directory {}: {e}; choose another with -o cache=DIR \
                     or mount without a disk cache with -o cache=off",
                    d.display()
                )
            })?;
            fs::set_permissions(d, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("cannot set 0700 on {}: {e}", d.display()))
        }
    }
}
