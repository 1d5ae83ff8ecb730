//! `uid=`, `gid=`, `umask=`, `file_mode=` and `dir_mode=` bound what objects' stored metadata
//! (s3fs's `x-amz-meta-mode`, `-uid`, `-gid`) says, as in s3fs: a writer of the bucket cannot
//! grant local permissions the mount options forbid. The table is docs/permissions.md.
//! Against moto.

mod harness;
mod support;

use harness::MountCmd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const USER: &str = "cloudmount-test";

/// (mode & 0o7777, uid, gid) of `rel` in `m`.
fn shown(m: &harness::Mounted, rel: &str) -> (u32, u32, u32) {
    let md = std::fs::metadata(m.p(rel)).unwrap_or_else(|e| panic!("stat {rel}: {e}"));
    (md.mode() & 0o7777, md.uid(), md.gid())
}

#[test]
fn mount_options_bound_what_stored_metadata_says() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("own");
    // A file and a directory marker a bucket writer stored as 0777, owned by 4242:4343; and a
    // file with no metadata at all.
    s3.boto(
        "meta = {'mode': str(0o100777), 'uid': '4242', 'gid': '4343'}\n\
         c.put_object(Bucket='own', Key='open.txt', Body=b'secret', Metadata=meta)\n\
         c.put_object(Bucket='own', Key='dir/', Body=b'', Metadata={'mode': str(0o40777), 'uid': '4242', 'gid': '4343'})\n\
         c.put_object(Bucket='own', Key='dir/in.txt', Body=b'x')\n\
         c.put_object(Bucket='own', Key='plain.txt', Body=b'plain')",
    );
    let me = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );

    // Defaults: the stored metadata as it is; the mounting user and 0644 without any.
    let m = MountCmd::s3(&s3, "own", &[]).mount();
    assert_eq!(shown(&m, "open.txt"), (0o777, 4242, 4343));
    // A directory's metadata is on its marker object, read at lookup.
    assert_eq!(shown(&m, "dir"), (0o777, 4242, 4343));
    assert_eq!(shown(&m, "plain.txt"), (0o644, me.0, me.1));
    drop(m);

    // uid=/gid= replace the stored owner.
    let m = MountCmd::s3(&s3, "own", &["uid=1000", "gid=1001"]).mount();
    assert_eq!(shown(&m, "open.txt"), (0o777, 1000, 1001));
    assert_eq!(shown(&m, "plain.txt"), (0o644, 1000, 1001));
    drop(m);

    // umask= masks stored modes and the defaults.
    let m = MountCmd::s3(&s3, "own", &["umask=077"]).mount();
    assert_eq!(shown(&m, "open.txt").0, 0o700);
    assert_eq!(shown(&m, "dir").0, 0o700);
    assert_eq!(shown(&m, "plain.txt").0, 0o600);
    drop(m);

    // file_mode=/dir_mode= replace them.
    let m = MountCmd::s3(&s3, "own", &["file_mode=0640", "dir_mode=0750", "umask=0"]).mount();
    assert_eq!(shown(&m, "open.txt").0, 0o640);
    assert_eq!(shown(&m, "plain.txt").0, 0o640);
    assert_eq!(shown(&m, "dir").0, 0o750);
    drop(m);

    // With allow_other the kernel enforces the bounded modes: the stored 0777 grants nothing.
    support::ensure_test_user(USER);
    let m = MountCmd::s3(&s3, "own", &["allow_other", "umask=077"]).mount();
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = m.p("open.txt");
    let out = support::run_as(USER, &["cat", &path.to_string_lossy()]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "another user read a file the mount's umask closes: {out:?}"
    );
    drop(m);
    let m = MountCmd::s3(&s3, "own", &["allow_other"]).mount();
    std::fs::set_permissions(m.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = support::run_as(USER, &["cat", &m.p("open.txt").to_string_lossy()]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "secret",
        "without the option the stored 0777 lets it: {out:?}"
    );
}
