//! A latency histogram of fixed buckets, updated with relaxed atomic adds.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (a last, unbounded one is implied): from a
/// cached FUSE answer (tens of µs) to a slow store request (tens of seconds).
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// Counts of observations per bucket, their sum and count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

/// A histogram's numbers at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_s: f64,
    /// Observations at or below each bound of [`BUCKETS`] (cumulative, as Prometheus wants).
    pub cumulative: Vec<u64>,
}

impl Histogram {
    /// Add one observation.
    pub fn observe(&self, took: Duration) {
        let s = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| s <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(
            u64::try_from(took.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// The numbers now.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = Vec::with_capacity(BUCKETS.len());
        let mut total = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            total += b.load(Ordering::Relaxed);
            if i < BUCKETS.len() {
                cumulative.push(total);
            }
        }
        HistogramSnapshot {
            count: total,
            sum_s: self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
            cumulative,
        }
    }
}

impl HistogramSnapshot {
    /// The smallest bucket bound at or above which fraction `q` of the observations lie
    /// (an upper estimate of the quantile; `None` with no observations, infinity past the
    /// last bound).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let want = (q * self.count as f64).ceil() as u64;
        Some(
            self.cumulative
                .iter()
                .zip(BUCKETS)
                .find(|(&c, _)| c >= want)
                .map_or(f64::INFINITY, |(_, b)| b),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_quantiles_bounded() {
        let h = Histogram::default();
        for ms in [1, 1, 1, 20, 200] {
            h.observe(Duration::from_millis(ms));
        }
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 6);
        assert_eq!(s.cumulative.len(), BUCKETS.len());
        assert_eq!(s.cumulative[2], 3, "three at or below 1 ms");
        assert_eq!(
            *s.cumulative.last().unwrap(),
            5,
            "60 s is past the last bound"
        );
        assert_eq!(s.quantile(0.5), Some(0.001));
        assert_eq!(s.quantile(0.8), Some(0.25));
        assert_eq!(s.quantile(1.0), Some(f64::INFINITY));
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }
}
