//! Writes through a real mount against the S3 server (moto): what programs write and close is
//! on the server, byte for byte; renames, removals and directories behave like a filesystem;
//! errors reach the writer at close; a read-only mount refuses every change.

mod harness;
mod support;

use harness::{pattern, sh, MountCmd};
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use support::{DelayProxy, S3Server};

/// The object's bytes on the server, or `None` when it does not exist.
fn server_bytes(s3: &S3Server, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let store = s3.store(bucket);
    support::block_on(async move {
        let got = store.get(&ObjPath::from(key)).await.ok()?;
        Some(got.bytes().await.ok()?.to_vec())
    })
}

fn server_etag(s3: &S3Server, bucket: &str, key: &str) -> Option<String> {
    let store = s3.store(bucket);
    support::block_on(async move { store.head(&ObjPath::from(key)).await.ok()?.e_tag })
}

fn mount(s3: &S3Server, bucket: &str, extra: &[&str]) -> harness::Mounted {
    MountCmd::s3(s3, bucket, extra).mount()
}

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

#[test]
fn files_written_through_the_mount_arrive_intact_and_namespace_ops_work() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("wbucket");
    let m = mount(&s3, "wbucket", &[]);
    let mnt = m.path.display().to_string();

    // Create, then read back through the mount and from the server.
    ok(&format!("echo hello > {mnt}/a.txt"));
    assert_eq!(server_bytes(&s3, "wbucket", "a.txt").unwrap(), b"hello\n");
    assert_eq!(ok(&format!("cat {mnt}/a.txt")), "hello\n");
    ok(&format!("echo again >> {mnt}/a.txt"));
    assert_eq!(
        server_bytes(&s3, "wbucket", "a.txt").unwrap(),
        b"hello\nagain\n",
        "append"
    );
    // fallocate(1) grows a file with zeros (nothing can be reserved on the server).
    ok(&format!("fallocate -l 4096 {mnt}/fa"));
    assert_eq!(ok(&format!("stat -c %s {mnt}/fa")).trim(), "4096");
    assert_eq!(server_bytes(&s3, "wbucket", "fa").unwrap(), vec![0u8; 4096]);

    // Directories and a copied 3 MiB file.
    let local = tempfile::tempdir().unwrap();
    let data = pattern(3 << 20, 5);
    std::fs::write(local.path().join("blob"), &data).unwrap();
    ok(&format!(
        "mkdir -p {mnt}/dir/sub && ls {mnt}/dir | grep -qx sub"
    ));
    ok(&format!(
        "cp {}/blob {mnt}/dir/sub/blob",
        local.path().display()
    ));
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "wbucket", "dir/sub/blob").unwrap()),
        support::md5_of_bytes(&data)
    );
    assert_eq!(
        support::md5_of_file(m.p("dir/sub/blob")),
        support::md5_of_bytes(&data)
    );

    // Rename a file across directories, then a directory.
    ok(&format!("mv {mnt}/a.txt {mnt}/dir/b.txt"));
    assert!(server_bytes(&s3, "wbucket", "a.txt").is_none());
    assert_eq!(
        server_bytes(&s3, "wbucket", "dir/b.txt").unwrap(),
        b"hello\nagain\n"
    );
    ok(&format!("mv {mnt}/dir {mnt}/moved"));
    assert!(server_bytes(&s3, "wbucket", "dir/b.txt").is_none());
    assert!(server_bytes(&s3, "wbucket", "moved/sub/blob").is_some());
    assert_eq!(ok(&format!("cat {mnt}/moved/b.txt")), "hello\nagain\n");

    // Removal: a non-empty directory refuses, files go, then the directory.
    let (removed, _, err) = sh(&format!("rmdir {mnt}/moved/sub"));
    assert!(!removed && err.contains("not empty"), "{err}");
    ok(&format!("rm {mnt}/moved/sub/blob && rmdir {mnt}/moved/sub"));
    assert!(server_bytes(&s3, "wbucket", "moved/sub/blob").is_none());
    assert_eq!(ok(&format!("ls {mnt}/moved")), "b.txt\n");

    // Truncate, and overwrite with O_TRUNC.
    ok(&format!("truncate -s 3 {mnt}/moved/b.txt"));
    assert_eq!(server_bytes(&s3, "wbucket", "moved/b.txt").unwrap(), b"hel");
    ok(&format!("echo new > {mnt}/moved/b.txt"));
    assert_eq!(
        server_bytes(&s3, "wbucket", "moved/b.txt").unwrap(),
        b"new\n"
    );

    // An empty new directory is listed while it exists only in the mount.
    ok(&format!(
        "mkdir {mnt}/fresh && ls {mnt} | grep -qx fresh && rmdir {mnt}/fresh"
    ));
    assert!(!ok(&format!("ls {mnt}")).contains("fresh"));
}

