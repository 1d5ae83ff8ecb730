//! The crash matrix of the write path (issue 11), through real mounts over moto: the daemon is
//! killed (SIGKILL) or stopped (SIGTERM) while a file is being written, during its close,
//! between the parts of a streaming upload, during the multipart completion and during the
//! journal's replay. After a remount, every file a program closed is intact on the server,
//! nothing no program closed reached it, and a journaled version the server has moved past is
//! set aside in lost+found instead of replacing the newer one.
//!
//! A test proxy ([`DelayProxy`]) holds the request of the stage in question, so the signal
//! lands exactly there.

mod harness;
mod support;

use harness::{daemon_pids, pattern, MountCmd};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStoreExt, PutPayload};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::{block_on, wait_until, DelayProxy, S3Server};

const HOLD: Duration = Duration::from_secs(120);

/// Each case runs twice: with passthrough (where this machine has it, files opened from empty
/// are written by the kernel straight into staging) and with every write through the daemon.
macro_rules! both_ways {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn with_passthrough() {
                super::$case(&[])
            }
            #[test]
            fn without_passthrough() {
                super::$case(&["passthrough=false"])
            }
        }
    )*};
}

both_ways!(
    a_failed_close_then_a_newer_save_keeps_the_newer_version_and_sets_the_old_aside,
    sigkill_while_writing_between_parts_leaves_the_old_version,
    sigkill_during_the_completion_of_a_closed_file_is_finished_by_the_next_mount,
    sigkill_during_the_replay_is_finished_by_the_mount_after,
    sigterm_during_a_close_keeps_the_file_for_the_next_mount,
);

fn server_bytes(s3: &S3Server, bucket: &str, key: &str) -> Option<Vec<u8>> {
    let store = s3.store(bucket);
    block_on(async move {
        let got = store.get(&ObjPath::from(key)).await.ok()?;
        Some(got.bytes().await.ok()?.to_vec())
    })
}

fn put(s3: &S3Server, bucket: &str, key: &str, data: &[u8]) {
    let store = s3.store(bucket);
    let body = PutPayload::from(data.to_vec());
    block_on(async move { store.put(&ObjPath::from(key), body).await }).expect("server put");
}

/// The parent of process `pid`.
fn ppid(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Signal the daemon serving `mountpoint` (while a mount command still waits for it to be
/// ready, the command has the same arguments: the daemon is its child).
fn signal_daemon(mountpoint: &Path, sig: nix::sys::signal::Signal) -> i32 {
    let pids = daemon_pids(mountpoint);
    let daemons: Vec<i32> = pids
        .iter()
        .copied()
        .filter(|p| pids.len() == 1 || ppid(*p).is_some_and(|pp| pids.contains(&pp)))
        .collect();
    assert_eq!(
        daemons.len(),
        1,
        "one daemon serves {}: {pids:?}",
        mountpoint.display()
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemons[0]), sig).expect("kill");
    daemons[0]
}

fn wait_exit(pid: i32) -> bool {
    wait_until(Duration::from_secs(60), || {
        !Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// Write `data` to `path` and close it, returning what `close` said (Rust's `File` drops
/// close errors, which is where a failed upload is reported).
fn write_and_close(path: &Path, data: &[u8]) -> nix::Result<()> {
    use std::io::Write;
    use std::os::fd::IntoRawFd;
    let mut f = std::fs::File::create(path)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc_eio())))?;
    f.write_all(data)
        .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc_eio())))?;
    nix::unistd::close(f.into_raw_fd())
}

fn libc_eio() -> i32 {
    nix::errno::Errno::EIO as i32
}

/// A process started here, killed and reaped on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cp(from: &Path, to: &Path) -> Child {
    Child(
        Command::new("cp")
            .arg(from)
            .arg(to)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cp"),
    )
}

/// One bucket, one cache directory and one proxy port, so every mount of a test is the same
/// source with the same journal.
struct Rig {
    s3: S3Server,
    bucket: String,
    cache: tempfile::TempDir,
    port: u16,
    proxy: Option<DelayProxy>,
    local: tempfile::TempDir,
    /// Options every mount of the test gets (passthrough on or off).
    extra: &'static [&'static str],
}

