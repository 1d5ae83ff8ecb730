//! A bounded soak: readers, writers, listers and renamers work in parallel over one mount of
//! moto for `SOAK_SECS` seconds (default 180; run `SOAK_SECS=600` locally), with every GET
//! delayed by 20 ms through a proxy (latency injected). At the end the daemon is alive, its
//! peak RSS is under `max_memory` plus a documented constant, the block cache is under its
//! limit, and every file's content is verified on the server. Operations per second and
//! errors are printed.

mod harness;
mod support;

use harness::{daemon_pids, pattern, MountCmd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{DelayProxy, S3Server};

/// The daemon's memory beyond `max_memory` that the soak allows: the runtime, the inode table,
/// listings and the allocator's slack.
const RSS_ALLOWANCE_MIB: u64 = 160;

#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    writes: AtomicU64,
    lists: AtomicU64,
    renames: AtomicU64,
    errors: AtomicU64,
}

fn content(worker: usize, n: u64) -> Vec<u8> {
    let len = 1_000 + (n as usize * 7919) % 300_000;
    pattern(len, (worker as u32) << 20 | n as u32)
}

/// Bytes on disk below `p`, leaving out directories named `skip`.
fn dir_size(p: &Path, skip: &str) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() && e.file_name() == skip => {}
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += std::os::unix::fs::MetadataExt::blocks(&m) * 512,
                Err(_) => {}
            }
        }
    }
    total
}

#[test]
fn parallel_readers_writers_listers_and_renamers_over_one_mount() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let s3 = S3Server::start_moto();
    s3.create_bucket("soak");
    // A read-only set for the readers: 40 files of up to 300 KB.
    let fixed: Vec<(String, bytes::Bytes)> = (0..40)
        .map(|i| (format!("ro/f{i:02}"), bytes::Bytes::from(content(99, i))))
        .collect();
    s3.put_objects("soak", fixed.clone());
    let proxy = DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        "GET /soak/",
        Duration::from_millis(20),
    );
    let cache = tempfile::tempdir().unwrap();
    let cache_opt = format!("cache={}", cache.path().display());
    let endpoint = format!("http://127.0.0.1:{}", proxy.port);
    let m = MountCmd::s3_via(
        &s3,
        &endpoint,
        "soak",
        &[
            &cache_opt,
            "cache_size=8M",
            "max_memory=24M",
            "attr_timeout=1s",
        ],
    )
    .mount();
    let mnt = m.path.clone();
    let pid = daemon_pids(&mnt)[0];
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let mut workers = Vec::new();
    // Readers: read fixed files and check every byte.
    for r in 0..2 {
        let (mnt, stop, counts, fixed) = (mnt.clone(), stop.clone(), counts.clone(), fixed.clone());
        workers.push(std::thread::spawn(move || {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                let (k, want) = &fixed[i % fixed.len()];
                match std::fs::read(mnt.join(k)) {
                    Ok(got) if got == want.as_ref() => counts.reads.fetch_add(1, Ordering::Relaxed),
                    _ => counts.errors.fetch_add(1, Ordering::Relaxed),
                };
                i += 7;
            }
        }));
    }
    // Writers: each its own directory, files rewritten with new content; the last content of
    // each name is remembered for the final check.
    let expected = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<
        String,
        Vec<u8>,
    >::new()));
    for w in 0..2usize {
        let (mnt, stop, counts, expected) =
            (mnt.clone(), stop.clone(), counts.clone(), expected.clone());
        workers.push(std::thread::spawn(move || {
            let dir = mnt.join(format!("w{w}"));
            let _ = std::fs::create_dir(&dir);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("w{w}/f{}", n % 8);
                let data = content(w, n);
                match std::fs::write(mnt.join(&name), &data) {
                    Ok(()) => {
                        counts.writes.fetch_add(1, Ordering::Relaxed);
                        expected.lock().unwrap().insert(name, data);
                    }
                    Err(_) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
            }
        }));
    }
    // A lister walking the whole tree.
    {
        let (mnt, stop, counts) = (mnt.clone(), stop.clone(), counts.clone());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let ok = std::process::Command::new("find")
                    .arg(&mnt)
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ok {
                    counts.lists.fetch_add(1, Ordering::Relaxed)
                } else {
                    counts.errors.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }
    // A renamer moving its own file back and forth between two directories.
    {
        let (mnt, stop, counts, expected) =
            (mnt.clone(), stop.clone(), counts.clone(), expected.clone());
        workers.push(std::thread::spawn(move || {
            let (a, b) = (mnt.join("ra"), mnt.join("rb"));
            let _ = std::fs::create_dir(&a);
            let _ = std::fs::create_dir(&b);
            let data = content(7, 7);
            let mut at: PathBuf = a.join("moving");
            if std::fs::write(&at, &data).is_err() {
                counts.errors.fetch_add(1, Ordering::Relaxed);
            }
            while !stop.load(Ordering::Relaxed) {
                let to = if at.starts_with(&a) {
                    b.join("moving")
                } else {
                    a.join("moving")
                };
                match std::fs::rename(&at, &to) {
                    Ok(()) => {
                        counts.renames.fetch_add(1, Ordering::Relaxed);
                        at = to;
                    }
                    Err(_) => {
                        counts.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let rel = at.strip_prefix(&mnt).unwrap().display().to_string();
            expected.lock().unwrap().insert(rel, data);
        }));
    }
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let took = t0.elapsed().as_secs_f64();
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon is alive");
    let hwm_mib = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024;
    let cache_bytes = dir_size(cache.path(), "staging");
    let c = &counts;
    eprintln!(
        "[soak] {secs} s: reads {:.1}/s, writes {:.1}/s, tree walks {:.2}/s, renames {:.1}/s, errors {}, \
         peak RSS {hwm_mib} MiB, block cache {:.1} MiB (limit 8), GETs delayed {}",
        c.reads.load(Ordering::Relaxed) as f64 / took,
        c.writes.load(Ordering::Relaxed) as f64 / took,
        c.lists.load(Ordering::Relaxed) as f64 / took,
        c.renames.load(Ordering::Relaxed) as f64 / took,
        c.errors.load(Ordering::Relaxed),
        cache_bytes as f64 / 1048576.0,
        proxy.delayed_count(),
    );
    assert_eq!(
        c.errors.load(Ordering::Relaxed),
        0,
        "log:\n{}",
        m.log_text()
    );
    assert!(c.reads.load(Ordering::Relaxed) > 0 && c.writes.load(Ordering::Relaxed) > 0);
    assert!(c.renames.load(Ordering::Relaxed) > 0 && c.lists.load(Ordering::Relaxed) > 0);
    assert!(hwm_mib < 24 + RSS_ALLOWANCE_MIB, "peak RSS {hwm_mib} MiB");
    // The block cache stays under its limit (the staging area of files being written is
    // apart); its .meta files and one block in flight may go past it.
    assert!(
        cache_bytes <= (8 << 20) + (2 << 20),
        "block cache {cache_bytes} bytes"
    );
    // Every file the writers and the renamer left is on the server, byte for byte.
    drop(m);
    let store = s3.store("soak");
    for (key, want) in expected.lock().unwrap().iter() {
        let got = support::block_on({
            let store = store.clone();
            let key = key.clone();
            async move {
                use object_store::ObjectStoreExt;
                store
                    .get(&object_store::path::Path::from(key.as_str()))
                    .await
                    .ok()?
                    .bytes()
                    .await
                    .ok()
            }
        });
        assert_eq!(got.as_deref(), Some(want.as_slice()), "{key}");
    }
}
