//! The fault matrix: a real mount of moto through a proxy that breaks every request in one
//! way at a time (tests/support/fault_proxy.rs), and, for each fault, stat, ls, open+read, a
//! sequential read, write+close, rename and unlink through the mount. Recorded per cell: the
//! result, how long it took, and, once the fault is cleared (the server back), how long until
//! the same operation worked again. Pass conditions:
//! - every operation ends within its bound (no request outlives its deadline);
//! - a read that succeeds returns exactly the object's bytes (a short or cut body is never
//!   served as content);
//! - whatever a close accepted reaches the server;
//! - the mount recovers by itself once the fault is gone.
//!
//! The table is written to `$CARGO_TARGET_TMPDIR/faults.md` at every run, and to
//! `docs/faults.md` with `UPDATE_DOCS=1`.

mod harness;
mod support;

use harness::{pattern, MountCmd};
use object_store::ObjectStoreExt;
use std::io::Write;
use std::os::unix::io::IntoRawFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::fault_proxy::{Fault, FaultProxy};

const OPS: [&str; 7] = [
    "stat",
    "ls",
    "open+read",
    "sequential read",
    "write+close",
    "rename",
    "unlink",
];
/// Longest any one operation may take under a fault: request_timeout (2 s) × 3 tries plus
/// backoff, for the few requests one operation makes in a row.
const OP_BOUND: Duration = Duration::from_secs(30);
/// Longest the mount may take to work again once the fault is gone.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
const BIG: usize = 3 << 20;

fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EIO) => "EIO".into(),
        Some(libc::ENETUNREACH) => "ENETUNREACH".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::ENOENT) => "ENOENT".into(),
        Some(libc::ESTALE) => "ESTALE".into(),
        Some(libc::ETIMEDOUT) => "ETIMEDOUT".into(),
        Some(libc::ENOTCONN) => "ENOTCONN".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// Write `data` to `path` and close it, with the close's own result.