#[test]
fn a_large_file_goes_up_in_parts_and_a_one_byte_edit_is_kept() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("big");
    let m = mount(&s3, "big", &[]);
    let local = tempfile::tempdir().unwrap();
    let mut data = pattern(200 << 20, 9);
    std::fs::write(local.path().join("big.bin"), &data).unwrap();
    ok(&format!(
        "dd if={}/big.bin of={}/big.bin bs=1M status=none",
        local.path().display(),
        m.path.display()
    ));
    let etag = server_etag(&s3, "big", "big.bin").unwrap();
    assert!(
        etag.trim_matches('"').contains('-'),
        "a multipart upload has an ETag of the form md5-parts: {etag}"
    );
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "big", "big.bin").unwrap()),
        support::md5_of_bytes(&data)
    );
    // One byte in the middle, in place.
    let at = 100_000_000;
    ok(&format!(
        "printf Z | dd of={}/big.bin bs=1 seek={at} conv=notrunc status=none",
        m.path.display()
    ));
    data[at] = b'Z';
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "big", "big.bin").unwrap()),
        support::md5_of_bytes(&data)
    );
    // Only the 8 MiB part holding the byte went up; the other 24 were copied on the server.
    let log = m.log_text();
    assert!(
        log.contains("uploaded the changed parts") && log.contains("sent=8388608"),
        "UploadPartCopy used; log:\n{log}"
    );
    // An append fetches nothing and sends only the new bytes.
    ok(&format!("printf END >> {}/big.bin", m.path.display()));
    data.extend_from_slice(b"END");
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "big", "big.bin").unwrap()),
        support::md5_of_bytes(&data)
    );
    let log = m.log_text();
    assert!(
        log.contains("sent=3 "),
        "only the 3 appended bytes sent; log:\n{log}"
    );
    assert_eq!(
        support::md5_of_file(m.p("big.bin")),
        support::md5_of_bytes(&data)
    );
}

#[test]
fn read_only_mounts_refuse_changes_and_upload_errors_reach_close() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("errs");
    s3.put_objects("errs", vec![("x".into(), bytes::Bytes::from_static(b"x"))]);
    {
        let m = mount(&s3, "errs", &["ro"]);
        for cmd in [
            "touch {m}/new",
            "rm {m}/x",
            "mkdir {m}/d",
            "mv {m}/x {m}/y",
            "echo a >> {m}/x",
        ] {
            let cmd = cmd.replace("{m}", &m.path.display().to_string());
            let (success, _, err) = sh(&cmd);
            assert!(
                !success && err.contains("Read-only file system"),
                "{cmd}: {err}"
            );
        }
    }
    // A server that stops answering: the writer's close fails, nothing is claimed written.
    let proxy = DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        "PUT ",
        std::time::Duration::from_secs(30),
    );
    let m = MountCmd::s3_via(
        &s3,
        &proxy.endpoint(),
        "errs",
        &["request_timeout=2s", "retries=0"],
    )
    .mount();
    let script = format!(
        "import sys\nf = open('{}/held', 'w')\nf.write('data')\ntry:\n    f.close()\nexcept OSError as e:\n    print('close failed:', e)\n    sys.exit(3)\n",
        m.path.display()
    );
    let (success, out, err) = sh(&format!("python3 -c \"{script}\""));
    assert!(
        !success && out.contains("close failed"),
        "close must report the failed upload: {out} {err}"
    );
    assert!(server_bytes(&s3, "errs", "held").is_none());
}

