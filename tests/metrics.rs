//! Metrics, `stats`, `log-level` and `warm` on real mounts of moto.
//! - The Prometheus endpoint is scraped during a workload: a cold read raises the bytes from
//!   the store; a cached re-read raises cache hits and not those bytes; a refused upload raises
//!   the failures; the JSON of `stats --json` carries the same numbers.
//! - `log-level` turns debug lines on in a running daemon.
//! - `warm` fetches a tree; then, with the server gone, every file reads from the cache. Its
//!   progress is checked in plain mode and on a pseudo-terminal, and a set larger than the
//!   cache is refused.

mod harness;
mod support;

use harness::{bin, run_bounded, MountCmd, Mounted};
use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;
use support::fault_proxy::{Fault, FaultProxy};

/// The body of `GET /metrics` on `port`.
fn scrape(port: u16) -> String {
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect metrics");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read metrics");
    assert!(
        text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
        "{text}"
    );
    text
}

/// The sum of the samples of `name` whose labels include every one of `labels`.
fn value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, v) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| v.parse::<f64>().ok())?
        })
        .sum()
}

fn cloudmount(args: &[&str]) -> (bool, String, String) {
    let out = run_bounded(Command::new(bin()).args(args), Duration::from_secs(120));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `stats --json` of the mount at `m`.
fn stats_json(m: &Mounted) -> serde_json::Value {
    let (ok, out, err) = cloudmount(&["stats", m.path.to_str().expect("utf8"), "--json"]);
    assert!(ok, "stats --json failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn counters_move_with_a_real_workload() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("metrics");
    let big = harness::pattern(3 << 20, 3);
    s3.put_objects(
        "metrics",
        vec![("data/big.bin".into(), bytes::Bytes::from(big.clone()))],
    );
    let proxy = FaultProxy::start(&format!("127.0.0.1:{}", s3.port));
    let port = support::free_port();
    let metrics = format!("metrics=127.0.0.1:{port}");
    let m = MountCmd::s3_via(&s3, &proxy.endpoint(), "metrics", &[&metrics]).mount();

    let before = scrape(port);
    assert!(
        before.contains(&format!("mount=\"{}\"", m.path.display())),
        "{before}"
    );
    assert_eq!(value(&before, "cloudmount_store_online", &[]), 1.0);

    // A cold read: bytes come from the store.
    assert!(std::fs::read(m.p("data/big.bin")).expect("read") == big);
    let cold = scrape(port);
    let store_bytes = value(&cold, "cloudmount_backend_bytes_total", &[]);
    assert!(store_bytes >= big.len() as f64, "{store_bytes}\n{cold}");
    assert!(
        value(
            &cold,
            "cloudmount_backend_request_duration_seconds_count",
            &["op=\"get_range\"", "status=\"ok\""]
        ) >= 1.0,
        "{cold}"
    );
    assert!(
        value(
            &cold,
            "cloudmount_fuse_op_duration_seconds_count",
            &["op=\"read\""]
        ) >= 1.0
    );
    assert!(
        value(
            &cold,
            "cloudmount_fuse_op_duration_seconds_bucket",
            &["op=\"read\"", "le=\"+Inf\""]
        ) >= 1.0
    );

    // Until every block is on disk (kernel read-ahead may leave holes), read again.
    let cached = support::wait_until(Duration::from_secs(20), || {
        let now = scrape(port);
        let done = value(&now, "cloudmount_cache_size_bytes", &[]) >= big.len() as f64;
        if !done {
            support::drop_pages(&m.p("data/big.bin"));
            let _ = std::fs::read(m.p("data/big.bin"));
        }
        done
    });
    assert!(
        cached,
        "the file never reached the cache:\n{}",
        scrape(port)
    );

    // A cached re-read: cache hits rise, bytes from the store do not.
    let warm = scrape(port);
    support::drop_pages(&m.p("data/big.bin"));
    assert!(std::fs::read(m.p("data/big.bin")).expect("re-read") == big);
    let after = scrape(port);
    let hits = |t: &str| value(t, "cloudmount_cache_hits_total", &[]);
    let served = |t: &str| value(t, "cloudmount_cache_served_bytes_total", &[]);
    let fetched = |t: &str| value(t, "cloudmount_backend_bytes_total", &[]);
    println!(
        "re-read: cache hits {} -> {}, cache bytes {} -> {}, store bytes {} -> {}",
        hits(&warm),
        hits(&after),
        served(&warm),
        served(&after),
        fetched(&warm),
        fetched(&after)
    );
    assert!(hits(&after) > hits(&warm), "{after}");
    assert!(
        served(&after) >= served(&warm) + big.len() as f64 - 1.0,
        "{after}"
    );
    assert_eq!(
        fetched(&after),
        fetched(&warm),
        "a cached re-read fetched from the store"
    );

    // A missing name counts an ENOENT.
    assert!(std::fs::metadata(m.p("data/none")).is_err());
    assert!(
        value(
            &scrape(port),
            "cloudmount_errors_total",
            &["errno=\"ENOENT\""]
        ) >= 1.0
    );

    // An upload the store refuses counts a failure.
    let failed_before = value(&scrape(port), "cloudmount_uploads_failed_total", &[]);
    proxy.set(Fault::Forbidden403, "PUT");
    let mut f = std::fs::File::create(m.p("data/refused.txt")).expect("create");
    f.write_all(b"the store says no\n").expect("write");
    let _ = f.sync_all();
    drop(f);
    let failed = support::wait_until(Duration::from_secs(30), || {
        value(&scrape(port), "cloudmount_uploads_failed_total", &[]) > failed_before
    });
    let refused = scrape(port);
    proxy.clear();
    assert!(failed, "no failed upload counted:\n{refused}");
    assert!(
        value(
            &refused,
            "cloudmount_backend_request_duration_seconds_count",
            &["status=\"denied\""]
        ) >= 1.0,
        "{refused}"
    );

    // The control socket's JSON has the same numbers.
    let json = stats_json(&m);
    assert_eq!(json["mountpoint"], m.path.display().to_string());
    assert!(json["cache"]["hits"].as_f64().unwrap_or(0.0) >= hits(&after));
    assert!(
        json["uploads"]["failed"].as_u64().unwrap_or(0) >= 1,
        "{json}"
    );
    // And the table shows them with rates.
    let (ok, table, err) =
        cloudmount(&["stats", m.path.to_str().expect("utf8"), "--interval", "0.2"]);
    assert!(ok, "{err}");
    for want in [
        "bytes from the store",
        "cache ",
        "hit ratio",
        "store requests",
        "get_range",
        "FUSE operations",
        "/s",
        "ENOENT",
    ] {
        assert!(table.contains(want), "{want:?} missing from\n{table}");
    }
    // Any other path is a 404 that names /metrics.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
    let mut text = String::new();
    conn.read_to_string(&mut text).expect("read");
    assert!(
        text.contains(" 404 ") && text.contains("/metrics"),
        "{text}"
    );
}

#[test]
fn log_level_changes_at_runtime() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("loglevel");
    let m = MountCmd::s3(&s3, "loglevel", &[]).mount();
    let _ = std::fs::metadata(m.p("quiet-miss"));
    assert!(
        !m.log_text().contains("DEBUG"),
        "debug lines before asking:\n{}",
        m.log_text()
    );
    let mp = m.path.to_str().expect("utf8");
    let (ok, out, err) = cloudmount(&["log-level", mp, "debug"]);
    assert!(ok, "{err}");
    assert!(out.contains("log level now cloudmount=debug"), "{out}");
    let _ = std::fs::metadata(m.p("loud-miss"));
    let seen = support::wait_until(Duration::from_secs(10), || m.log_text().contains("DEBUG"));
    assert!(
        seen,
        "no debug line after log-level debug:\n{}",
        m.log_text()
    );
    let (ok, _, err) = cloudmount(&["log-level", mp, "nonsense=level=x"]);
    assert!(!ok);
    assert!(err.contains("neither a level"), "{err}");
    let (ok, _, err) = cloudmount(&["log-level", "/", "debug"]);
    assert!(!ok && err.contains("not on a cloudmount mount"), "{err}");
}

#[test]
fn warm_fills_the_cache_for_reads_without_the_server() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("warm");
    let big = harness::pattern(5 << 20, 9);
    let mut files = vec![("tree/big.bin".to_string(), big.clone())];
    for i in 0..6 {
        files.push((
            format!("tree/sub/img{i}.jpg"),
            harness::pattern(100_000 + i, i as u32),
        ));
    }
    s3.put_objects(
        "warm",
        files
            .iter()
            .map(|(k, v)| (k.clone(), bytes::Bytes::from(v.clone())))
            .collect(),
    );
    let mut proxy = FaultProxy::start(&format!("127.0.0.1:{}", s3.port));
    let m = MountCmd::s3_via(
        &s3,
        &proxy.endpoint(),
        "warm",
        &["attr_timeout=1", "entry_timeout=1", "dir_cache_timeout=1"],
    )
    .mount();
    let mp = m.path.to_str().expect("utf8").to_string();

    // Plain mode (stderr is a pipe): plain lines, no bar.
    let (ok, _, err) = cloudmount(&["warm", &format!("{mp}/tree/sub"), "--jobs", "3"]);
    assert!(ok, "warm failed: {err}");
    assert!(err.contains("warming 6 file(s)"), "{err}");
    assert!(err.contains("warmed 6/6 files"), "{err}");
    assert!(
        !err.contains('\r') && !err.contains("\x1b["),
        "plain mode drew a bar: {err:?}"
    );

    // On a pseudo-terminal: a progress bar, through a list file.
    let list = m.dir.path().join("list.txt");
    std::fs::write(
        &list,
        format!("{mp}/tree/big.bin\n\n{mp}/tree/sub/img0.jpg\n"),
    )
    .expect("list");
    let pty = run_bounded(
        Command::new("script").args([
            "-qfec",
            &format!("{} warm --list {}", bin(), list.display()),
            "/dev/null",
        ]),
        Duration::from_secs(120),
    );
    let shown = String::from_utf8_lossy(&pty.stdout).into_owned();
    assert!(pty.status.success(), "warm on a pty failed: {shown}");
    assert!(shown.contains("warming 2 file(s)"), "{shown:?}");
    assert!(
        shown.contains("files") && (shown.contains('\r') || shown.contains("\x1b[")),
        "no bar on a terminal: {shown:?}"
    );
    assert!(shown.contains("warmed 2/2 files"), "{shown:?}");

    // The server goes away; every TTL runs out; every file reads from the cache.
    proxy.go_away();
    std::thread::sleep(Duration::from_millis(2500));
    for (k, v) in &files {
        let p = m.p(k);
        support::drop_pages(&p);
        let got = std::fs::read(&p)
            .unwrap_or_else(|e| panic!("read {k} offline: {e}\nlog:\n{}", m.log_text()));
        assert!(got == *v, "{k} differs");
    }
    proxy.come_back();

    // A set larger than the cache is refused before anything is fetched.
    let small = MountCmd::s3_via(&s3, &proxy.endpoint(), "warm", &["cache_size=4M"]).mount();
    let (ok, _, err) = cloudmount(&["warm", small.path.to_str().expect("utf8")]);
    assert!(!ok);
    assert!(
        err.contains("do not fit the cache") && err.contains("cache_size"),
        "{err}"
    );
    let (ok, _, err) = cloudmount(&["warm", "/etc/hostname"]);
    assert!(!ok && err.contains("not on a cloudmount mount"), "{err}");
}

#[test]
fn a_metrics_port_already_taken_fails_the_mount_and_names_the_option() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let metrics = format!("metrics=127.0.0.1:{port}");
    let (code, err) = MountCmd::s3(&s3, "taken", &[&metrics]).mount_err();
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("cannot serve metrics on 127.0.0.1:{port}"))
            && err.contains("-o metrics="),
        "{err}"
    );
}