impl Rig {
    fn new(extra: &'static [&'static str], bucket: &str) -> Rig {
        let s3 = S3Server::start_moto();
        s3.create_bucket(bucket);
        let proxy = DelayProxy::start(&format!("127.0.0.1:{}", s3.port), "no such request", HOLD);
        Rig {
            s3,
            bucket: bucket.to_string(),
            cache: tempfile::tempdir().expect("tempdir"),
            port: proxy.port,
            proxy: Some(proxy),
            local: tempfile::tempdir().expect("tempdir"),
            extra,
        }
    }

    /// From now on, requests containing `needle` are held.
    fn hold(&mut self, needle: &str) {
        self.proxy = None;
        let upstream = format!("127.0.0.1:{}", self.s3.port);
        self.proxy = Some(DelayProxy::start_on(self.port, &upstream, needle, HOLD));
    }

    fn held(&self) -> usize {
        self.proxy.as_ref().map_or(0, DelayProxy::delayed_count)
    }

    fn cmd(&self, opts: &[&str]) -> MountCmd {
        let cache = format!("cache={}", self.cache.path().display());
        let endpoint = format!("http://127.0.0.1:{}", self.port);
        let mut all = vec![cache.as_str(), "upload_part_size=5M"];
        all.extend_from_slice(opts);
        all.extend_from_slice(self.extra);
        MountCmd::s3_via(&self.s3, &endpoint, &self.bucket, &all)
    }

    fn local_file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.local.path().join(name);
        std::fs::write(&p, data).expect("write local file");
        p
    }

    fn server(&self, key: &str) -> Option<Vec<u8>> {
        server_bytes(&self.s3, &self.bucket, key)
    }
}

/// The named case: a close fails, a newer version is saved (by another client), and
/// the next mount keeps the newer one on the server and puts the journaled one in lost+found.
fn a_failed_close_then_a_newer_save_keeps_the_newer_version_and_sets_the_old_aside(
    extra: &'static [&'static str],
) {
    let mut rig = Rig::new(extra, "conflict");
    put(&rig.s3, "conflict", "doc.txt", b"v1\n");
    rig.hold("PUT /conflict/doc.txt");
    let cmd = rig.cmd(&["request_timeout=2s", "retries=0", "stop_timeout=5s"]);
    let m = cmd.mount();
    let closed = write_and_close(&m.p("doc.txt"), b"v2, whose close failed\n");
    assert_eq!(
        closed,
        Err(nix::errno::Errno::EIO),
        "the close reports the failed upload"
    );
    let pid = signal_daemon(&m.path, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_exit(pid), "log:\n{}", m.log_text());
    assert!(m.log_text().contains("journaled"), "{}", m.log_text());
    drop(m);
    put(
        &rig.s3,
        "conflict",
        "doc.txt",
        b"v3, saved later elsewhere\n",
    );
    rig.hold("no such request");
    let m = cmd.mount();
    assert_eq!(
        rig.server("doc.txt").as_deref(),
        Some(&b"v3, saved later elsewhere\n"[..]),
        "the newer version stays; log:\n{}",
        m.log_text()
    );
    assert_eq!(
        support::lost_found_files(rig.cache.path()),
        vec![b"v2, whose close failed\n".to_vec()],
        "log:\n{}",
        m.log_text()
    );
    assert!(m.log_text().contains("set aside in lost+found"));
}

/// SIGKILL while a file is being written (an `O_TRUNC` rewrite, between the parts of its
/// streaming upload): nothing of it reaches the server; the old version stays.
fn sigkill_while_writing_between_parts_leaves_the_old_version(extra: &'static [&'static str]) {
    let mut rig = Rig::new(extra, "between");
    put(&rig.s3, "between", "big.bin", b"the old version");
    // The second part of the streaming upload is held.
    rig.hold("partNumber=2");
    let cmd = rig.cmd(&[]);
    let m = cmd.mount();
    let file = m.p("big.bin");
    let writer = Child(
        Command::new("python3")
            .args([
                "-c",
                "import sys, time\nf = open(sys.argv[1], 'wb')\n\
                 for i in range(16):\n    f.write(bytes([i]) * (1 << 20))\nf.flush()\n\
                 print('written', flush=True)\ntime.sleep(120)\n",
            ])
            .arg(&file)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the writer"),
    );
    assert!(
        wait_until(Duration::from_secs(60), || rig.held() >= 1),
        "the second part never came; log:\n{}",
        m.log_text()
    );
    let pid = signal_daemon(&m.path, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_exit(pid));
    drop(writer);
    drop(m);
    rig.hold("no such request");
    let m = cmd.mount();
    assert_eq!(
        rig.server("big.bin").as_deref(),
        Some(&b"the old version"[..]),
        "log:\n{}",
        m.log_text()
    );
    assert!(support::lost_found_files(rig.cache.path()).is_empty());
}

