//! `cloudmount stats MOUNTPOINT [--json] [--watch]`: what a mount's daemon counted, as a
//! table with rates (from two samples `--interval` apart), or as the daemon's JSON.

use clap::Args;
use cloudmount::metrics::{OpNumbers, Snapshot};
use indicatif::HumanBytes;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The mount point (or any path on the mount).
    pub mountpoint: PathBuf,
    /// Print the daemon's numbers as one JSON object (no rates), for scripts.
    #[arg(long)]
    pub json: bool,
    /// Print a new table every interval until interrupted.
    #[arg(long)]
    pub watch: bool,
    /// Seconds between the two samples rates are computed from (and between tables with
    /// --watch).
    #[arg(long, default_value_t = 1.0)]
    pub interval: f64,
}

/// Print the numbers.
pub fn run(args: StatsArgs) -> Result<(), String> {
    let m = super::control::mount_of(&args.mountpoint)?;
    let sample = || -> Result<Snapshot, String> {
        let text = super::control::ask(&m, "metrics")?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "the daemon of {} sent numbers this cloudmount cannot read ({e}); is it an \
                 older version?",
                m.mountpoint.display()
            )
        })
    };
    if args.json {
        let s = sample()?;
        let json = serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?;
        return out(&(json + "\n"));
    }
    if !(args.interval.is_finite() && args.interval > 0.0 && args.interval <= 3600.0) {
        return Err(format!(
            "--interval must be between 0 and 3600 seconds, not {}",
            args.interval
        ));
    }
    let every = Duration::from_secs_f64(args.interval);
    let mut before = sample()?;
    loop {
        std::thread::sleep(every);
        let now = sample()?;
        out(&table(&before, &now))?;
        if !args.watch {
            return Ok(());
        }
        out("\n")?;
        before = now;
    }
}

/// Write to standard output; a closed pipe (`| head`) ends the command instead of a panic.
fn out(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())
        .and_then(|()| o.flush())
        .map_err(|e| format!("cannot write to standard output: {e}"))
}

/// Per second between the two samples.
fn rate(before: u64, now: u64, secs: f64) -> f64 {
    now.saturating_sub(before) as f64 / secs.max(1e-3)
}

/// A latency bound for people: `≤ 5 ms`.
fn bound(s: Option<f64>) -> String {
    match s {
        None => "-".into(),
        Some(s) if s.is_infinite() => "> 30 s".into(),
        Some(s) if s < 1e-3 => format!("≤ {:.0} µs", s * 1e6),
        Some(s) if s < 1.0 => format!("≤ {:.1} ms", s * 1e3),
        Some(s) => format!("≤ {s:.0} s"),
    }
}

/// The rows of one operation table: count, rate, p50 and p99 per operation (outcomes added).
fn op_rows(out: &mut String, before: &[OpNumbers], now: &[OpNumbers], secs: f64) {
    let mut ops: Vec<&str> = now.iter().map(|o| o.op.as_str()).collect();
    ops.dedup();
    for op in ops {
        let total = |t: &[OpNumbers]| -> u64 {
            t.iter()
                .filter(|o| o.op == op)
                .map(|o| o.latency.count)
                .sum()
        };
        let failed: u64 = now
            .iter()
            .filter(|o| o.op == op && !o.outcome.is_empty() && o.outcome != "ok")
            .map(|o| o.latency.count)
            .sum();
        let main = now
            .iter()
            .filter(|o| o.op == op)
            .max_by_key(|o| o.latency.count);
        let (p50, p99) = main.map_or((None, None), |o| {
            (o.latency.quantile(0.5), o.latency.quantile(0.99))
        });
        let failed = if failed > 0 {
            format!("  ({failed} failed)")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {op:<20} {:>10} {:>9.1}/s  p50 {:<9} p99 {:<9}{failed}",
            total(now),
            rate(total(before), total(now), secs),
            bound(p50),
            bound(p99),
        );
    }
}

