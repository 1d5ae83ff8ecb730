//! s3fs and cloudmount on the same bucket (moto): what s3fs itself writes (Debian's s3fs,
//! installed by `.ci/install.sh`) — a FIFO, a file with extended attributes, a file with a mode
//! and an owner, a directory with a mode — shows through cloudmount as s3fs shows it, and what
//! cloudmount writes shows through s3fs as cloudmount shows it.

mod harness;
mod support;

use harness::MountCmd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An s3fs mount of a moto bucket, unmounted on drop.
struct S3fs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl S3fs {
    fn mount(s3: &support::S3Server, bucket: &str) -> S3fs {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).unwrap();
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, format!("{}:{}\n", s3.access_key, s3.secret_key)).unwrap();
        std::fs::set_permissions(&passwd, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let opts = format!(
            "passwd_file={},url={},use_path_request_style,use_xattr,stat_cache_expire=1",
            passwd.display(),
            s3.endpoint
        );
        let out = Command::new("s3fs")
            .arg(bucket)
            .arg(&path)
            .args(["-o", &opts])
            .output()
            .expect("s3fs (Debian package s3fs; run .ci/install.sh)");
        assert!(
            out.status.success(),
            "s3fs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let up = support::wait_until(Duration::from_secs(15), || support::is_mounted(&path));
        let m = S3fs { _dir: dir, path };
        assert!(up, "s3fs did not mount");
        m
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for S3fs {
    fn drop(&mut self) {
        for _ in 0..20 {
            let _ = Command::new("umount").arg(&self.path).output();
            if !support::is_mounted(&self.path) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
    }
}

/// What both tools must agree on: file type and permission bits, owner, mtime in seconds,
/// and the value of `user.foo`.
fn seen(p: &Path) -> (u32, u32, u32, i64, Option<String>) {
    let md = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {p:?}: {e}"));
    let out = Command::new("getfattr")
        .args(["--only-values", "-n", "user.foo"])
        .arg(p)
        .output()
        .expect("getfattr (Debian package attr)");
    let xattr = out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned());
    (md.mode(), md.uid(), md.gid(), md.mtime(), xattr)
}

fn sh(cmd: &str) {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "`{cmd}`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Make the four kinds of entry under `root` with suffix `n`.
fn make_entries(root: &Path, n: &str) {
    let r = root.display();
    sh(&format!(
        "cd {r} && mkfifo fifo{n} && echo tagged > tagged{n} && setfattr -n user.foo -v bar{n} tagged{n} \
         && echo owned > owned{n} && chmod 640 owned{n} && chown 1234:4321 owned{n} \
         && mkdir dir{n} && chmod 750 dir{n}"
    ));
}

const ENTRIES: [&str; 4] = ["fifo", "tagged", "owned", "dir"];

#[test]
fn what_s3fs_writes_cloudmount_shows_the_same_and_the_reverse() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("interop");

    // s3fs writes; both show the same.
    let theirs = {
        let s = S3fs::mount(&s3, "interop");
        make_entries(&s.path, "1");
        let shown: Vec<_> = ENTRIES
            .iter()
            .map(|e| seen(&s.p(&format!("{e}1"))))
            .collect();
        shown
    };
    assert_eq!(theirs[0].0 & libc::S_IFMT, libc::S_IFIFO, "{theirs:?}");
    assert_eq!(theirs[1].4.as_deref(), Some("bar1"), "{theirs:?}");
    assert_eq!(
        (theirs[2].0, theirs[2].1, theirs[2].2),
        (0o100640, 1234, 4321)
    );
    println!("s3fs wrote: {theirs:?}");
    let m = MountCmd::s3(&s3, "interop", &[]).mount();
    for (i, e) in ENTRIES.iter().enumerate() {
        assert_eq!(
            seen(&m.p(&format!("{e}1"))),
            theirs[i],
            "{e}1 through cloudmount"
        );
    }

    // cloudmount writes; s3fs shows the same.
    make_entries(&m.path, "2");
    let ours: Vec<_> = ENTRIES
        .iter()
        .map(|e| seen(&m.p(&format!("{e}2"))))
        .collect();
    drop(m);
    println!("cloudmount wrote: {ours:?}");
    assert_eq!(ours[0].0 & libc::S_IFMT, libc::S_IFIFO, "{ours:?}");
    assert_eq!(ours[3].0, libc::S_IFDIR | 0o750, "{ours:?}");
    let s = S3fs::mount(&s3, "interop");
    for (i, e) in ENTRIES.iter().enumerate() {
        assert_eq!(seen(&s.p(&format!("{e}2"))), ours[i], "{e}2 through s3fs");
    }
}