/// SIGKILL while a closed file's multipart upload is being completed: the next mount sends
/// it again from the journal.
fn sigkill_during_the_completion_of_a_closed_file_is_finished_by_the_next_mount(
    extra: &'static [&'static str],
) {
    let mut rig = Rig::new(extra, "complete");
    let data = pattern(12 << 20, 7);
    let src = rig.local_file("big.bin", &data);
    rig.hold("POST /complete/big.bin?uploadId");
    let cmd = rig.cmd(&[]);
    let m = cmd.mount();
    let writer = cp(&src, &m.p("big.bin"));
    assert!(
        wait_until(Duration::from_secs(60), || rig.held() >= 1),
        "the completion never came; log:\n{}",
        m.log_text()
    );
    let pid = signal_daemon(&m.path, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_exit(pid));
    drop(writer);
    drop(m);
    assert_eq!(rig.server("big.bin"), None, "not completed before the kill");
    rig.hold("no such request");
    let m = cmd.mount();
    let got = rig.server("big.bin").expect("sent by the next mount");
    assert!(got == data, "content differs; log:\n{}", m.log_text());
}

/// SIGKILL while the next mount replays the journal: the mount after that finishes it.
fn sigkill_during_the_replay_is_finished_by_the_mount_after(extra: &'static [&'static str]) {
    let mut rig = Rig::new(extra, "replay");
    let data = pattern(300_000, 3);
    rig.hold("PUT /replay/f.bin");
    let cmd = rig.cmd(&["request_timeout=2s", "retries=0"]);
    let m = cmd.mount();
    assert_eq!(
        write_and_close(&m.p("f.bin"), &data),
        Err(nix::errno::Errno::EIO),
        "the close fails"
    );
    // The last close retried and kept it, journaled; now the daemon dies.
    let pid = signal_daemon(&m.path, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_exit(pid));
    drop(m);
    // The replay's PUT is held too: kill the daemon during it.
    let dir = tempfile::tempdir().unwrap();
    let (mnt, home, log) = (
        dir.path().join("mnt"),
        dir.path().join("home"),
        dir.path().join("log"),
    );
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let before = rig.held();
    let replaying = {
        let (cmd, mnt, home, log) = (rig.cmd(&[]), mnt.clone(), home.clone(), log.clone());
        std::thread::spawn(move || cmd.run_at(&mnt, &home, &log))
    };
    assert!(
        wait_until(Duration::from_secs(60), || rig.held() > before),
        "the replay never sent; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let pid = signal_daemon(&mnt, nix::sys::signal::Signal::SIGKILL);
    assert!(wait_exit(pid));
    let out = replaying.join().expect("mount thread");
    assert!(!out.status.success(), "the killed mount reported success");
    assert!(!harness::is_mounted(&mnt));
    assert_eq!(rig.server("f.bin"), None);
    rig.hold("no such request");
    let m = cmd.mount();
    assert_eq!(
        rig.server("f.bin").as_deref(),
        Some(&data[..]),
        "log:\n{}",
        m.log_text()
    );
}

/// SIGTERM while a close waits for its upload: the stop keeps it (journaled) and the next
/// mount sends it.
fn sigterm_during_a_close_keeps_the_file_for_the_next_mount(extra: &'static [&'static str]) {
    let mut rig = Rig::new(extra, "termclose");
    let data = pattern(200_000, 5);
    let src = rig.local_file("f.bin", &data);
    rig.hold("PUT /termclose/f.bin");
    let cmd = rig.cmd(&["stop_timeout=2s"]);
    let m = cmd.mount();
    let writer = cp(&src, &m.p("f.bin"));
    assert!(
        wait_until(Duration::from_secs(60), || rig.held() >= 1),
        "the upload never came; log:\n{}",
        m.log_text()
    );
    let pid = signal_daemon(&m.path, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_exit(pid), "log:\n{}", m.log_text());
    drop(writer);
    drop(m);
    assert_eq!(rig.server("f.bin"), None);
    rig.hold("no such request");
    let m = cmd.mount();
    assert_eq!(
        rig.server("f.bin").as_deref(),
        Some(&data[..]),
        "log:\n{}",
        m.log_text()
    );
}
