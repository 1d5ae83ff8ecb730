//! systemd's readiness protocol: the daemon, run in the foreground with `NOTIFY_SOCKET`
//! pointing at a test datagram socket, sends `READY=1` only once the mount answers, pings the
//! watchdog when `WATCHDOG_USEC` asks for it, and sends `STOPPING=1` on SIGTERM.

mod harness;
mod support;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Datagrams received within `limit`, until one contains `until`.
fn receive_until(sock: &UnixDatagram, until: &str, limit: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.contains(until);
            got.push(msg);
            if done {
                break;
            }
        }
    }
    got
}

#[test]
fn ready_after_the_mount_answers_watchdog_pings_and_stopping_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    std::fs::write(src.join("f"), "x").unwrap();
    let sock_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cloudmount"))
        .args(["mount", &format!("file://{}", src.display())])
        .arg(&mnt)
        .args(["-f", "-o"])
        .arg(format!("cache={}", dir.path().join("cache").display()))
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let _unmount = Unmount(mnt.clone());

    let ready = receive_until(&sock, "READY=1", Duration::from_secs(30));
    assert!(
        ready.last().is_some_and(|m| m.contains("READY=1")),
        "no READY=1: {ready:?}"
    );
    // READY=1 comes only once the mount answers.
    assert!(support::is_mounted(&mnt), "READY=1 before the mount");
    assert_eq!(std::fs::read_to_string(mnt.join("f")).unwrap(), "x");
    assert!(ready.last().is_some_and(|m| m.contains("STATUS=serving")));

    // Watchdog: WATCHDOG_USEC=0.4 s asks for a ping at least every 0.2 s.
    let mut pings = 0;
    let start = Instant::now();
    let mut buf = [0u8; 256];
    while start.elapsed() < Duration::from_secs(2) {
        if let Ok(n) = sock.recv(&mut buf) {
            pings += usize::from(&buf[..n] == b"WATCHDOG=1");
        }
    }
    assert!(pings >= 4, "{pings} watchdog pings in 2 s");

    // SIGTERM: STOPPING=1, then the daemon unmounts and exits 0.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let stopping = receive_until(&sock, "STOPPING=1", Duration::from_secs(10));
    assert!(
        stopping.iter().any(|m| m.contains("STOPPING=1")),
        "no STOPPING=1: {stopping:?}"
    );
    let exited = support::wait_until(Duration::from_secs(30), || {
        child.try_wait().ok().flatten().is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(exited && status.success(), "{status:?}");
    assert!(!support::is_mounted(&mnt));
}

/// Unmounts on drop, even when the test fails.
struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        harness::unmount(&self.0);
    }
}
