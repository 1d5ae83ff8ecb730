//! Read path through a real mount against a real S3 server (moto) on loopback.

mod harness;
mod support;

use bytes::Bytes;
use harness::{pattern, run_bounded, sh, MountCmd};
use std::io::{Read, Seek, SeekFrom};
use std::process::Command;
use std::time::{Duration, Instant};
use support::{DelayProxy, S3Server};

fn s3_mount(s3: &S3Server, source: &str, extra: &[&str]) -> harness::Mounted {
    let endpoint = format!("endpoint={}", s3.endpoint);
    let mut opts = vec![endpoint.as_str(), "region=us-east-1"];
    opts.extend_from_slice(extra);
    MountCmd::new(source, &opts)
        .env("AWS_ACCESS_KEY_ID", &s3.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
        .mount()
}

#[test]
fn ls_stat_cat_find_md5_nested_implicit_markers_and_name_clashes() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("data");
    let big = pattern(12 << 20, 7);
    s3.put_objects(
        "data",
        vec![
            ("a.txt".into(), Bytes::from_static(b"hello\n")),
            ("big.bin".into(), Bytes::from(big.clone())),
            ("nested/deep/x/y.txt".into(), Bytes::from_static(b"deep")),
            (
                "implicit/only/child.txt".into(),
                Bytes::from_static(b"child"),
            ),
            (
                "marker-dir/inside.txt".into(),
                Bytes::from_static(b"inside"),
            ),
            ("same".into(), Bytes::from_static(b"i am the file")),
            ("same/inner.txt".into(), Bytes::from_static(b"inner")),
            ("sp ace/ü+&.txt".into(), Bytes::from_static(b"unicode")),
        ],
    );
    s3.put_raw_key("data", "marker-dir/", b"");
    s3.put_raw_key("data", "empty-marker/", b"");

    let m = s3_mount(&s3, "s3://data", &[]);
    let (ok, out, err) = sh(&format!("ls -1 '{}'", m.path.display()));
    assert!(ok, "{err}");
    let names: Vec<&str> = out.lines().collect();
    assert_eq!(
        names,
        [
            "a.txt",
            "big.bin",
            "empty-marker",
            "implicit",
            "marker-dir",
            "nested",
            "same",
            "same.file",
            "sp ace"
        ],
        "root listing"
    );
    let meta = std::fs::metadata(m.p("a.txt")).unwrap();
    assert_eq!(meta.len(), 6);
    assert!(meta.is_file());
    assert!(
        std::fs::metadata(m.p("empty-marker")).unwrap().is_dir(),
        "marker object makes a directory"
    );
    assert!(
        std::fs::metadata(m.p("implicit/only")).unwrap().is_dir(),
        "common prefix makes a directory"
    );
    assert_eq!(std::fs::read_to_string(m.p("a.txt")).unwrap(), "hello\n");
    assert_eq!(
        std::fs::read_to_string(m.p("nested/deep/x/y.txt")).unwrap(),
        "deep"
    );
    assert_eq!(
        std::fs::read_to_string(m.p("sp ace/ü+&.txt")).unwrap(),
        "unicode"
    );
    // A file and a directory with the same name: the directory keeps it, the file gets the suffix.
    assert!(m.p("same").is_dir());
    assert_eq!(
        std::fs::read_to_string(m.p("same/inner.txt")).unwrap(),
        "inner"
    );
    assert_eq!(
        std::fs::read_to_string(m.p("same.file")).unwrap(),
        "i am the file"
    );
    assert_eq!(
        std::fs::read_dir(m.p("marker-dir")).unwrap().count(),
        1,
        "the marker is not listed inside"
    );
    assert_eq!(std::fs::read_dir(m.p("empty-marker")).unwrap().count(), 0);

    let (ok, found, err) = sh(&format!("cd '{}' && find . | sort", m.path.display()));
    assert!(ok, "{err}");
    for p in [
        "./nested/deep/x/y.txt",
        "./implicit/only/child.txt",
        "./sp ace/ü+&.txt",
        "./same/inner.txt",
    ] {
        assert!(found.lines().any(|l| l == p), "find misses {p}:\n{found}");
    }
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&big),
        "md5 through the mount"
    );

    // Reads at many scattered offsets, each a separate ranged request.
    let mut f = std::fs::File::open(m.p("big.bin")).unwrap();
    let mut buf = vec![0u8; 10_000];
    for i in 0..64u64 {
        let off = (i * 7_919_993) % (big.len() as u64 - 10_000);
        f.seek(SeekFrom::Start(off)).unwrap();
        f.read_exact(&mut buf).unwrap();
        assert_eq!(
            &buf[..],
            &big[off as usize..off as usize + 10_000],
            "offset {off}"
        );
    }
    assert!(!harness::is_mounted(&m.dir.path().join("nope")));
    let err = std::fs::metadata(m.p("does-not-exist")).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn prefix_mounts_and_a_10000_object_prefix_lists_completely() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("many");
    let objs = (0..10_000)
        .map(|i| (format!("set/img{i:05}.jpg"), Bytes::from(format!("{i}"))))
        .collect();
    s3.put_objects("many", objs);
    s3.put_objects(
        "many",
        vec![("set/sub/z.txt".into(), Bytes::from_static(b"z"))],
    );

    let m = s3_mount(&s3, "s3://many/set", &["list_page_size=500"]);
    let (ok, out, err) = sh(&format!(
        "ls -l '{}' | tail -n +2 | wc -l",
        m.path.display()
    ));
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "10001", "10,000 objects and one directory");
    let (ok, out, _) = sh(&format!("ls '{}' | sort -u | wc -l", m.path.display()));
    assert!(ok);
    assert_eq!(out.trim(), "10001", "no duplicates across pages");
    assert_eq!(
        std::fs::read_to_string(m.p("img09999.jpg")).unwrap(),
        "9999"
    );
    assert_eq!(std::fs::read_to_string(m.p("sub/z.txt")).unwrap(), "z");
}

