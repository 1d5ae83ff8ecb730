//! Programs run from a real mount over moto. While one runs, every open that would change its
//! file fails with ETXTBSY, and the program goes on running. That includes `O_RDONLY|O_TRUNC`,
//! which the kernel checks only after the daemon has answered it; before the fix it killed the
//! program with SIGBUS. Once the program has exited, that open empties the file on the server,
//! as on a local disk.

mod harness;
mod support;

use harness::{run_bounded, MountCmd};
use object_store::path::Path as ObjPath;
use object_store::ObjectStoreExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

fn server_size(s3: &support::S3Server, bucket: &str, key: &str) -> Option<u64> {
    let store = s3.store(bucket);
    support::block_on(async move { Some(store.head(&ObjPath::from(key)).await.ok()?.size) })
}

fn open_errno(path: &std::path::Path, write: bool, flags: i32) -> Option<i32> {
    std::fs::OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(flags)
        .open(path)
        .err()
        .and_then(|e| e.raw_os_error())
}

#[test]
fn a_running_program_cannot_be_changed_and_survives_the_attempts() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("progs");
    let m = MountCmd::s3(&s3, "progs", &[]).mount();
    let sleep = std::path::Path::new("/bin/sleep");
    let size = std::fs::metadata(sleep).expect("/bin/sleep").len();
    // The program dying took one to three rounds in 20 before the fix.
    for round in 0..8 {
        let name = format!("sleep{round}");
        let prog = m.p(&name);
        std::fs::copy(sleep, &prog).expect("copy /bin/sleep into the mount");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = Command::new(&prog).arg("30").spawn().expect("run it");
        assert_eq!(open_errno(&prog, true, 0), Some(libc::ETXTBSY), "O_WRONLY");
        assert_eq!(
            open_errno(&prog, false, libc::O_TRUNC),
            Some(libc::ETXTBSY),
            "O_RDONLY|O_TRUNC, round {round}\n{}",
            m.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
        let status = child.try_wait().expect("wait");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            status, None,
            "the program died of the refused open (round {round})"
        );
        assert_eq!(server_size(&s3, "progs", &name), Some(size), "unchanged");
    }
    // The program has exited: the same open empties the file, on the server too.
    let prog = m.p("sleep0");
    assert_eq!(open_errno(&prog, false, libc::O_TRUNC), None);
    assert_eq!(std::fs::metadata(&prog).unwrap().len(), 0);
    assert_eq!(server_size(&s3, "progs", "sleep0"), Some(0));
    // A program that exited normally leaves nothing behind that blocks a rewrite.
    let prog = m.p("sleep1");
    let out = run_bounded(Command::new(&prog).arg("0"), Duration::from_secs(30));
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&prog, b"rewritten").expect("rewrite after the program exited");
    assert_eq!(server_size(&s3, "progs", "sleep1"), Some(9));
}
