//! A [`Snapshot`] in the Prometheus text format, through `prometheus-client`'s encoder, every
//! series labelled with the mount point (`mount="/srv/data"`).

use super::{OpNumbers, Snapshot, BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::fmt::Error;

/// The text a scrape of `/metrics` gets.
pub fn encode(s: &Snapshot) -> Result<String, Error> {
    let mut registry = Registry::with_prefix_and_labels(
        "cloudmount",
        [(Cow::Borrowed("mount"), Cow::Owned(s.mountpoint.clone()))].into_iter(),
    );
    registry.register_collector(Box::new(Numbers(s.clone())));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Numbers(Snapshot);

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), Error> {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> Result<(), Error> {
    let g = ConstGauge::new(v as i64);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A histogram per (op, outcome), as one family.
fn ops(e: &mut DescriptorEncoder, name: &str, help: &str, t: &[OpNumbers]) -> Result<(), Error> {
    let mut m: MetricEncoder = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for o in t {
        let mut labels = vec![("op", o.op.as_str())];
        if !o.outcome.is_empty() {
            labels.push(("status", o.outcome.as_str()));
        }
        let mut buckets: Vec<(f64, u64)> = Vec::with_capacity(BUCKETS.len() + 1);
        let mut below = 0;
        for (&bound, &cum) in BUCKETS.iter().zip(&o.latency.cumulative) {
            buckets.push((bound, cum - below));
            below = cum;
        }
        buckets.push((f64::INFINITY, o.latency.count.saturating_sub(below)));
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            o.latency.sum_s,
            o.latency.count,
            &buckets,
            None,
        )?;
    }
    Ok(())
}

impl Collector for Numbers {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), Error> {
        let s = &self.0;
        let e = &mut e;
        gauge(
            e,
            "store_online",
            "1 while the store answers, 0 while offline",
            u64::from(s.online),
        )?;
        ops(
            e,
            "backend_request_duration_seconds",
            "Requests to the store by operation and status",
            &s.backend,
        )?;
        counter(
            e,
            "backend_bytes",
            "Bytes received from the store for reads",
            s.backend_bytes,
        )?;
        counter(
            e,
            "cache_served_bytes",
            "Bytes served from the block cache",
            s.cache.bytes_served,
        )?;
        counter(
            e,
            "cache_hits",
            "Blocks served from the block cache",
            s.cache.hits,
        )?;
        counter(
            e,
            "cache_misses",
            "Block lookups the cache could not answer",
            s.cache.misses,
        )?;
        counter(
            e,
            "cache_evictions",
            "Blocks evicted to stay under the cache limit",
            s.cache.evictions,
        )?;
        counter(
            e,
            "cache_write_errors",
            "Blocks that could not be written to the cache",
            s.cache.write_errors,
        )?;
        gauge(
            e,
            "cache_size_bytes",
            "Bytes in the block cache",
            s.cache.used_bytes,
        )?;
        gauge(
            e,
            "cache_limit_bytes",
            "The block cache limit (cache_size)",
            s.cache.limit_bytes,
        )?;
        counter(
            e,
            "readahead_resets",
            "Read-ahead windows dropped by a non-sequential read",
            s.readahead_resets,
        )?;
        gauge(
            e,
            "open_for_writing",
            "Files open for writing",
            s.uploads.open_for_writing,
        )?;
        gauge(
            e,
            "uploads_pending",
            "Uploads running now",
            s.uploads.in_flight,
        )?;
        counter(
            e,
            "uploads_completed",
            "Uploads that reached the store",
            s.uploads.completed,
        )?;
        counter(
            e,
            "uploads_failed",
            "Uploads that failed (the data stays staged)",
            s.uploads.failed,
        )?;
        gauge(
            e,
            "journal_entries",
            "Closed files journaled, not yet on the store",
            s.uploads.journal_entries,
        )?;
        gauge(
            e,
            "lost_found_files",
            "Files set aside in lost+found",
            s.uploads.lost_found,
        )?;
        ops(
            e,
            "fuse_op_duration_seconds",
            "FUSE operations by operation and status",
            &s.fuse,
        )?;
        gauge(
            e,
            "memory_budget_used_bytes",
            "Read-ahead memory budget in use",
            s.memory_used_bytes,
        )?;
        gauge(
            e,
            "memory_budget_limit_bytes",
            "Read-ahead memory budget (max_memory)",
            s.memory_limit_bytes,
        )?;
        let mut m = e.encode_descriptor(
            "errors",
            "Errors answered to programs by errno",
            None,
            MetricType::Counter,
        )?;
        for (errno, &n) in &s.errors_by_errno {
            let labels = [("errno", errno.as_str())];
            ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::time::Duration;

    #[test]
    fn text_has_labelled_series() {
        let m = Metrics::new();
        m.backend.record("get", "ok", Duration::from_millis(2));
        m.backend
            .record("get", "not_found", Duration::from_millis(40));
        m.fuse.record("read", "", Duration::from_micros(50));
        m.errno(libc::ENOENT);
        let mut s = Snapshot {
            mountpoint: "/srv/x".into(),
            online: true,
            backend: m.backend.snapshot(),
            fuse: m.fuse.snapshot(),
            errors_by_errno: m.errnos(),
            ..Default::default()
        };
        s.cache.hits = 7;
        let text = encode(&s).unwrap();
        for want in [
            "# TYPE cloudmount_backend_request_duration_seconds histogram",
            "cloudmount_backend_request_duration_seconds_count{mount=\"/srv/x\",op=\"get\",status=\"ok\"} 1",
            "cloudmount_backend_request_duration_seconds_bucket{mount=\"/srv/x\",le=\"0.0025\",op=\"get\",status=\"ok\"} 1",
            "cloudmount_backend_request_duration_seconds_bucket{mount=\"/srv/x\",le=\"0.025\",op=\"get\",status=\"not_found\"} 0",
            "cloudmount_backend_request_duration_seconds_bucket{mount=\"/srv/x\",le=\"+Inf\",op=\"get\",status=\"not_found\"} 1",
            "cloudmount_cache_hits_total{mount=\"/srv/x\"} 7",
            "cloudmount_store_online{mount=\"/srv/x\"} 1",
            "cloudmount_fuse_op_duration_seconds_count{mount=\"/srv/x\",op=\"read\"} 1",
            "cloudmount_errors_total{mount=\"/srv/x\",errno=\"ENOENT\"} 1",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
