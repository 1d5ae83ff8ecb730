//! POSIX attributes stored as object metadata, with s3fs's names so that a bucket written by
//! s3fs shows the same modes, owners and times through cloudmount, and the reverse:
//! `mode` (decimal `st_mode`, file type bits included), `uid`, `gid` and `mtime` (seconds since
//! the epoch). On S3 they travel as `x-amz-meta-<name>` headers, on Azure as `x-ms-meta-<name>`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Metadata names (without the store's prefix).
pub const MODE: &str = "mode";
/// Owner.
pub const UID: &str = "uid";
/// Group.
pub const GID: &str = "gid";
/// Modification time.
pub const MTIME: &str = "mtime";

/// The POSIX attributes an object carries; each may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixMeta {
    /// `st_mode` (type and permission bits).
    pub mode: Option<u32>,
    /// Owner's user id.
    pub uid: Option<u32>,
    /// Owner's group id.
    pub gid: Option<u32>,
    /// Modification time.
    pub mtime: Option<SystemTime>,
}

impl PosixMeta {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == PosixMeta::default()
    }

    /// Read the attributes from metadata `(name, value)` pairs; names are matched without
    /// regard to case, values that do not parse are ignored.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> PosixMeta {
        let mut m = PosixMeta::default();
        for (name, value) in pairs {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                MODE => m.mode = value.parse().ok(),
                UID => m.uid = value.parse().ok(),
                GID => m.gid = value.parse().ok(),
                MTIME => {
                    // s3fs writes whole seconds; some tools write fractions.
                    m.mtime = value
                        .parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .map(|s| UNIX_EPOCH + Duration::from_secs_f64(s));
                }
                _ => {}
            }
        }
        m
    }

    /// The metadata pairs to store.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(v) = self.mode {
            out.push((MODE, v.to_string()));
        }
        if let Some(v) = self.uid {
            out.push((UID, v.to_string()));
        }
        if let Some(v) = self.gid {
            out.push((GID, v.to_string()));
        }
        if let Some(t) = self.mtime {
            let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            out.push((MTIME, secs.to_string()));
        }
        out
    }

    /// `self` with the fields `other` sets replaced.
    pub fn merged(&self, other: &PosixMeta) -> PosixMeta {
        PosixMeta {
            mode: other.mode.or(self.mode),
            uid: other.uid.or(self.uid),
            gid: other.gid.or(self.gid),
            mtime: other.mtime.or(self.mtime),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3fs_metadata_round_trips() {
        let m = PosixMeta::from_pairs([
            ("mode", "33188"),
            ("UID", "1000"),
            ("gid", "100"),
            ("mtime", "1700000000"),
            ("other", "x"),
        ]);
        assert_eq!(m.mode, Some(0o100644));
        assert_eq!((m.uid, m.gid), (Some(1000), Some(100)));
        assert_eq!(
            m.mtime,
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        let pairs = m.to_pairs();
        let back = PosixMeta::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(back, m);
    }

    #[test]
    fn bad_values_are_ignored_and_merge_prefers_the_newer() {
        let m = PosixMeta::from_pairs([("mode", "rwx"), ("mtime", "-5"), ("uid", "7")]);
        assert_eq!(
            m,
            PosixMeta {
                uid: Some(7),
                ..PosixMeta::default()
            }
        );
        assert!(PosixMeta::default().is_empty());
        let base = PosixMeta {
            mode: Some(1),
            uid: Some(2),
            ..PosixMeta::default()
        };
        let change = PosixMeta {
            mode: Some(3),
            ..PosixMeta::default()
        };
        assert_eq!(
            base.merged(&change),
            PosixMeta {
                mode: Some(3),
                uid: Some(2),
                ..PosixMeta::default()
            }
        );
    }
}