/// The table of `now`, with rates since `before`.
fn table(before: &Snapshot, now: &Snapshot) -> String {
    let secs = now.uptime_s - before.uptime_s;
    let mut out = String::new();
    let online = if now.online { "online" } else { "OFFLINE" };
    let _ = writeln!(
        out,
        "{} on {}: up {:.0} s, store {online}",
        now.source, now.mountpoint, now.uptime_s
    );
    let c = &now.cache;
    let bytes = |label: &str, b: u64, n: u64| {
        format!(
            "{label:<22} {:>12} {:>10}/s\n",
            HumanBytes(n).to_string(),
            HumanBytes(rate(b, n, secs) as u64).to_string()
        )
    };
    out.push_str(&bytes(
        "bytes from the store",
        before.backend_bytes,
        now.backend_bytes,
    ));
    out.push_str(&bytes(
        "bytes from the cache",
        before.cache.bytes_served,
        c.bytes_served,
    ));
    if c.enabled {
        let lookups = c.hits + c.misses;
        let ratio = if lookups == 0 {
            "-".to_string()
        } else {
            format!("{:.1} %", 100.0 * c.hits as f64 / lookups as f64)
        };
        let _ = writeln!(
            out,
            "cache                  {} of {}, hits {} ({:.1}/s), misses {} ({:.1}/s), hit ratio {ratio}, evictions {}",
            HumanBytes(c.used_bytes),
            HumanBytes(c.limit_bytes),
            c.hits,
            rate(before.cache.hits, c.hits, secs),
            c.misses,
            rate(before.cache.misses, c.misses, secs),
            c.evictions
        );
    } else {
        out.push_str("cache                  off\n");
    }
    let u = &now.uploads;
    let _ = writeln!(
        out,
        "uploads                {} running, {} done, {} failed; {} open for writing, {} journaled, {} in lost+found",
        u.in_flight, u.completed, u.failed, u.open_for_writing, u.journal_entries, u.lost_found
    );
    let _ = writeln!(
        out,
        "read-ahead             {} window resets; memory {} of {}",
        now.readahead_resets,
        HumanBytes(now.memory_used_bytes),
        HumanBytes(now.memory_limit_bytes)
    );
    let _ = writeln!(
        out,
        "store requests         {:>10} {:>9.1}/s",
        Snapshot::count(&now.backend),
        rate(
            Snapshot::count(&before.backend),
            Snapshot::count(&now.backend),
            secs
        )
    );
    op_rows(&mut out, &before.backend, &now.backend, secs);
    let _ = writeln!(
        out,
        "FUSE operations        {:>10} {:>9.1}/s",
        Snapshot::count(&now.fuse),
        rate(
            Snapshot::count(&before.fuse),
            Snapshot::count(&now.fuse),
            secs
        )
    );
    op_rows(&mut out, &before.fuse, &now.fuse, secs);
    if !now.errors_by_errno.is_empty() {
        let list: Vec<String> = now
            .errors_by_errno
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        let _ = writeln!(out, "errors answered        {}", list.join(", "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudmount::metrics::Metrics;

    #[test]
    fn the_table_shows_counts_and_rates() {
        let m = Metrics::new();
        m.backend
            .record("get_range", "ok", Duration::from_millis(4));
        let before = Snapshot {
            source: "s3://b".into(),
            mountpoint: "/m".into(),
            uptime_s: 10.0,
            online: true,
            backend: m.backend.snapshot(),
            ..Default::default()
        };
        m.backend
            .record("get_range", "ok", Duration::from_millis(4));
        m.backend
            .record("get_range", "not_found", Duration::from_millis(1));
        m.errno(libc::ENOENT);
        let mut now = before.clone();
        now.uptime_s = 12.0;
        now.backend = m.backend.snapshot();
        now.backend_bytes = 4 << 20;
        now.errors_by_errno = m.errnos();
        let t = table(&before, &now);
        assert!(
            t.starts_with("s3://b on /m: up 12 s, store online\n"),
            "{t}"
        );
        assert!(t.contains("4.00 MiB"), "{t}");
        assert!(t.contains("2.00 MiB/s"), "{t}");
        assert!(
            t.contains("  get_range                     3       1.0/s  p50 ≤ 5.0 ms"),
            "{t}"
        );
        assert!(t.contains("(1 failed)"), "{t}");
        assert!(t.contains("errors answered        ENOENT 1"), "{t}");
    }
}
