//! The mount helper through util-linux's mount(8): `mount -t cloudmount` and `mount -a -T
//! FSTAB` against the S3 server, options from the command line and from fstab reaching the
//! daemon (`ro`, `uid`, `noexec`, `allow_other`), `-t fuse.cloudmount` through mount.fuse3,
//! userspace-only ones (`_netdev`, `nofail`, `x-systemd.*`)
//! never reaching the kernel.

mod harness;
mod support;

use harness::{run_bounded, unmount};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::S3Server;

/// A link at `path` (`/sbin/mount.cloudmount`, `/usr/local/bin/cloudmount`) to the binary
/// under test for the test's length; what was there is moved aside and put back afterwards.
struct HelperLink {
    path: PathBuf,
    saved: Option<PathBuf>,
}

impl HelperLink {
    fn install(path: &str) -> HelperLink {
        let path = PathBuf::from(path);
        let aside = path.with_extension("cloudmount-test-saved");
        let saved = std::fs::rename(&path, &aside).ok().map(|_| aside);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cloudmount"), &path)
            .unwrap_or_else(|e| panic!("link {} (tests run as root): {e}", path.display()));
        HelperLink { path, saved }
    }
}

impl Drop for HelperLink {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(aside) = &self.saved {
            let _ = std::fs::rename(aside, &self.path);
        }
    }
}

/// Unmounts on drop, even when the test fails.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        unmount(&self.0);
    }
}

/// The mountinfo line of `mnt`: (mount options, fs type, super options).
fn mountinfo(mnt: &Path) -> Option<(String, String, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = mnt.to_string_lossy().into_owned();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let dash = f.iter().position(|x| *x == "-")?;
        (support::unescape_mountinfo(f.get(4)?) == want).then(|| {
            (
                f.get(5).unwrap_or(&"").to_string(),
                f.get(dash + 1).unwrap_or(&"").to_string(),
                f.get(dash + 3).unwrap_or(&"").to_string(),
            )
        })
    })
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = run_bounded(cmd, Duration::from_secs(120));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn mount_t_cloudmount_and_fstab_lines_go_through_util_linux_mount() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("helper");
    s3.put_objects("helper", vec![("hello.txt".into(), "hi\n".into())]);
    let _link = HelperLink::install("/sbin/mount.cloudmount");
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let common = format!(
        "endpoint={},cache={},log_file={}",
        s3.endpoint,
        dir.path().join("cache").display(),
        dir.path().join("log").display()
    );
    let env = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", &s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
            .env("HOME", dir.path());
    };

    // mount -t cloudmount, with options mount(8) and systemd use mixed in.
    let mut c = Command::new("mount");
    c.args(["-t", "cloudmount", "s3://helper"])
        .arg(&mnt)
        .arg("-o")
        .arg(format!(
            "{common},ro,uid=1234,_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30"
        ));
    env(&mut c);
    let (ok, out) = run(&mut c);
    let guard = Unmount(mnt.clone());
    assert!(ok, "mount -t cloudmount failed: {out}");
    let (opts, fstype, sopts) = mountinfo(&mnt).expect("mounted");
    assert_eq!(
        fstype, "fuse.cloudmount",
        "the type findmnt and systemd see"
    );
    assert!(
        opts.split(',').any(|o| o == "ro"),
        "ro reached the kernel: {opts}"
    );
    for userspace in ["_netdev", "nofail", "x-systemd"] {
        assert!(
            !opts.contains(userspace) && !sopts.contains(userspace),
            "{userspace} reached the kernel: {opts} {sopts}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello.txt")).unwrap(),
        "hi\n"
    );
    let (_, uid) = run(Command::new("stat")
        .args(["-c", "%u"])
        .arg(mnt.join("hello.txt")));
    assert_eq!(uid.trim(), "1234", "uid reached the daemon");
    let touch = std::fs::write(mnt.join("new"), "x");
    assert_eq!(
        touch.err().and_then(|e| e.raw_os_error()),
        Some(libc::EROFS)
    );
    let (ok, out) = run(Command::new("umount").arg(&mnt));
    assert!(ok, "umount: {out}");
    drop(guard);

    // An fstab line, mounted by mount -a -T.
    let fstab = dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# test fstab\ns3://helper {} cloudmount {common},noexec,allow_other,_netdev,nofail 0 0\n",
            mnt.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("mount");
    c.arg("-a").arg("-T").arg(&fstab);
    env(&mut c);
    let (ok, out) = run(&mut c);
    let _guard = Unmount(mnt.clone());
    assert!(ok, "mount from the fstab failed: {out}");
    let (opts, _, sopts) = mountinfo(&mnt).expect("mounted from fstab");
    assert!(opts.split(',').any(|o| o == "noexec"), "{opts}");
    assert!(
        sopts.split(',').any(|o| o == "allow_other"),
        "allow_other reached the kernel: {sopts}"
    );
    assert!(opts.split(',').any(|o| o == "rw"), "{opts}");
    std::fs::write(mnt.join("new"), "x").expect("rw from the fstab line");
    let (ok, _) = run(Command::new("umount").arg(&mnt));
    assert!(ok);

    // fuse.cloudmount: mount(8) runs mount.fuse3, which runs `cloudmount SOURCE DIR -o ...`
    // from mount(8)'s fixed PATH, where `make install` puts it.
    let _bin = HelperLink::install("/usr/local/bin/cloudmount");
    let mut c = Command::new("mount");
    c.args(["-t", "fuse.cloudmount", "s3://helper"])
        .arg(&mnt)
        .arg("-o")
        .arg(format!("{common},ro,_netdev,nofail"));
    env(&mut c);
    let (ok, out) = run(&mut c);
    let guard = Unmount(mnt.clone());
    assert!(ok, "mount -t fuse.cloudmount failed: {out}");
    let (opts, _, sopts) = mountinfo(&mnt).expect("mounted through mount.fuse3");
    assert!(opts.split(',').any(|o| o == "ro"), "{opts}");
    assert!(
        !sopts.contains("_netdev") && !sopts.contains("nofail"),
        "{sopts}"
    );
    assert_eq!(
        std::fs::read_to_string(mnt.join("hello.txt")).unwrap(),
        "hi\n"
    );
    let (ok, out) = run(Command::new("umount").arg(&mnt));
    assert!(ok, "umount: {out}");
    drop(guard);

    // A bad option in fstab: a clear error naming it, nothing mounted.
    std::fs::write(
        &fstab,
        format!(
            "s3://helper {} cloudmount {common},bogus_opt 0 0\n",
            mnt.display()
        ),
    )
    .unwrap();
    let mut c = Command::new("mount");
    c.arg("-T").arg(&fstab).arg(&mnt);
    env(&mut c);
    let (ok, out) = run(&mut c);
    assert!(!ok && out.contains("bogus_opt"), "{out}");
    assert!(mountinfo(&mnt).is_none());
}
