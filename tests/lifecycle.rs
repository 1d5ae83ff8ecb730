//! Daemon life: SIGTERM unmounts cleanly, and an unmount followed at once by a new mount on
//! the same path leaves the new mount alone (the old daemon must not unmount the path again).

mod harness;
mod support;

use harness::{daemon_pids, MountCmd};
use std::time::Duration;

#[test]
fn sigterm_unmounts_and_the_daemon_exits() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "x").unwrap();
    let m = MountCmd::new(&format!("file://{}", src.path().display()), &[]).mount();
    let pids = daemon_pids(&m.path);
    assert_eq!(pids.len(), 1, "one daemon serves the mount: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(
        support::wait_until(Duration::from_secs(10), || !harness::is_mounted(&m.path)),
        "SIGTERM unmounts"
    );
    assert!(
        support::wait_until(Duration::from_secs(10), || daemon_pids(&m.path).is_empty()),
        "and the daemon exits"
    );
    assert!(m.log_text().contains("reason=SIGTERM"), "{}", m.log_text());
}

#[test]
fn immediate_remount_on_the_same_path_survives() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "x").unwrap();
    let source = format!("file://{}", src.path().display());
    let first = MountCmd::new(&source, &[]).mount();
    let mp = first.path.clone();
    let home = first.dir.path().join("home2");
    std::fs::create_dir_all(&home).unwrap();
    for round in 0..3 {
        let out = harness::run_bounded(
            std::process::Command::new(harness::bin())
                .arg("unmount")
                .arg(&mp),
            Duration::from_secs(20),
        );
        assert!(
            out.status.success(),
            "unmount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = MountCmd::new(&source, &[]).run_at(
            &mp,
            &home,
            &first.dir.path().join(format!("log{round}")),
        );
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The old daemon notices its unmount within a fraction of a second; give it time to act.
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            harness::is_mounted(&mp),
            "round {round}: the new mount was unmounted behind our back"
        );
        assert_eq!(std::fs::read_to_string(mp.join("f")).unwrap(), "x");
    }
}

#[test]
fn a_mount_left_dead_by_a_killed_daemon_is_cleared_by_the_next_mount() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "x").unwrap();
    let source = format!("file://{}", src.path().display());
    let first = MountCmd::new(&source, &[]).mount();
    let mp = first.path.clone();
    let pids = daemon_pids(&mp);
    assert_eq!(pids.len(), 1, "{pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        support::wait_until(Duration::from_secs(10), || {
            std::fs::metadata(&mp).err().and_then(|e| e.raw_os_error()) == Some(libc::ENOTCONN)
        }),
        "the killed daemon leaves a dead mount"
    );
    // No fusermount3 -u by hand: the next mount on the path clears it.
    let home = first.dir.path().join("home2");
    std::fs::create_dir_all(&home).unwrap();
    let out = MountCmd::new(&source, &[]).run_at(&mp, &home, &first.dir.path().join("log2"));
    assert!(
        out.status.success(),
        "mount over the dead one: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("detached a dead mount"));
    assert_eq!(std::fs::read_to_string(mp.join("f")).unwrap(), "x");
}

/// Within a second of the kill, with the default attr_timeout: the kernel still holds the dead
/// root's attributes (`stat` works), yet the next mount finds the dead mount from mountinfo and
/// the control socket, detaches it and mounts.
fn remount_right_after_a_kill(cmd: MountCmd, probe: &str) {
    let first = cmd.mount();
    let mp = first.path.clone();
    std::fs::read_dir(&mp).unwrap().count();
    let pids = daemon_pids(&mp);
    assert_eq!(pids.len(), 1, "{pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // Gone, or a zombie nobody reaped yet: either way its sockets are closed.
    let gone = support::wait_until(Duration::from_secs(1), || {
        std::fs::read_to_string(format!("/proc/{}/stat", pids[0])).map_or(true, |s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    });
    assert!(gone, "the daemon did not die");
    let killed = std::time::Instant::now();
    let home = first.dir.path().join("home2");
    std::fs::create_dir_all(&home).unwrap();
    let out = cmd.run_at(&mp, &home, &first.dir.path().join("log2"));
    assert!(
        out.status.success(),
        "mount over the dead one: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("detached a dead mount"));
    assert!(killed.elapsed() < Duration::from_secs(5));
    assert_eq!(std::fs::read_to_string(mp.join(probe)).unwrap(), "x");
}

#[test]
fn a_dead_local_mount_is_cleared_at_once_even_while_stat_still_works() {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("f"), "x").unwrap();
    remount_right_after_a_kill(
        MountCmd::new(&format!("file://{}", src.path().display()), &[]),
        "f",
    );
}

#[test]
fn a_dead_s3_mount_is_cleared_at_once_even_while_stat_still_works() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("dead");
    s3.put_objects(
        "dead",
        vec![("f".to_string(), bytes::Bytes::from_static(b"x"))],
    );
    remount_right_after_a_kill(MountCmd::s3(&s3, "dead", &[]), "f");
}

/// `cloudmount unmount` returns once the daemon has finished its stop, so a new mount of the
/// same bucket never sees the old daemon's last writes land after it. (The stop's flush of
/// directory times once put an `a/b/` marker back after the next mount had renamed `a`.)
#[test]
fn unmount_returns_once_the_daemon_has_sent_its_last_writes() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("stop");
    // Every directory marker write (mkdir, directory times) takes 1.5 s.
    let proxy = support::DelayProxy::start(
        &format!("127.0.0.1:{}", s3.port),
        "x-directory",
        Duration::from_millis(1500),
    );
    let m = MountCmd::s3_via(&s3, &proxy.endpoint(), "stop", &[]).mount();
    let d = m.path.join("d");
    std::fs::create_dir(&d).unwrap();
    // A new entry moves d's times: the stop writes them onto its marker.
    std::fs::write(d.join("f"), "x").unwrap();
    let out = harness::run_bounded(
        std::process::Command::new(harness::bin())
            .arg("unmount")
            .arg(&m.path),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "unmount: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!harness::is_mounted(&m.path));
    // The socket goes last, the process a moment after; without the wait it stays 1.5 s.
    assert!(
        support::wait_until(Duration::from_millis(500), || daemon_pids(&m.path)
            .is_empty()),
        "the daemon was still running when unmount returned: {}",
        m.log_text()
    );
    assert!(
        proxy.delayed_count() >= 2,
        "mkdir and the stop's times went through the proxy"
    );
}
