//! Offline mode through a real mount: the mount reaches moto through a loopback proxy, which
//! is stopped (the server is gone: connections are refused) and started again on the same
//! port. Meanwhile cached names, attributes and blocks keep answering past their TTLs, an
//! uncached read fails within 2 s, a written file's close succeeds (journaled), `status` says
//! since when the store is offline; once the proxy is back the file reaches the server with no
//! remount.

mod harness;
mod support;

use harness::{bin, MountCmd, Mounted};
use object_store::ObjectStoreExt;
use std::io::Write;
use std::time::{Duration, Instant};
use support::DelayProxy;

/// A numeric field of the `cloudmount status --raw` report of the mount at `m`.
fn status_raw_field(m: &Mounted, name: &str) -> Option<u64> {
    let out = harness::run_bounded(
        std::process::Command::new(bin()).args(["status", "--raw"]),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mine = text.split("\n\n").find(|r| {
        r.lines()
            .any(|l| l == format!("mountpoint={}", m.path.display()))
    })?;
    mine.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.trim().parse().ok())
}

/// The `cloudmount status` block of the mount at `m`.
fn status_of(m: &Mounted) -> String {
    let out = harness::run_bounded(
        std::process::Command::new(bin()).arg("status"),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let head = format!(" on {}\n", m.path.display());
    let Some(start) = text.find(&head) else {
        return format!("(no block for {} in)\n{text}", m.path.display());
    };
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let mut block = String::new();
    for (i, line) in text[line_start..].lines().enumerate() {
        if i > 0 && !line.starts_with("  ") {
            break;
        }
        block.push_str(line);
        block.push('\n');
    }
    block
}

fn stored(s3: &support::S3Server, key: &str) -> Option<Vec<u8>> {
    let store = s3.store("offline");
    support::block_on(async {
        let r = store.get(&object_store::path::Path::from(key)).await.ok()?;
        r.bytes().await.ok().map(|b| b.to_vec())
    })
}

#[test]
fn cached_data_answers_while_the_store_is_gone_and_closed_writes_arrive_after() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("offline");
    let big = harness::pattern(3 << 20, 7);
    s3.put_objects(
        "offline",
        vec![
            ("warm/a.txt".into(), bytes::Bytes::from_static(b"alpha\n")),
            ("warm/big.bin".into(), bytes::Bytes::from(big.clone())),
            (
                "warm/sub/c.txt".into(),
                bytes::Bytes::from_static(b"gamma\n"),
            ),
            (
                "cold/never.bin".into(),
                bytes::Bytes::from(vec![1u8; 1 << 20]),
            ),
        ],
    );
    let upstream = format!("127.0.0.1:{}", s3.port);
    let proxy = DelayProxy::start(&upstream, "", Duration::ZERO);
    let port = proxy.port;
    let m = MountCmd::s3_via(
        &s3,
        &proxy.endpoint(),
        "offline",
        &["attr_timeout=1", "entry_timeout=1", "dir_cache_timeout=1"],
    )
    .mount();

    // Warm part of the tree.
    let mut names: Vec<String> = std::fs::read_dir(m.p("warm"))
        .expect("ls warm")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a.txt", "big.bin", "sub"]);
    assert_eq!(
        std::fs::read(m.p("warm/a.txt")).expect("read a"),
        b"alpha\n"
    );
    assert!(std::fs::read(m.p("warm/big.bin")).expect("read big") == big);
    let _ = std::fs::metadata(m.p("cold")).expect("stat cold");
    // The block cache writes on its own threads: the warmed data is on disk before the outage.
    // Kernel read-ahead can send reads out of order, which the daemon serves as small random
    // reads that cache no whole block; the file is read again (its pages dropped from the
    // kernel's cache, so the reads reach the daemon) until every block is cached.
    let cached = support::wait_until(Duration::from_secs(20), || {
        let done = status_raw_field(&m, "cache_used").is_some_and(|n| n >= (big.len() + 6) as u64);
        if !done {
            if let Ok(f) = std::fs::File::open(m.p("warm/big.bin")) {
                let _ = nix::fcntl::posix_fadvise(
                    &f,
                    0,
                    0,
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
                );
                let _ = std::io::copy(&mut &f, &mut std::io::sink());
            }
        }
        done
    });
    assert!(
        cached,
        "the warmed data never reached the block cache: {}",
        status_of(&m)
    );

    // The server goes away; every TTL runs out.
    drop(proxy);
    std::thread::sleep(Duration::from_millis(2500));
    let mut names: Vec<String> = std::fs::read_dir(m.p("warm"))
        .unwrap_or_else(|e| panic!("ls warm offline: {e}\nlog:\n{}", m.log_text()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["a.txt", "big.bin", "sub"],
        "the last listing answers"
    );
    let meta = std::fs::metadata(m.p("warm/big.bin")).expect("stat big offline");
    assert_eq!(meta.len(), big.len() as u64);
    support::drop_pages(&m.p("warm/big.bin"));
    support::drop_pages(&m.p("warm/a.txt"));

    assert!(
        std::fs::read(m.p("warm/big.bin"))
            .unwrap_or_else(|e| panic!("read big offline: {e}\nlog:\n{}", m.log_text()))
            == big,
        "blocks from the disk cache"
    );
    assert_eq!(
        std::fs::read(m.p("warm/a.txt")).expect("read a offline"),
        b"alpha\n"
    );

    // Uncached data fails, and fast.
    let t = Instant::now();
    let err = std::fs::read(m.p("cold/never.bin")).expect_err("an uncached read must fail");
    let took = t.elapsed();
    println!("an uncached read failed after {took:?}: {err}");
    assert!(
        matches!(
            err.raw_os_error(),
            Some(libc::ENETUNREACH) | Some(libc::EIO)
        ),
        "{err}"
    );
    assert!(took < Duration::from_secs(2), "failed after {took:?}");

    // A written file's close succeeds: it is journaled.
    let mut f = std::fs::File::create(m.p("warm/new.txt")).expect("create offline");
    f.write_all(b"written while the store was gone\n")
        .expect("write");
    f.sync_all().expect("fsync offline");
    drop(f);
    assert_eq!(
        std::fs::read(m.p("warm/new.txt")).expect("read back"),
        b"written while the store was gone\n"
    );
    let status = status_of(&m);
    assert!(status.contains("offline since "), "{status}");
    assert!(status.contains("1 closed file(s) journaled"), "{status}");
    assert_eq!(stored(&s3, "warm/new.txt"), None);

    // The server comes back: the file arrives without a remount.
    let _proxy = DelayProxy::start_on(port, &upstream, "", Duration::ZERO);
    let back_at = Instant::now();
    let arrived = support::wait_until(Duration::from_secs(20), || {
        stored(&s3, "warm/new.txt").is_some()
    });
    assert!(arrived, "not uploaded; log:\n{}", m.log_text());
    println!(
        "the journaled file reached the server {:?} after the proxy came back",
        back_at.elapsed()
    );
    assert_eq!(
        stored(&s3, "warm/new.txt").expect("stored"),
        b"written while the store was gone\n"
    );
    let back = support::wait_until(Duration::from_secs(10), || {
        !status_of(&m).contains("offline since")
    });
    assert!(back, "{}", status_of(&m));
    assert_eq!(
        std::fs::read(m.p("cold/never.bin"))
            .expect("read cold")
            .len(),
        1 << 20
    );
    let log = m.log_text();
    assert_eq!(
        log.matches("the store does not answer:").count(),
        1,
        "said once:\n{log}"
    );
    assert!(log.contains("the store answers again"), "{log}");
}
