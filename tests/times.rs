//! Times through a real mount against moto: appends, renames, chmod, chown, utimens and
//! extended-attribute changes move ctime (and content changes mtime) as on Linux, and what
//! the mount showed is what a fresh mount reads back from the stored metadata. Directory
//! entry changes move the directory's mtime and ctime, stored on its marker object. Access
//! times are not kept (noatime).

mod harness;
mod support;

use harness::MountCmd;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

/// A named change of the file.
type Step<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// (mtime, ctime) of `p` to the nanosecond.
fn times(p: &std::path::Path) -> ((i64, i64), (i64, i64)) {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("stat {p:?}: {e}"));
    ((m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec()))
}

/// A moment later than the last change (times have nanoseconds, but be clear of any tie).
fn later() {
    std::thread::sleep(Duration::from_millis(20));
}

#[test]
fn changes_move_ctime_and_mtime_and_a_fresh_mount_reads_them_back() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("times");
    let m = MountCmd::s3(&s3, "times", &[]).mount();
    std::fs::create_dir(m.p("d")).unwrap();
    std::fs::write(m.p("d/f"), b"one").unwrap();
    let (m0, c0) = times(&m.p("d/f"));

    // Append: mtime and ctime.
    later();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(m.p("d/f"))
        .unwrap();
    f.write_all(b" two").unwrap();
    drop(f);
    let (m1, c1) = times(&m.p("d/f"));
    assert!(
        m1 > m0 && c1 > c0,
        "append moves both: {m0:?} {c0:?} → {m1:?} {c1:?}"
    );

    // chmod, chown, utimens, setxattr: ctime only (utimens sets mtime as asked).
    let mut last_c = c1;
    let steps: Vec<Step> = vec![
        (
            "chmod",
            Box::new(|| {
                std::fs::set_permissions(m.p("d/f"), std::fs::Permissions::from_mode(0o600))
                    .unwrap()
            }),
        ),
        (
            "chown",
            Box::new(|| std::os::unix::fs::chown(m.p("d/f"), Some(1234), Some(4321)).unwrap()),
        ),
        (
            "setxattr",
            Box::new(|| {
                let ok = std::process::Command::new("setfattr")
                    .args(["-n", "user.k", "-v", "v"])
                    .arg(m.p("d/f"))
                    .status()
                    .expect("setfattr (Debian package attr)")
                    .success();
                assert!(ok, "setfattr");
            }),
        ),
    ];
    for (what, step) in &steps {
        later();
        step();
        let (mt, ct) = times(&m.p("d/f"));
        assert_eq!(mt, m1, "{what} leaves mtime");
        assert!(ct > last_c, "{what} moves ctime");
        last_c = ct;
    }
    later();
    let set = std::time::UNIX_EPOCH + Duration::new(1_600_000_000, 123_456_789);
    let file = std::fs::File::options()
        .write(true)
        .open(m.p("d/f"))
        .unwrap();
    file.set_modified(set).unwrap();
    drop(file);
    let (mt, ct) = times(&m.p("d/f"));
    assert_eq!(mt, (1_600_000_000, 123_456_789), "utimens sets mtime");
    assert!(ct > last_c, "utimens moves ctime");

    // Rename: the file's ctime moves, its mtime stays; both directories' mtime/ctime move.
    let (dm0, dc0) = times(&m.p("d"));
    later();
    std::fs::rename(m.p("d/f"), m.p("d/g")).unwrap();
    let (mt2, ct2) = times(&m.p("d/g"));
    assert_eq!(mt2, mt, "rename leaves mtime");
    assert!(ct2 > ct, "rename moves ctime");
    let (dm1, dc1) = times(&m.p("d"));
    assert!(
        dm1 > dm0 && dc1 > dc0,
        "an entry change moves the directory's times"
    );
    let shown = times(&m.p("d/g"));
    let dir_shown = times(&m.p("d"));
    drop(steps);
    // The daemon writes the last directory times at its stop, after the unmount returned:
    // wait until it is gone.
    let daemons = harness::daemon_pids(&m.path);
    drop(m);
    let gone = support::wait_until(Duration::from_secs(20), || {
        daemons
            .iter()
            .all(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
    });
    assert!(gone, "the daemon did not stop");

    // Stored: a fresh mount shows the same times (to the nanosecond) and attributes.
    let m = MountCmd::s3(&s3, "times", &[]).mount();
    assert_eq!(times(&m.p("d/g")), shown, "stored with the rename");
    assert_eq!(
        times(&m.p("d")),
        dir_shown,
        "the directory's times, on its marker object"
    );
    let md = std::fs::metadata(m.p("d/g")).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o600, 1234, 4321)
    );
    assert_eq!(std::fs::read(m.p("d/g")).unwrap(), b"one two");

    // Reading keeps every time (noatime: access times are not stored).
    later();
    let _ = std::fs::read(m.p("d/g")).unwrap();
    assert_eq!(times(&m.p("d/g")), shown);
    let mounted = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mounted
        .lines()
        .find(|l| l.contains(&*m.path.to_string_lossy()))
        .expect("in mountinfo");
    assert!(line.contains("noatime"), "{line}");
}
