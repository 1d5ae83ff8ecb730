//! POSIX attributes stored as object metadata, with s3fs's names so that a bucket written by
//! s3fs shows the same modes, owners and times through cloudmount, and the reverse:
//! `mode` (decimal `st_mode`, file type bits included), `uid`, `gid`, `rdev` (the device
//! number of a device file, decimal), `mtime` and `ctime`
//! (seconds since the epoch, with nanoseconds after a dot when there are any, as s3fs writes
//! them since 1.89; whole seconds are read too), and `xattr`, the extended attributes in
//! s3fs's format ([`super::xattr`]). On S3 they travel as `x-amz-meta-<name>` headers, on
//! Azure as `x-ms-meta-<name>`.

use super::xattr::{self, Xattrs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Metadata names (without the store's prefix).
pub const MODE: &str = "mode";
/// Owner.
pub const UID: &str = "uid";
/// Group.
pub const GID: &str = "gid";
/// Device number of a character or block device file.
pub const RDEV: &str = "rdev";
/// Modification time.
pub const MTIME: &str = "mtime";
/// Status change time (chmod, chown, utimes and every content change move it).
pub const CTIME: &str = "ctime";
/// Extended attributes.
pub const XATTR: &str = "xattr";

/// The POSIX attributes an object carries; each may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PosixMeta {
    /// `st_mode` (type and permission bits).
    pub mode: Option<u32>,
    /// Owner's user id.
    pub uid: Option<u32>,
    /// Owner's group id.
    pub gid: Option<u32>,
    /// Device number (`st_rdev`) of a device file.
    pub rdev: Option<u64>,
    /// Modification time.
    pub mtime: Option<SystemTime>,
    /// Status change time; when missing, the modification time stands in.
    pub ctime: Option<SystemTime>,
    /// Extended attributes: `None` when not known (a LIST answer carries no metadata), else
    /// what the object has (metadata read from the store always sets it, empty when it has
    /// none).
    pub xattrs: Option<Xattrs>,
}

impl PosixMeta {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == PosixMeta::default()
    }

    /// The attributes of an object as the store answered them, from all its metadata
    /// `(name, value)` pairs: like [`PosixMeta::from_pairs`], and without an `xattr` pair it
    /// is known to have no extended attributes.
    pub fn from_stored<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> PosixMeta {
        let mut saw_xattr = false;
        let m = PosixMeta::from_pairs(pairs.into_iter().inspect(|(name, _)| {
            saw_xattr |= name.eq_ignore_ascii_case(XATTR);
        }));
        if saw_xattr {
            m
        } else {
            PosixMeta {
                xattrs: Some(Xattrs::new()),
                ..m
            }
        }
    }

    /// Read the attributes from metadata `(name, value)` pairs; names are matched without
    /// regard to case, values that do not parse are ignored (an `xattr` value that does not
    /// parse leaves the extended attributes unknown, so they are never rewritten from it).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> PosixMeta {
        let mut m = PosixMeta::default();
        for (name, value) in pairs {
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                MODE => m.mode = value.parse().ok(),
                UID => m.uid = value.parse().ok(),
                GID => m.gid = value.parse().ok(),
                RDEV => m.rdev = value.parse().ok(),
                MTIME => m.mtime = parse_time(value),
                CTIME => m.ctime = parse_time(value),
                XATTR => m.xattrs = xattr::decode(value),
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
        if let Some(v) = self.rdev {
            out.push((RDEV, v.to_string()));
        }
        if let Some(t) = self.mtime {
            out.push((MTIME, format_time(t)));
        }
        if let Some(t) = self.ctime {
            out.push((CTIME, format_time(t)));
        }
        if let Some(x) = self.xattrs.as_ref().filter(|x| !x.is_empty()) {
            out.push((XATTR, xattr::encode(x)));
        }
        out
    }

    /// Mode and owner only: what must not change while an upload that started with `self`
    /// is under way (every write moves the times).
    pub fn without_times(&self) -> PosixMeta {
        PosixMeta {
            mtime: None,
            ctime: None,
            ..self.clone()
        }
    }

    /// `self` with the fields `other` sets replaced.
    pub fn merged(&self, other: &PosixMeta) -> PosixMeta {
        PosixMeta {
            mode: other.mode.or(self.mode),
            uid: other.uid.or(self.uid),
            gid: other.gid.or(self.gid),
            rdev: other.rdev.or(self.rdev),
            mtime: other.mtime.or(self.mtime),
            ctime: other.ctime.or(self.ctime),
            xattrs: other.xattrs.clone().or_else(|| self.xattrs.clone()),
        }
    }
}

/// `SECONDS[.FRACTION]` since the epoch, exactly to the nanosecond (a float would lose the
/// last digits, and a time that moves between reads looks like a change).
fn parse_time(value: &str) -> Option<SystemTime> {
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    // Digits past the ninth are below a nanosecond.
    let nanos = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |n, b| n * 10 + u32::from(b - b'0'));
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// The form [`parse_time`] reads: whole seconds, then `.` and nine digits when there are
/// nanoseconds. Times before the epoch are stored as 0.
fn format_time(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    match d.subsec_nanos() {
        0 => d.as_secs().to_string(),
        n => format!("{}.{n:09}", d.as_secs()),
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
    fn times_keep_their_nanoseconds() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let m = PosixMeta {
            mtime: Some(t),
            ctime: Some(t + Duration::from_nanos(1)),
            ..PosixMeta::default()
        };
        let pairs = m.to_pairs();
        assert!(pairs.contains(&(MTIME, "1700000000.123456789".to_string())));
        let back = PosixMeta::from_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(back, m, "exact to the nanosecond after a round trip");
        let read = |v: &str| PosixMeta::from_pairs([("ctime", v)]).ctime;
        let at = |s, n| Some(UNIX_EPOCH + Duration::new(s, n));
        assert_eq!(read("12.5"), at(12, 500_000_000));
        assert_eq!(
            read("12.0000000019"),
            at(12, 1),
            "digits past nanoseconds are dropped"
        );
        assert_eq!(read("12."), at(12, 0));
        assert_eq!(read("12.x"), None);
        assert_eq!(read("1e9"), None);
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
        let stored = PosixMeta::from_stored([("uid", "7")]);
        assert_eq!(
            stored.xattrs,
            Some(Default::default()),
            "known to have none"
        );
        let junk = PosixMeta::from_stored([("XATTR", "%7B")]);
        assert_eq!(junk.xattrs, None, "unreadable: unknown, never rewritten");
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