/// A server that accepts a request and then says nothing (a dead backend, a network that drops
/// packets): the reader gets EIO once `request_timeout` and `retries` are spent, instead of
/// hanging in D state, and the mount goes on serving everything else.
#[test]
fn a_server_that_stops_answering_gives_eio_in_bounded_time_and_the_mount_lives_on() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("stall");
    s3.put_objects(
        "stall",
        vec![
            ("slow.bin".into(), Bytes::from(pattern(1 << 20, 3))),
            ("ok.txt".into(), Bytes::from_static(b"fine")),
        ],
    );
    let silence = Duration::from_secs(120);
    let proxy = DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        "GET /stall/slow.bin",
        silence,
    );
    let m = MountCmd::s3_via(
        &s3,
        &proxy.endpoint(),
        "stall",
        &["request_timeout=2s", "retries=1"],
    )
    .mount();
    let started = Instant::now();
    let out = run_bounded(Command::new("cat").arg(m.p("slow.bin")), silence);
    let took = started.elapsed();
    println!("the read failed after {took:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("Input/output error"),
        "a read the server never answers must fail with EIO: {out:?}\n{}",
        m.log_text()
    );
    // 2 attempts of 2 s plus backoff; far below the server's silence.
    assert!(
        took < silence / 2,
        "the read waited {took:?}, as if for the server\n{}",
        m.log_text()
    );
    assert!(
        proxy.delayed_count() >= 1,
        "the GET went to the silent server"
    );
    assert!(harness::is_mounted(&m.path), "the daemon survived");
    assert_eq!(std::fs::read_to_string(m.p("ok.txt")).unwrap(), "fine");
    let mut names: Vec<String> = std::fs::read_dir(&m.path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["ok.txt", "slow.bin"]);
    assert_eq!(
        std::fs::metadata(m.p("slow.bin")).unwrap().len(),
        1 << 20,
        "stat needs no GET"
    );
}

/// A reader that stops for longer than `request_timeout` (a paused video player) while its
/// read-ahead has spent the memory budget: the GETs paused for memory must not turn into
/// timeouts and EIO (which the kernel's read-ahead would swallow, but a reader waiting for the
/// block would get). The rest of the file reads back whole after the pause.
#[test]
fn a_reader_paused_longer_than_the_request_timeout_reads_on() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("pause");
    let data = pattern(48 << 20, 5);
    s3.put_objects(
        "pause",
        vec![("movie.bin".into(), Bytes::from(data.clone()))],
    );
    let m = s3_mount(
        &s3,
        "s3://pause",
        &[
            "request_timeout=3s",
            "retries=0",
            "max_memory=8M",
            "cache=off",
        ],
    );
    let mut f = std::fs::File::open(m.p("movie.bin")).unwrap();
    let mut got = vec![0u8; 4 << 20];
    f.read_exact(&mut got).unwrap();
    // The read-ahead fills the budget; its GETs pause with their requests open.
    std::thread::sleep(Duration::from_secs(8));
    f.read_to_end(&mut got)
        .unwrap_or_else(|e| panic!("the read after the pause failed: {e}\n{}", m.log_text()));
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes after the pause are the file's");
    // The kernel retries a failed read-ahead read itself, so the reader alone would not see
    // an error: none may have reached the kernel at all.
    let log = m.log_text();
    assert!(
        !log.contains("failed op"),
        "a read failed after the pause:\n{log}"
    );
}
