//! The local directory store moves files and whole directories with one `rename(2)`.

use super::BackendError;
use std::path::{Component, Path, PathBuf};

/// `dir/key`, refusing keys that would leave `dir`.
fn inside(dir: &Path, key: &str) -> Result<PathBuf, BackendError> {
    let rel = Path::new(key.trim_end_matches('/'));
    if key.is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(BackendError::InvalidKey {
            key: key.to_string(),
            reason: "not a plain relative path".to_string(),
        });
    }
    Ok(dir.join(rel))
}

/// Move `from` to `to` below `dir` (directory keys end in `/`), replacing a file or an empty
/// directory there.
pub async fn rename(dir: &Path, from: &str, to: &str) -> Result<(), BackendError> {
    let (a, b) = (inside(dir, from)?, inside(dir, to)?);
    let what = format!("rename {from} to {to}");
    tokio::task::spawn_blocking(move || std::fs::rename(&a, &b))
        .await
        .map_err(|e| BackendError::Other(format!("{what}: {e}")))?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BackendError::NotFound(format!("{what}: {e}")),
            std::io::ErrorKind::PermissionDenied => BackendError::Denied(format!("{what}: {e}")),
            _ => BackendError::Other(format!("{what}: {e}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn moves_directories_in_one_step_and_stays_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), "x").unwrap();
        rename(d.path(), "a/", "c/").await.unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("c/b/f")).unwrap(),
            "x"
        );
        assert!(rename(d.path(), "c", "../escape").await.is_err());
        assert!(matches!(
            rename(d.path(), "nope", "x").await,
            Err(BackendError::NotFound(_))
        ));
    }
}
