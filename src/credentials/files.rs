//! Reading credential files safely.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Refuse a credential file that its group or others can access (s3fs's rule), with the fix.
pub fn check_private(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read credential file {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "credential file {} is not a regular file",
            path.display()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "credential file {} has mode {mode:03o}, so other users can read it; \
             run `chmod 600 {}` and mount again",
            path.display(),
            path.display()
        ));
    }
    Ok(())
}

/// Read a private credential file.
pub(crate) fn read_private(path: &Path) -> Result<String, String> {
    check_private(path)?;
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read credential file {}: {e}", path.display()))
}

/// The home directory of the current user, from `$HOME`.
pub(crate) fn home() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn refuses_group_or_world_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p");
        std::fs::write(&f, "a:b").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check_private(&f).unwrap_err();
        assert!(e.contains("mode 644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&f).unwrap(), "a:b");
    }
}