/// Journal records (`*.key`) under `dir`, at any depth.
fn journal_records(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..10_000 {
        let Some(d) = stack.pop() else { break };
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "key") {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn closed_files_reach_the_server_after_the_daemon_is_killed_mid_upload() {
    use std::process::{Command, Stdio};
    use std::time::Duration;
    let s3 = S3Server::start_moto();
    s3.create_bucket("crash");
    let cache = tempfile::tempdir().unwrap();
    let cache_opt = format!("cache={}", cache.path().display());
    let local = tempfile::tempdir().unwrap();
    let files: Vec<Vec<u8>> = (0..3)
        .map(|i| pattern((1 << 20) + i * 1000, 20 + i as u32))
        .collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(local.path().join(format!("f{i}")), f).unwrap();
    }
    let upstream = format!("127.0.0.1:{}", s3.port);
    // Every upload is held by the proxy; the daemon is killed while the writers wait in close.
    let proxy = DelayProxy::start(&upstream, "PUT /crash/", Duration::from_secs(120));
    let cmd = MountCmd::s3_via(&s3, &proxy.endpoint(), "crash", &[&cache_opt]);
    {
        let m = cmd.mount();
        let mut writers: Vec<_> = (0..3)
            .map(|i| {
                Command::new("cp")
                    .arg(local.path().join(format!("f{i}")))
                    .arg(m.p(&format!("f{i}")))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn cp")
            })
            .collect();
        assert!(
            support::wait_until(Duration::from_secs(30), || journal_records(cache.path())
                == 3),
            "three closed files journaled ({} found)",
            journal_records(cache.path())
        );
        let pids = harness::daemon_pids(&m.path);
        assert_eq!(pids.len(), 1, "{pids:?}");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pids[0]),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        for w in writers.iter_mut() {
            let done = support::wait_until(Duration::from_secs(20), || {
                w.try_wait().ok().flatten().is_some()
            });
            if !done {
                let _ = w.kill();
                let _ = w.wait();
            }
        }
        assert!(
            server_bytes(&s3, "crash", "f0").is_none(),
            "nothing got through the proxy"
        );
        drop(m);
    }
    // The next mount (same endpoint and cache directory, nothing held) sends what was closed.
    let port = proxy.port;
    drop(proxy);
    let _open = DelayProxy::start_on(port, &upstream, "no such request", Duration::ZERO);
    let m = cmd.mount();
    assert!(
        support::wait_until(Duration::from_secs(30), || journal_records(cache.path())
            == 0),
        "pending uploads resumed; log:\n{}",
        m.log_text()
    );
    for (i, f) in files.iter().enumerate() {
        let got = server_bytes(&s3, "crash", &format!("f{i}")).expect("uploaded after remount");
        assert_eq!(
            support::md5_of_bytes(&got),
            support::md5_of_bytes(f),
            "f{i}"
        );
        let meta = server_meta(&s3, "crash", &format!("f{i}"));
        assert_eq!(
            (
                meta.get("uid").map(String::as_str),
                meta.contains_key("mode")
            ),
            (Some("0"), true),
            "the resumed upload stores the file's attributes: {meta:?}"
        );
    }
    assert!(m
        .log_text()
        .contains("resuming an upload left by an earlier run"));
}

/// A small tmpfs, unmounted on drop.
struct SmallFs(tempfile::TempDir);

impl Drop for SmallFs {
    fn drop(&mut self) {
        // Lazy: the daemon that used it may still be closing its files.
        let _ = sh(&format!("umount -l {}", self.0.path().display()));
    }
}

#[test]
fn a_full_staging_area_answers_enospc_and_the_mount_goes_on() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("full");
    let small = SmallFs(tempfile::tempdir().unwrap());
    ok(&format!(
        "mount -t tmpfs -o size=2m,mode=0700 tmpfs {}",
        small.0.path().display()
    ));
    let cache = format!("cache={}", small.0.path().display());
    let m = mount(&s3, "full", &[&cache]);
    let (written, _, err) = sh(&format!(
        "dd if=/dev/zero of={}/big bs=1M count=4 status=none",
        m.path.display()
    ));
    assert!(!written && err.contains("No space left on device"), "{err}");
    ok(&format!("echo fine > {}/small", m.path.display()));
    assert_eq!(server_bytes(&s3, "full", "small").unwrap(), b"fine\n");
}

/// The object's s3fs-style POSIX metadata on the server (`mode`, `uid`, `gid`, `mtime`).
fn server_meta(
    s3: &S3Server,
    bucket: &str,
    key: &str,
) -> std::collections::HashMap<String, String> {
    let store = s3.store(bucket);
    support::block_on(async move {
        let opts = object_store::GetOptions {
            head: true,
            ..Default::default()
        };
        let got = store
            .get_opts(&ObjPath::from(key), opts)
            .await
            .expect("head");
        got.attributes
            .iter()
            .filter_map(|(k, v)| match k {
                object_store::Attribute::Metadata(n) => Some((n.to_string(), v.to_string())),
                _ => None,
            })
            .collect()
    })
}

