//! Resumable upload sessions that outlive the daemon. When a resumable upload starts, its
//! session URI is written next to the staging area (`<cache>/gdrive-uploads/LABEL/`, one 0600
//! file per upload, named by a hash of the key, the size and the content's MD5: the session URI
//! lets anyone holding it upload, so it is kept as private as a token). The journal's replay of
//! the same closed content after a crash or a kill then asks that session how much it holds and
//! sends only the rest. A finished upload removes its file; files older than Drive's session
//! lifetime (a week) are removed when a new one is written.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long Drive keeps an unfinished resumable session.
const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

/// Where sessions are kept (`None`: nowhere, without a cache directory).
#[derive(Debug, Clone, Default)]
pub struct SessionStore {
    dir: Option<PathBuf>,
}

impl SessionStore {
    /// Sessions kept in `dir` (created private when first needed).
    pub fn new(dir: Option<PathBuf>) -> Self {
        SessionStore { dir }
    }

    fn path(&self, key: &str, size: u64, md5: &str) -> Option<PathBuf> {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            format!("{key}\n{size}\n{md5}").as_bytes(),
        );
        let name: String = d.as_ref()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.dir.as_ref().map(|d| d.join(name))
    }

    /// The session URI kept for this content of `key`, if any.
    pub fn find(&self, key: &str, size: u64, md5: &str) -> Option<String> {
        let p = self.path(key, size, md5)?;
        let text = std::fs::read_to_string(p).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let same = v["key"] == key && v["size"] == size && v["md5"] == md5;
        same.then(|| v["uri"].as_str().map(str::to_string))
            .flatten()
    }

    /// Keep `uri` as the session of this content of `key` (a failure is logged: the upload
    /// still works, it just cannot resume after a kill).
    pub fn keep(&self, key: &str, size: u64, md5: &str, uri: &str) {
        let (Some(dir), Some(p)) = (&self.dir, self.path(key, size, md5)) else {
            return;
        };
        let json = serde_json::json!({"key": key, "size": size, "md5": md5, "uri": uri});
        if let Err(e) = write_private(dir, &p, &json.to_string()) {
            tracing::warn!(key, error = %e, "cannot keep the upload session; a killed upload starts again");
        }
        expire_old(dir);
    }

    /// The upload of this content of `key` is over (done, or its session gone).
    pub fn forget(&self, key: &str, size: u64, md5: &str) {
        if let Some(p) = self.path(key, size, md5) {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write_private(dir: &Path, path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn expire_old(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > LIFETIME);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sessions_are_kept_privately_per_content_and_forgotten() {
        let d = tempfile::tempdir().unwrap();
        let s = SessionStore::new(Some(d.path().join("up")));
        assert_eq!(s.find("a/b", 10, "m"), None);
        s.keep("a/b", 10, "m", "http://x/upload?upload_id=1");
        assert_eq!(
            s.find("a/b", 10, "m").as_deref(),
            Some("http://x/upload?upload_id=1")
        );
        assert_eq!(
            s.find("a/b", 10, "other"),
            None,
            "other content, other session"
        );
        let file = std::fs::read_dir(d.path().join("up"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        s.forget("a/b", 10, "m");
        assert_eq!(s.find("a/b", 10, "m"), None);
        let none = SessionStore::new(None);
        none.keep("k", 1, "m", "u");
        assert_eq!(none.find("k", 1, "m"), None);
    }
}
