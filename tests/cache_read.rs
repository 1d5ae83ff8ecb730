//! The block cache through a real mount against the S3 server: md5 through the cache equals
//! the source, a remount reads cached blocks without any GET, and a remote overwrite is seen.

mod harness;
mod support;

use bytes::Bytes;
use harness::{pattern, MountCmd};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;
use support::{DelayProxy, S3Server};

#[test]
fn cached_reads_survive_remount_and_follow_remote_overwrites() {
    let v1 = pattern(24 << 20, 1);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Count the object's data GETs as they pass (no delay).
    let Setup { s3, proxy, cmd } = setup(
        "cached",
        "big.bin",
        &v1,
        Duration::ZERO,
        dir.path(),
        &["attr_timeout=1"],
    );

    let m = cmd.mount();
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&v1),
        "cold read"
    );
    let cold_gets = proxy.delayed_count();
    assert!(cold_gets > 0);
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&v1),
        "warm read"
    );
    drop(m);

    // Cache files are private, in a private directory, and hold the whole object.
    let mut cached = 0;
    for entry in walk(&cache) {
        let meta = std::fs::metadata(&entry).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        if entry.is_dir() {
            assert_eq!(mode, 0o700, "{}", entry.display());
        } else {
            assert_eq!(mode, 0o600, "{}", entry.display());
            cached += std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
        }
    }
    assert!(
        cached >= 20 << 20,
        "the 20 MiB are on disk ({cached} bytes)"
    );

    let before = proxy.delayed_count();
    let m = cmd.mount();
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&v1),
        "after remount"
    );
    assert_eq!(
        proxy.delayed_count(),
        before,
        "no GET of cached blocks after a remount"
    );
    assert!(
        !harness::passthrough_expected() || m.log_text().contains("FUSE passthrough in use"),
        "the fully cached file is read through passthrough (root, Linux >= 6.9):\n{}",
        m.log_text()
    );
    if harness::passthrough_expected() {
        // The kernel allows no other kind of open next to a passthrough reader: an O_TRUNC
        // open is refused (EBUSY) before anything is cut, and the object stays as it was.
        let reader = std::fs::File::open(m.p("big.bin")).unwrap();
        let trunc = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(m.p("big.bin"));
        assert_eq!(
            trunc.err().and_then(|e| e.raw_os_error()),
            Some(libc::EBUSY),
            "{}",
            m.log_text()
        );
        drop(reader);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            support::md5_of_bytes(&support::block_on(async {
                use object_store::ObjectStoreExt;
                let store = s3.store("cached");
                let got = store.get(&object_store::path::Path::from("big.bin")).await;
                got.unwrap().bytes().await.unwrap()
            })),
            support::md5_of_bytes(&v1),
            "the refused open changed nothing on the server"
        );
        assert!(m.log_text().contains("open for writing refused"));
    }

    // Overwrite on the server: once the attributes expire, new bytes, never old ones.
    let v2 = pattern(20 << 20, 2);
    s3.put_objects("cached", vec![("big.bin".into(), Bytes::from(v2.clone()))]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&v2),
        "after a remote overwrite"
    );
}