#[test]
fn modes_owners_and_times_are_stored_like_s3fs() {
    use object_store::{Attribute, AttributeValue, Attributes, PutOptions};
    let s3 = S3Server::start_moto();
    s3.create_bucket("meta");
    // An object as s3fs writes it.
    let store = s3.store("meta");
    support::block_on(async move {
        let mut a = Attributes::new();
        for (k, v) in [
            ("mode", "33184"),
            ("uid", "1234"),
            ("gid", "4321"),
            ("mtime", "1600000000"),
        ] {
            a.insert(Attribute::Metadata(k.into()), AttributeValue::from(v));
        }
        let opts = PutOptions {
            attributes: a,
            ..Default::default()
        };
        store
            .put_opts(&ObjPath::from("s3fs.txt"), "hi".into(), opts)
            .await
    })
    .expect("put with metadata");
    let m = mount(&s3, "meta", &[]);
    let mnt = m.path.display().to_string();
    assert_eq!(
        ok(&format!("stat -c '%a %u %g %Y' {mnt}/s3fs.txt")).trim(),
        "640 1234 4321 1600000000"
    );
    ok(&format!(
        "echo x > {mnt}/new && chmod 604 {mnt}/new && touch -d @1700000000 {mnt}/new"
    ));
    let meta = server_meta(&s3, "meta", "new");
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("33156"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("mtime").map(String::as_str),
        Some("1700000000"),
        "{meta:?}"
    );
    // chmod and utimens moved the ctime to now, stored to the nanosecond (s3fs's form).
    let ctime: f64 = meta
        .get("ctime")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no ctime: {meta:?}"));
    assert!(ctime > 1_700_000_000.0, "{meta:?}");
    assert_eq!(
        ok(&format!("stat -c %Z {mnt}/new")).trim(),
        (ctime as u64).to_string(),
        "the ctime shown is the one stored"
    );
    assert_eq!(
        meta.get("uid").map(String::as_str),
        Some("0"),
        "created by root: {meta:?}"
    );
    assert_eq!(
        server_bytes(&s3, "meta", "new").unwrap(),
        b"x\n",
        "content unchanged"
    );
}

#[test]
fn symlinks_are_stored_like_s3fs_and_followed() {
    use object_store::{Attribute, AttributeValue, Attributes, PutOptions};
    let s3 = S3Server::start_moto();
    s3.create_bucket("links");
    let store = s3.store("links");
    // A link as s3fs writes it: the target as content, mode S_IFLNK|0777 (41471).
    support::block_on(async move {
        let mut a = Attributes::new();
        a.insert(
            Attribute::Metadata("mode".into()),
            AttributeValue::from("41471"),
        );
        let opts = PutOptions {
            attributes: a,
            ..Default::default()
        };
        store
            .put_opts(&ObjPath::from("d/s3fs-link"), "../data.txt".into(), opts)
            .await
    })
    .expect("put the s3fs link");
    let m = mount(&s3, "links", &[]);
    let mnt = m.path.display().to_string();
    ok(&format!("echo payload > {mnt}/data.txt"));
    ok(&format!("ln -s data.txt {mnt}/mine"));
    assert_eq!(ok(&format!("readlink {mnt}/mine")).trim(), "data.txt");
    assert_eq!(ok(&format!("cat {mnt}/mine")), "payload\n");
    assert_eq!(server_bytes(&s3, "links", "mine").unwrap(), b"data.txt");
    let meta = server_meta(&s3, "links", "mine");
    assert_eq!(
        meta.get("mode").map(String::as_str),
        Some("41471"),
        "{meta:?}"
    );
    assert_eq!(
        ok(&format!("stat -c %F {mnt}/mine")).trim(),
        "symbolic link"
    );
    // The s3fs link, found by name, then listed.
    assert_eq!(
        ok(&format!("readlink {mnt}/d/s3fs-link")).trim(),
        "../data.txt"
    );
    assert_eq!(ok(&format!("cat {mnt}/d/s3fs-link")), "payload\n");
    assert!(
        ok(&format!("ls -l {mnt}/d")).contains("s3fs-link -> ../data.txt"),
        "ls -l shows the link"
    );
    // Renamed and removed like files; the target is untouched.
    ok(&format!("mv {mnt}/mine {mnt}/moved"));
    assert_eq!(ok(&format!("readlink {mnt}/moved")).trim(), "data.txt");
    ok(&format!("rm {mnt}/moved"));
    assert!(server_bytes(&s3, "links", "moved").is_none());
    assert_eq!(
        server_bytes(&s3, "links", "data.txt").unwrap(),
        b"payload\n"
    );
    // A later mount sees the stored link as a link.
    ok(&format!("ln -s /etc/hostname {mnt}/abs"));
    drop(m);
    let m = mount(&s3, "links", &[]);
    let mnt = m.path.display().to_string();
    assert_eq!(ok(&format!("readlink {mnt}/abs")).trim(), "/etc/hostname");
    drop(m);
    // Listed before any lookup: a mount that probes small objects shows the link at once.
    let m = mount(&s3, "links", &["meta_probe_size=4K"]);
    let mnt = m.path.display().to_string();
    let listing = ok(&format!("ls -l {mnt}/d"));
    assert!(listing.contains("s3fs-link -> ../data.txt"), "{listing}");
}

