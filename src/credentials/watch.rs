//! `credential_check`: notice that a credential file changed (an operator or a rotation job
//! wrote a new key, SAS token or service account), so the daemon reloads as on SIGHUP
//! without anyone sending one.

use crate::config::{MountConfig, Source};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What identifies one version of a file: device, inode, size, mtime and ctime (a rename over
/// it changes the inode; an edit in place the times).
type Stamp = (u64, u64, u64, i64, i64, i64, i64);

/// The credential files of one mount, and what they looked like at the last look.
#[derive(Debug)]
pub struct CredentialWatch {
    files: Vec<PathBuf>,
    seen: Vec<Option<Stamp>>,
    every: Duration,
    last: Instant,
}

impl CredentialWatch {
    /// Watch the files `source`'s credentials may come from with `cfg`, every
    /// `cfg.credential_check`; `None` when that is 0 or no file is involved (a local
    /// directory, credentials from the environment only).
    pub fn new(source: &Source, cfg: &MountConfig) -> Option<CredentialWatch> {
        if cfg.credential_check.is_zero() {
            return None;
        }
        let cfg = super::with_systemd_credentials(cfg);
        let files: Vec<PathBuf> = match source {
            Source::S3 { .. } => super::s3::files(&cfg),
            Source::Azure { .. } => cfg.config_file.iter().cloned().collect(),
            Source::Gcs { .. } => cfg
                .service_account
                .iter()
                .cloned()
                .chain(std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").map(PathBuf::from))
                .collect(),
            Source::Gdrive { label, .. } => super::gdrive::credential_file(&cfg, label)
                .into_iter()
                .collect(),
            Source::Local { .. } => Vec::new(),
        };
        if files.is_empty() {
            return None;
        }
        let seen = files.iter().map(|f| stamp(f)).collect();
        Some(CredentialWatch {
            files,
            seen,
            every: cfg.credential_check,
            last: Instant::now(),
        })
    }

    /// The files watched.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Whether a file changed (appeared, went, or was written) since the last look; looks
    /// at most once per interval, so it may be called often.
    pub fn changed(&mut self) -> bool {
        if self.last.elapsed() < self.every {
            return false;
        }
        self.last = Instant::now();
        let now: Vec<Option<Stamp>> = self.files.iter().map(|f| stamp(f)).collect();
        if now == self.seen {
            return false;
        }
        self.seen = now;
        true
    }
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3() -> Source {
        Source::S3 {
            bucket: "b".into(),
            prefix: String::new(),
        }
    }

    #[test]
    fn a_rewritten_renamed_or_removed_file_is_a_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("passwd");
        std::fs::write(&f, "a:b\n").unwrap();
        let cfg = MountConfig {
            passwd_file: Some(f.clone()),
            credential_check: Duration::from_millis(1),
            ..MountConfig::default()
        };
        let mut w = CredentialWatch::new(&s3(), &cfg).unwrap();
        assert_eq!(w.files(), std::slice::from_ref(&f));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!w.changed(), "nothing changed");

        // Rotated the usual way: written aside, renamed over (same size).
        let tmp = dir.path().join("passwd.new");
        std::fs::write(&tmp, "c:d\n").unwrap();
        std::fs::rename(&tmp, &f).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(w.changed());
        std::thread::sleep(Duration::from_millis(5));
        assert!(!w.changed(), "a change is reported once");

        std::fs::remove_file(&f).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(w.changed(), "removed");
    }

    #[test]
    fn looks_at_most_once_per_interval_and_zero_disables() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("connection.cfg");
        std::fs::write(&f, "x").unwrap();
        let az = Source::Azure {
            container: "c".into(),
            prefix: String::new(),
        };
        let cfg = MountConfig {
            config_file: Some(f.clone()),
            credential_check: Duration::from_secs(3600),
            ..MountConfig::default()
        };
        let mut w = CredentialWatch::new(&az, &cfg).unwrap();
        std::fs::write(&f, "longer").unwrap();
        assert!(!w.changed(), "not looked at before the interval");

        let off = MountConfig {
            credential_check: Duration::ZERO,
            ..cfg.clone()
        };
        assert!(CredentialWatch::new(&az, &off).is_none());
        let local = Source::Local { dir: "/x".into() };
        assert!(CredentialWatch::new(&local, &cfg).is_none());
        let no_file = MountConfig {
            config_file: None,
            ..cfg
        };
        assert!(
            CredentialWatch::new(&az, &no_file).is_none(),
            "variables only"
        );
    }
}