/// Random readers at 20 ms per request: past a few random reads the daemon fills the whole
/// object into the cache in the background (streamed ranged GETs from the S3 server), and the
/// reads stay byte-exact while it does; a remount then reads it all without a GET.
#[test]
fn random_readers_get_the_object_filled_into_the_cache() {
    use std::os::unix::fs::FileExt;
    let data = pattern(24 << 20, 5);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let Setup {
        s3: _server,
        proxy,
        cmd,
    } = setup(
        "filled",
        "rand.bin",
        &data,
        Duration::from_millis(20),
        dir.path(),
        &[],
    );
    let m = cmd.mount();
    let f = std::fs::File::open(m.p("rand.bin")).unwrap();
    let on_disk = || data_on_disk(&cache);
    let mut reads = 0u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while on_disk() < 24 << 20 && std::time::Instant::now() < deadline {
        // Backward strides: never a continuation of the previous read.
        let off = (((reads * 7_919) % 6_000) * 4096) % ((24 << 20) - 4096);
        let mut buf = vec![0u8; 4096];
        f.read_exact_at(&mut buf, off).unwrap();
        assert_eq!(
            buf,
            &data[off as usize..off as usize + 4096],
            "read at {off}"
        );
        reads += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    // A block is in its data file a moment before the cache's index has it (the write, then
    // the record): a read in between fetches it again. Give the last records that moment.
    std::thread::sleep(Duration::from_millis(300));
    let gets = proxy.delayed_count();
    assert!(
        on_disk() >= 24 << 20,
        "the object was filled into the cache ({} bytes, {gets} GETs)",
        on_disk()
    );
    // A few small GETs before the fill started, then six 4 MiB parts.
    assert!(
        gets <= 4 + 6 + 4,
        "{reads} random reads and a fill took {gets} GETs"
    );
    for i in 0..300u64 {
        let off = ((i * 104_729) % 6_000) * 4096;
        let mut buf = vec![0u8; 4096];
        f.read_exact_at(&mut buf, off).unwrap();
        assert_eq!(
            buf,
            &data[off as usize..off as usize + 4096],
            "read at {off}"
        );
    }
    assert_eq!(
        proxy.delayed_count(),
        gets,
        "later random reads come from the cache"
    );
    drop(f);
    drop(m);
    let before = proxy.delayed_count();
    let m = cmd.mount();
    assert_eq!(
        support::md5_of_file(m.p("rand.bin")),
        support::md5_of_bytes(&data)
    );
    assert_eq!(
        proxy.delayed_count(),
        before,
        "every block came from the fill"
    );
}

/// Random 4 KiB reads keep the 64 KiB pieces they fetched in the disk cache (partial blocks,
/// not whole 1 MiB blocks): after a remount the same reads need no GET, and are exact.
#[test]
fn random_reads_leave_pieces_a_remount_finds() {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::AsRawFd;
    let data = pattern(8 << 20, 9);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let Setup {
        s3: _server,
        proxy,
        cmd,
    } = setup("pieces", "p.bin", &data, Duration::ZERO, dir.path(), &[]);
    // Three reads, each more than `max_skip` (2 MiB) away from the last one's end and from 0
    // (closer forward jumps count as sequential); a fourth random read in a row could start a
    // fill of the whole object. The first spans two pieces.
    let offsets = [(7u64 << 20) - 10, (5 << 20) + 8192, (3 << 20) - (100 << 10)];
    let read_all = |m: &harness::Mounted| {
        let f = std::fs::File::open(m.p("p.bin")).unwrap();
        // No kernel read-ahead: the daemon sees exactly these reads.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM) };
        assert_eq!(rc, 0, "posix_fadvise");
        for off in offsets {
            let mut buf = vec![0u8; 4096];
            f.read_exact_at(&mut buf, off).unwrap();
            assert_eq!(
                buf,
                &data[off as usize..off as usize + 4096],
                "read at {off}"
            );
        }
    };
    let m = cmd.mount();
    read_all(&m);
    drop(m);
    let gets = proxy.delayed_count();
    assert!(gets >= 3, "{gets} GETs");
    let files = walk(&cache);
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "pieces")),
        "a pieces record was written: {files:?}"
    );
    let data_bytes = data_on_disk(&cache);
    // Four pieces: the first read spans two.
    assert!(
        data_bytes <= 4 * (64 << 10),
        "pieces, not whole blocks, on disk: {data_bytes} bytes after {gets} GETs"
    );
    let m = cmd.mount();
    read_all(&m);
    drop(m);
    assert_eq!(
        proxy.delayed_count(),
        gets,
        "the remount read the pieces, no GET"
    );
}

/// One object on moto behind a proxy that counts (and delays by `delay`) its GETs, and the
/// command mounting its bucket with a block cache in `dir`.
struct Setup {
    s3: S3Server,
    proxy: DelayProxy,
    cmd: MountCmd,
}

fn setup(
    bucket: &str,
    key: &str,
    data: &[u8],
    delay: Duration,
    dir: &std::path::Path,
    extra: &[&str],
) -> Setup {
    let s3 = S3Server::start_moto();
    s3.create_bucket(bucket);
    s3.put_objects(bucket, vec![(key.into(), Bytes::from(data.to_vec()))]);
    let proxy = DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        &format!("GET /{bucket}/{key}"),
        delay,
    );
    let mut opts = vec![
        format!("endpoint={}", proxy.endpoint()),
        format!("cache={}", dir.join("cache").display()),
        "cache_size=1G".to_string(),
    ];
    opts.extend(extra.iter().map(|o| o.to_string()));
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let cmd = MountCmd::new(&format!("s3://{bucket}"), &opts)
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key);
    Setup { s3, proxy, cmd }
}

/// Bytes the cache's data files (not their records) take on disk: sparse files count only what
/// they hold.
fn data_on_disk(cache: &std::path::Path) -> u64 {
    walk(cache)
        .iter()
        .filter(|p| p.is_file() && p.extension().is_none())
        .filter(|p| p.to_string_lossy().contains("/objects/"))
        .map(|p| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(p).unwrap()) * 512)
        .sum()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..100_000 {
        let Some(d) = stack.pop() else { break };
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}