#[test]
fn a_streaming_copy_needs_only_stream_staging_max_of_local_space() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("stream");
    let cache = tempfile::tempdir().unwrap();
    let cache_opt = format!("cache={}", cache.path().display());
    // The bound holds for writes through the daemon; a file the kernel writes (write
    // passthrough) keeps all of it, since the kernel may read any of it back.
    let m = mount(
        &s3,
        "stream",
        &[
            &cache_opt,
            "upload_part_size=5M",
            "stream_staging_max=10M",
            "write_passthrough=false",
        ],
    );
    let data = pattern(64 << 20, 33);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::write(&src, &data).unwrap();
    // One child process holds the descriptor throughout: a flush sent when another test
    // thread forks while it is open would complete the upload early.
    let out = ok(&format!(
        "python3 -c '{STREAM}' {} {} {}",
        m.p("huge.bin").display(),
        src.display(),
        cache.path().display()
    ));
    let report: Vec<&str> = out.lines().collect();
    let staged: u64 = report[0].parse().expect("staged bytes");
    assert!(
        staged < 24 << 20,
        "{staged} bytes staged for a 64 MiB file with stream_staging_max=10M"
    );
    // The dropped start is never read back wrong: the kernel's pages, or EOPNOTSUPP.
    assert!(
        report[1] == "read ok" || report[1] == format!("read errno {}", libc::EOPNOTSUPP),
        "{out}"
    );
    assert_eq!(
        report[2],
        format!("rewrite errno {}", libc::EOPNOTSUPP),
        "nor rewritten"
    );
    assert_eq!(report[3], "append ok", "appending goes on");
    let mut want = data;
    want.extend_from_slice(b"tail");
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "stream", "huge.bin").unwrap()),
        support::md5_of_bytes(&want),
        "every byte arrived"
    );
    assert_eq!(
        support::md5_of_file(m.p("huge.bin")),
        support::md5_of_bytes(&want)
    );
}

/// argv: file, source, cache dir. Writes the source in order in 1 MiB writes, prints the
/// bytes allocated under the cache dir, then tries a read and a rewrite at 0 and an append.
const STREAM: &str = r#"
import os, sys
path, src, cache = sys.argv[1:4]
data = open(src, "rb").read()
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
for at in range(0, len(data), 1 << 20):
    os.pwrite(fd, data[at:at + (1 << 20)], at)
print(sum(os.lstat(os.path.join(d, f)).st_blocks * 512 for d, _, fs in os.walk(cache) for f in fs))
for name, act in [("read", lambda: os.pread(fd, 16, 0) == data[:16] or 1 / 0),
                  ("rewrite", lambda: os.pwrite(fd, b"x", 0)),
                  ("append", lambda: os.pwrite(fd, b"tail", len(data)))]:
    try:
        act()
        print(name, "ok")
    except OSError as e:
        print(name, "errno", e.errno)
os.close(fd)
"#;

/// argv: file, endpoint, bucket, replacement file, `edit` (pwrite 4 bytes at 12 MiB) or
/// `rewrite` (O_TRUNC, the original 20 MiB pattern); then the replacement is PUT, then fsync;
/// prints `ok` or `errno N`.
const RACE: &str = r#"
import os, sys, boto3
path, ep, bucket, other, mode = sys.argv[1:6]
if mode == "edit":
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, b"EDIT", 12 << 20)
else:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, open(other + ".orig", "rb").read())
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.put_object(Bucket=bucket, Key="f.bin", Body=open(other, "rb").read())
try:
    os.fsync(fd)
    print("ok")