fn write_close(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    let fd = f.into_raw_fd();
    // SAFETY: `fd` is owned here and closed once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The objects one fault's row works on, under `tag/`.
struct Row {
    dir: PathBuf,
    small: Vec<u8>,
    big: Vec<u8>,
}

/// What one operation did: `Ok(())`, an error, or wrong data (never allowed).
type Outcome = Result<(), String>;

/// Run operation `op` of `row` (attempt `n`, so writes and renames have fresh names).
fn run_op(op: &str, row: &Row, n: usize) -> Outcome {
    let io = |e: std::io::Error| errno_name(&e);
    let d = &row.dir;
    match op {
        "stat" => {
            let m = std::fs::metadata(d.join("small.txt")).map_err(io)?;
            if m.len() != row.small.len() as u64 {
                return Err(format!("WRONG SIZE {}", m.len()));
            }
        }
        "ls" => {
            let n = std::fs::read_dir(d.join("dir")).map_err(io)?.count();
            if n != 3 {
                return Err(format!("WRONG LISTING ({n} entries)"));
            }
        }
        "open+read" => {
            if std::fs::read(d.join("small.txt")).map_err(io)? != row.small {
                return Err("WRONG DATA".into());
            }
        }
        "sequential read" => {
            if std::fs::read(d.join("big.bin")).map_err(io)? != row.big {
                return Err("WRONG DATA".into());
            }
        }
        "write+close" => {
            write_close(&d.join(format!("new{n}.txt")), &pattern(100_000, n as u32)).map_err(io)?
        }
        "rename" => {
            // Under the fault: ren.txt → ren1.txt; afterwards whichever of them exists moves on.
            let from = if n > 0 && std::fs::metadata(d.join("ren1.txt")).is_ok() {
                "ren1.txt"
            } else {
                "ren.txt"
            };
            std::fs::rename(d.join(from), d.join(format!("ren{}.txt", n + 1))).map_err(io)?
        }
        "unlink" => std::fs::remove_file(d.join(format!("del{}.txt", n.min(1)))).map_err(io)?,
        _ => unreachable!(),
    }
    Ok(())
}

/// Texts (any of them, `|`-separated) in the request line (path, or `prefix=` of a listing)
/// of the requests `op` makes for its object in row `i`.
fn needle(op: &str, i: usize) -> String {
    let name = match op {
        // Reads: only the data GETs (the lookup and open work), so the data path meets it.
        "open+read" => return format!("GET /faults/f{i}/small.txt"),
        "sequential read" => return format!("GET /faults/f{i}/big.bin"),
        "stat" => "small.txt",
        "ls" => "dir",
        "write+close" => "new0.txt",
        "rename" => "ren",
        "unlink" => "del0.txt",
        _ => unreachable!(),
    };
    format!("f{i}/{name}|f{i}%2F{name}")
}

/// `run_op` on a thread, bounded by `OP_BOUND`; with how long it took.
fn bounded(op: &'static str, row: &std::sync::Arc<Row>, n: usize) -> (Outcome, Duration) {
    let (tx, rx) = mpsc::channel();
    let r = row.clone();
    let t = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(run_op(op, &r, n));
    });
    match rx.recv_timeout(OP_BOUND) {
        Ok(o) => (o, t.elapsed()),
        Err(_) => (Err(format!("HUNG past {OP_BOUND:?}")), t.elapsed()),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[test]
fn every_fault_ends_in_bounded_time_serves_no_cut_body_loses_nothing_and_recovers() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("faults");
    let upstream = format!("127.0.0.1:{}", s3.port);
    let mut proxy = FaultProxy::start(&upstream);
    let mut faults: Vec<Option<Fault>> = vec![
        Some(Fault::Latency(Duration::from_millis(300))),
        Some(Fault::Stall),
        Some(Fault::ResetBeforeHeaders),
        Some(Fault::ResetMidBody),
        Some(Fault::ShortBody),
        Some(Fault::Status500),
        Some(Fault::SlowDown503),
        Some(Fault::Forbidden403),
        Some(Fault::WrongLength),
    ];
    // The server gone (connections refused), then back.
    faults.push(None);
    let mut objects = Vec::new();
    for (i, _) in faults.iter().enumerate() {
        let tag = format!("f{i}");
        let small = pattern(1000 + i, i as u32);
        objects.push((format!("{tag}/small.txt"), bytes::Bytes::from(small)));
        objects.push((
            format!("{tag}/big.bin"),
            bytes::Bytes::from(pattern(BIG, 99 + i as u32)),
        ));
        objects.push((
            format!("{tag}/ren.txt"),
            bytes::Bytes::from_static(b"move me"),
        ));
        for n in 0..2 {
            objects.push((format!("{tag}/del{n}.txt"), bytes::Bytes::from_static(b"x")));
        }
        for f in ["a", "b", "c"] {
            objects.push((format!("{tag}/dir/{f}"), bytes::Bytes::from_static(b"y")));
        }
    }
    s3.put_objects("faults", objects);
    let m = MountCmd::s3_via(
        &s3,
        &proxy.endpoint(),
        "faults",
        &[
            "request_timeout=2",
            "connect_timeout=1",
            "retries=2",
            "attr_timeout=0",
            "entry_timeout=0",
            "dir_cache_timeout=0",
            "negative_timeout=0",
        ],
    )
    .mount();

    let mut table = String::new();
    let mut failures = Vec::new();
    let mut closed: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, fault) in faults.iter().enumerate() {
        let name = fault.map_or("server gone, then back".to_string(), |f| f.name());
        let row = std::sync::Arc::new(Row {
            dir: m.p(&format!("f{i}")),
            small: pattern(1000 + i, i as u32),
            big: pattern(BIG, 99 + i as u32),
        });
        let mut cells = Vec::new();
        for op in OPS {
            // The fault hits the requests of this operation's object (its HEAD, LIST, GET,
            // PUT, copy or DELETE); the row's directory was looked up before.
            let _ = std::fs::metadata(&row.dir);
            match fault {
                Some(f) => proxy.set(*f, &needle(op, i)),
                None => proxy.go_away(),
            }
            let (o, took) = bounded(op, &row, 0);
            if o.as_ref()
                .is_err_and(|e| e.starts_with("WRONG") || e.starts_with("HUNG"))
            {
                failures.push(format!("{name} × {op}: {o:?}"));
            }
            if op == "write+close" && o.is_ok() {
                closed.push((format!("f{i}/new0.txt"), pattern(100_000, 0)));
            }
            let cleared = Instant::now();
            match fault {
                Some(_) => proxy.clear(),
                None => proxy.come_back(),
            }
            let mut recovered = None;
            let mut last = Err(String::new());
            for n in 1..=300 {
                if cleared.elapsed() > RECOVERY_BOUND {
                    break;
                }
                let (again, _) = bounded(op, &row, n);
                if op == "write+close" && again.is_ok() {
                    closed.push((format!("f{i}/new{n}.txt"), pattern(100_000, n as u32)));
                }
                if again.is_ok() {
                    recovered = Some(cleared.elapsed());
                    break;
                }
                if again.as_ref().is_err_and(|e| e.starts_with("WRONG")) {
                    failures.push(format!("{name} × {op}, after: {again:?}"));
                }
                last = again;
                std::thread::sleep(Duration::from_millis(100));
            }
            if recovered.is_none() {
                failures.push(format!("{name} × {op}: not recovered: {last:?}"));
            }
            let result = match &o {
                Ok(()) => "ok".to_string(),
                Err(e) => e.clone(),
            };
            let rec = recovered.map_or("NOT RECOVERED".into(), secs);
            cells.push(format!("{result} in {} / {rec}", secs(took)));
        }
        table.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }

    // Whatever a close accepted reaches the server (journaled ones are sent in the background).
    let store = s3.store("faults");
    for (key, want) in &closed {
        let arrived = support::wait_until(Duration::from_secs(30), || {
            support::block_on(async {
                match store
                    .get(&object_store::path::Path::from(key.as_str()))
                    .await
                {
                    Ok(r) => r.bytes().await.is_ok_and(|b| b[..] == want[..]),
                    Err(_) => false,
                }
            })
        });
        if !arrived {
            failures.push(format!("{key}: closed with 0 but not on the server"));
        }
    }

    let doc = format!(
        "# Faults between the mount and the store\n\n\
         Generated by `tests/faults.rs` (`UPDATE_DOCS=1 cargo test --test faults`): one mount of \
         moto through a proxy that breaks every request in one way (`tests/support/fault_proxy.rs`), \
         with `request_timeout=2 connect_timeout=1 retries=2` and every cache timeout 0, so each \
         operation asks the server. For each fault and operation, the fault hits every request \
         for the operation's own object (its HEAD, one-key LIST, PUTs, copy, DELETE; for the two \
         reads only its data GETs, so the lookup and open work and the data path meets the \
         fault; for `ls`, the directory's lookup and listing; \"server gone\": every connection is refused) \
         while the operation runs once, and is then cleared. `big.bin` is {} MiB, read whole.\n\n\
         Each cell: the result while the fault is on, how long the operation took / how long \
         after the fault was cleared (the server back) the same operation worked again.\n\n\
         Pass conditions, checked by the test: no request is waited on longer than its \
         deadline (the proxy measures how long the mount held a stalled request before giving \
         up: {:.1} s in this run, for `request_timeout=2`); every operation ends within {} s; a read that \
         succeeds returns exactly the object's bytes; every file whose close returned 0 reaches \
         the server (a close while the store does not answer is journaled and sent once it \
         does: see [offline.md](offline.md)); every operation works again within {} s of the \
         fault ending, with no remount.\n\n\
         `ENETUNREACH`: the mount is offline (an earlier request got no answer) and does not send \
         the request; `EIO`: the first request to meet the outage, or a server that answered \
         with an error after the retries.\n\n\
         | fault | {} |\n|---|{}\n{table}",
        BIG >> 20,
        proxy.longest_wait().as_secs_f64(),
        OP_BOUND.as_secs(),
        RECOVERY_BOUND.as_secs(),
        OPS.join(" | "),
        "---|".repeat(OPS.len()),
    );
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults.md");
    let _ = std::fs::write(&out, &doc);
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/faults.md"), &doc)
            .expect("write docs/faults.md");
    }
    eprintln!("{doc}");
    assert!(
        failures.is_empty(),
        "{failures:#?}\n{doc}\nlog:\n{}",
        m.log_text()
    );
    assert!(proxy.faulted() > 0);
    // No request outlived its deadline: a stalled one is given up after request_timeout.
    let waited = proxy.longest_wait();
    assert!(
        waited > Duration::from_millis(1500) && waited < Duration::from_millis(3500),
        "a stalled request was waited on for {waited:?} (request_timeout=2)"
    );
}
