//! What the mount does, in numbers: the counters no other part owns (backend requests by
//! operation and outcome, FUSE operations, errors by errno), plus [`Snapshot`], the one
//! picture of every number that `-o metrics=` (Prometheus text, [`prometheus`]) and the
//! control socket (JSON) both print. Counters owned elsewhere (the block cache's hits, the
//! read path's bytes, uploads) stay with their owners and are read into the snapshot.
//!
//! Recording is a few relaxed atomic adds behind a read lock, so it is always on: `stats`
//! needs it with or without the Prometheus endpoint.

mod histogram;
pub mod prometheus;
mod snapshot;

pub use histogram::{Histogram, HistogramSnapshot, BUCKETS};
pub use snapshot::{CacheNumbers, OpNumbers, Snapshot, UploadNumbers};

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Count and latency of one (operation, outcome) pair.
#[derive(Debug, Default)]
struct OpStat {
    latency: Histogram,
}

/// Operations by name and outcome, each with its latency histogram.
#[derive(Debug, Default)]
pub struct OpTable {
    ops: RwLock<HashMap<(&'static str, &'static str), Arc<OpStat>>>,
}

impl OpTable {
    /// Record one `op` that ended with `outcome` after `took`.
    pub fn record(&self, op: &'static str, outcome: &'static str, took: Duration) {
        let found = self
            .ops
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(op, outcome))
            .cloned();
        let stat = match found {
            Some(s) => s,
            None => self
                .ops
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .entry((op, outcome))
                .or_default()
                .clone(),
        };
        stat.latency.observe(took);
    }

    /// Every pair seen so far, sorted by operation and outcome.
    pub fn snapshot(&self) -> Vec<OpNumbers> {
        let ops = self.ops.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<OpNumbers> = ops
            .iter()
            .map(|(&(op, outcome), s)| OpNumbers {
                op: op.to_string(),
                outcome: outcome.to_string(),
                latency: s.latency.snapshot(),
            })
            .collect();
        out.sort_by(|a, b| (&a.op, &a.outcome).cmp(&(&b.op, &b.outcome)));
        out
    }
}

/// The counters of one mount that no other part owns.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests to the store, by backend operation and outcome (`ok` or the error's kind).
    pub backend: OpTable,
    /// FUSE operations, by operation (their outcome is empty: errors are counted by errno).
    pub fuse: OpTable,
    /// Errors answered to the kernel, by errno.
    errnos: Mutex<BTreeMap<i32, u64>>,
}

impl Metrics {
    /// A fresh set of counters.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    /// Count one error answered with `errno`.
    pub fn errno(&self, errno: i32) {
        *self
            .errnos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(errno)
            .or_default() += 1;
    }

    /// Errors answered so far, by errno name (`ENOENT`) or number when it has no name here.
    pub fn errnos(&self) -> BTreeMap<String, u64> {
        self.errnos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(&e, &n)| (errno_name(e), n))
            .collect()
    }
}

/// The symbolic name of `errno`, for labels people read.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::ENODATA => "ENODATA",
        libc::ENOTSUP => "ENOTSUP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ESTALE => "ESTALE",
        libc::E2BIG => "E2BIG",
        libc::ECANCELED => "ECANCELED",
        libc::ENOTCONN => "ENOTCONN",
        libc::EINTR => "EINTR",
        libc::ELOOP => "ELOOP",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EDQUOT => "EDQUOT",
        _ => return errno.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_counted_by_name_and_outcome() {
        let m = Metrics::new();
        m.backend.record("get", "ok", Duration::from_millis(3));
        m.backend.record("get", "ok", Duration::from_millis(30));
        m.backend
            .record("head", "not_found", Duration::from_micros(10));
        let s = m.backend.snapshot();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].op.as_str(), s[0].outcome.as_str()), ("get", "ok"));
        assert_eq!(s[0].latency.count, 2);
        assert!((s[0].latency.sum_s - 0.033).abs() < 1e-9);
        assert_eq!(s[1].latency.count, 1);
        m.errno(libc::ENOENT);
        m.errno(libc::ENOENT);
        m.errno(4242);
        let e = m.errnos();
        assert_eq!(e.get("ENOENT"), Some(&2));
        assert_eq!(e.get("4242"), Some(&1));
    }
}