except OSError as e:
    print("errno", e.errno)
"#;

#[test]
fn an_edit_of_a_version_replaced_meanwhile_never_mixes_the_two() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("race");
    let m = mount(&s3, "race", &["upload_part_size=5M"]);
    let data = pattern(20 << 20, 41);
    // Stored directly: no handle of the mount still holds the content (a release after the
    // close of a write through the mount may come late, and a new open would join it).
    let store = s3.store("race");
    let put = data.clone();
    support::block_on(async move { store.put(&ObjPath::from("f.bin"), put.into()).await })
        .expect("put");
    // The edit, the replacement by someone else and the fsync run in one child process: a
    // flush sent when another test thread forks while our descriptor is open would upload
    // before the replacement and hide what is tested.
    let other = pattern(20 << 20, 42);
    let dir = tempfile::tempdir().unwrap();
    let other_file = dir.path().join("other");
    std::fs::write(&other_file, &other).unwrap();
    std::fs::write(dir.path().join("other.orig"), &data).unwrap();
    let race = |flags: &str| {
        ok(&format!(
            "python3 -c '{RACE}' {} {} race {} {flags}",
            m.p("f.bin").display(),
            s3.endpoint,
            other_file.display()
        ))
    };
    // Only the edited bytes were staged; the rest of the version they belong to is gone, so
    // the close cannot form the file: ESTALE, and the other version stays whole.
    assert_eq!(race("edit").trim(), "errno 116", "log:\n{}", m.log_text());
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "race", "f.bin").unwrap()),
        support::md5_of_bytes(&other),
        "nothing of the two versions is mixed"
    );
    assert!(m
        .log_text()
        .contains("replaced on the server while open for writing"));

    // A file rewritten whole while someone replaces it: last close wins.
    assert_eq!(race("rewrite").trim(), "ok");
    assert_eq!(
        support::md5_of_bytes(&server_bytes(&s3, "race", "f.bin").unwrap()),
        support::md5_of_bytes(&data),
    );
}

/// Status line and headers of a signed HEAD of `key` (any key, `dir/` markers included).
fn raw_head(s3: &S3Server, bucket: &str, key: &str) -> String {
    ok(&format!(
        "curl -sI --aws-sigv4 aws:amz:{}:s3 --user '{}:{}' '{}/{bucket}/{key}'",
        s3.region, s3.access_key, s3.secret_key, s3.endpoint
    ))
    .to_ascii_lowercase()
}

#[test]
fn directories_are_marker_objects_like_s3fs() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("dirs");
    let m = mount(&s3, "dirs", &[]);
    let mnt = m.path.display().to_string();
    ok(&format!("mkdir {mnt}/empty && chmod 700 {mnt}/empty"));
    let head = raw_head(&s3, "dirs", "empty/");
    assert!(head.starts_with("http/1.1 200"), "a marker object: {head}");
    // S_IFDIR | 0700, as s3fs stores it.
    assert!(head.contains("x-amz-meta-mode: 16832"), "{head}");
    ok(&format!("mkdir -p {mnt}/a/b && echo x > {mnt}/a/b/f"));
    drop(m);

    // A later mount still has the empty directory; a rename moves markers too.
    let m = mount(&s3, "dirs", &[]);
    let mnt = m.path.display().to_string();
    assert!(ok(&format!("ls {mnt}")).lines().any(|l| l == "empty"));
    ok(&format!("mv {mnt}/a {mnt}/c"));
    assert_eq!(ok(&format!("cat {mnt}/c/b/f")), "x\n");
    for (key, status) in [
        ("a/", "404"),
        ("a/b/", "404"),
        ("c/", "200"),
        ("c/b/", "200"),
    ] {
        let head = raw_head(&s3, "dirs", key);
        assert!(
            head.starts_with(&format!("http/1.1 {status}")),
            "{key}: {head}"
        );
    }
    ok(&format!("rmdir {mnt}/empty"));
    assert!(raw_head(&s3, "dirs", "empty/").starts_with("http/1.1 404"));
    assert!(!ok(&format!("ls {mnt}")).lines().any(|l| l == "empty"));
}
