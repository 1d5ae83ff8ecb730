//! `allow_other` through a real mount: another user can read only with it, and then only what
//! the mode bits allow (kernel permission checks are on by default).

mod harness;
mod support;

use harness::MountCmd;
use std::os::unix::fs::PermissionsExt;

const USER: &str = "cloudmount-test";

fn source() -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.txt"), "shared\n").unwrap();
    std::fs::create_dir(d.path().join("sub")).unwrap();
    std::fs::write(d.path().join("sub/b.txt"), "b\n").unwrap();
    let src = format!("file://{}", d.path().display());
    (d, src)
}

/// Mount with `opts`, with the mount's parent directory traversable by other users.
fn mount(src: &str, opts: &[&str]) -> harness::Mounted {
    let m = MountCmd::new(src, opts).mount();
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    m
}

fn user_cat(path: &std::path::Path) -> std::process::Output {
    support::run_as(USER, &["cat", &path.to_string_lossy()])
}

#[test]
fn other_users_need_allow_other_and_mode_bits_are_enforced() {
    support::ensure_test_user(USER);
    let (_src_dir, src) = source();

    let m = mount(&src, &[]);
    let out = user_cat(&m.p("a.txt"));
    assert!(
        !out.status.success(),
        "without allow_other another user must be refused"
    );
    drop(m);

    let m = mount(&src, &["allow_other"]);
    let out = user_cat(&m.p("a.txt"));
    assert!(
        out.status.success(),
        "allow_other lets another user read: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "shared\n");
    drop(m);

    let m = mount(&src, &["allow_other", "file_mode=0600", "dir_mode=0700"]);
    let out = user_cat(&m.p("a.txt"));
    assert!(
        !out.status.success(),
        "mode 0600 must keep another user out"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Permission denied"));
    let out = support::run_as(USER, &["ls", &m.p("sub").to_string_lossy()]);
    assert!(
        !out.status.success(),
        "dir_mode 0700 must keep another user out"
    );
    assert_eq!(
        std::fs::read_to_string(m.p("a.txt")).unwrap(),
        "shared\n",
        "the owner still reads"
    );
    drop(m);

    let m = mount(
        &src,
        &["allow_other", "file_mode=0600", "default_permissions=false"],
    );
    let out = user_cat(&m.p("a.txt"));
    assert!(
        out.status.success(),
        "explicitly disabled kernel checks let the user through"
    );
}

#[test]
fn non_root_allow_other_without_user_allow_other_is_explained() {
    support::ensure_test_user(USER);
    let conf = std::fs::read_to_string("/etc/fuse.conf").unwrap_or_default();
    let enabled = conf.lines().any(|l| {
        l.split('#')
            .next()
            .is_some_and(|l| l.trim() == "user_allow_other")
    });
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mp = d.path().join("mnt");
    std::fs::create_dir(&mp).unwrap();
    std::fs::set_permissions(&mp, std::fs::Permissions::from_mode(0o777)).unwrap();
    let src = format!("file://{}", d.path().display());
    // A copy of the binary the other user can execute wherever the checkout lives (a clone
    // in a 0700 temp directory is out of its reach).
    let bin = d.path().join("cloudmount");
    std::fs::copy(harness::bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = support::run_as(
        USER,
        &[
            &bin.to_string_lossy(),
            "mount",
            &src,
            &mp.to_string_lossy(),
            "-f",
            "-o",
            "allow_other,nonempty",
        ],
    );
    if enabled {
        // This machine allows it; the check must not get in the way (the mount itself may
        // still fail for other reasons, but not with this message).
        assert!(!String::from_utf8_lossy(&out.stderr).contains("user_allow_other"));
        harness::unmount(&mp);
    } else {
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("user_allow_other") && err.contains("/etc/fuse.conf"),
            "{err}"
        );
    }
}
