//! `cloudmount status`: the cloudmount mounts of this mount namespace (from
//! /proc/self/mountinfo), each with what its daemon reports through its control socket.

use clap::Args;
use cloudmount::daemon;

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print each daemon's report as it sends it (`key=value` lines), for scripts.
    #[arg(long)]
    pub raw: bool,
}

/// One mount's report, as `key=value` pairs.
fn field<'a>(report: &'a str, key: &str) -> &'a str {
    report
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or("")
}

/// Bytes in MiB/GiB for people.
fn human(bytes: &str) -> String {
    let Ok(n) = bytes.parse::<u64>() else {
        return bytes.to_string();
    };
    if n >= 1 << 30 {
        format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    }
}

/// List the mounts; exit non-zero when a daemon does not answer.
pub fn run(args: StatusArgs) -> Result<(), String> {
    let mounts = daemon::cloudmount_mounts();
    if mounts.is_empty() {
        println!("no cloudmount mounts");
        return Ok(());
    }
    let mut silent = 0;
    for (mountpoint, source) in &mounts {
        let socket = daemon::control_socket(mountpoint);
        let report = match daemon::query_status(&socket) {
            Ok(r) => r,
            Err(e) => {
                silent += 1;
                println!(
                    "{source} on {}\n  no answer from the daemon ({}: {e}); if it died, \
                     `cloudmount unmount --lazy {}` clears the mount, or it was mounted by \
                     another user",
                    mountpoint.display(),
                    socket.display(),
                    mountpoint.display()
                );
                continue;
            }
        };
        if args.raw {
            print!("{report}");
            println!();
            continue;
        }
        let cache = match field(&report, "cache_dir") {
            "" => "off".to_string(),
            dir => format!(
                "{} of {} in {dir}",
                human(field(&report, "cache_used")),
                human(field(&report, "cache_limit"))
            ),
        };
        let last = match field(&report, "last_error") {
            "" => String::new(),
            e => format!(" (last: {e})"),
        };
        let lost = match field(&report, "lost_found") {
            "" | "0" => String::new(),
            n => format!(
                "\n  {n} file(s) set aside in {} (not uploaded: see the daemon's log)",
                field(&report, "lost_found_dir")
            ),
        };
        let offline = match field(&report, "offline_since") {
            "" => String::new(),
            since => format!(
                "\n  offline since {since}: the store does not answer ({}); serving cached data",
                field(&report, "offline_reason")
            ),
        };
        let unsent = match field(&report, "unsent") {
            "" | "0" => String::new(),
            n => format!("\n  {n} closed file(s) journaled, waiting for the store"),
        };
        println!(
            "{source} on {}\n  pid {}, up {} s{offline}\n  cache {cache}\n  open for writing {}, \
             uploads in flight {}{unsent}\n  errors {}{last}{lost}",
            mountpoint.display(),
            field(&report, "pid"),
            field(&report, "uptime_s"),
            field(&report, "open_for_writing"),
            field(&report, "uploads_in_flight"),
            field(&report, "errors"),
        );
    }
    if silent > 0 {
        return Err(format!("{silent} mount(s) did not answer"));
    }
    Ok(())
}
