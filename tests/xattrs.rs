//! Extended attributes and POSIX ACLs through a real mount: against moto (stored in s3fs's
//! `x-amz-meta-xattr` format, changed by a copy onto the object itself, never by sending the
//! content again) and against Azurite (`x-ms-meta-xattr`, Set Blob Metadata).

mod harness;
mod support;

use harness::MountCmd;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

fn c(s: &[u8]) -> CString {
    CString::new(s).expect("no NUL")
}

/// `setxattr(path, name, value, flags)`: Ok or the errno.
fn set(path: &Path, name: &str, value: &[u8], flags: i32) -> Result<(), i32> {
    let (p, n) = (c(path.as_os_str().as_bytes()), c(name.as_bytes()));
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

/// `getxattr(path, name)`: the value or the errno.
fn get(path: &Path, name: &str) -> Result<Vec<u8>, i32> {
    let (p, n) = (c(path.as_os_str().as_bytes()), c(name.as_bytes()));
    let mut buf = vec![0u8; 65536];
    // SAFETY: as above; the buffer holds `buf.len()` bytes.
    let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    buf.truncate(r as usize);
    Ok(buf)
}

/// `listxattr(path)`: the names, sorted.
fn list(path: &Path) -> Vec<String> {
    let p = c(path.as_os_str().as_bytes());
    let mut buf = vec![0u8; 65536];
    // SAFETY: as above.
    let r = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(
        r >= 0,
        "listxattr {path:?}: {}",
        std::io::Error::last_os_error()
    );
    buf.truncate(r as usize);
    let mut names: Vec<String> = buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    names.sort();
    names
}

fn remove(path: &Path, name: &str) -> Result<(), i32> {
    let (p, n) = (c(path.as_os_str().as_bytes()), c(name.as_bytes()));
    // SAFETY: as above.
    let r = unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

#[test]
fn user_attributes_are_stored_in_s3fs_format_without_sending_the_content_again() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("xat");
    // 20 MiB written elsewhere: a re-upload would go in parts (partNumber=).
    s3.boto(
        "c.put_object(Bucket='xat', Key='big.bin', Body=b'x' * (20 << 20))\n\
         c.put_object(Bucket='xat', Key='d/small.txt', Body=b'hello', Metadata={'uid': '4321', 'mode': str(0o100640)})",
    );
    let upstream = s3.endpoint.trim_start_matches("http://").to_string();
    let parts = support::DelayProxy::start(&upstream, "partNumber=", Duration::ZERO);
    let copies = support::DelayProxy::start(
        &format!("127.0.0.1:{}", parts.port),
        "x-amz-copy-source",
        Duration::ZERO,
    );
    let m = MountCmd::s3_via(&s3, &copies.endpoint(), "xat", &[]).mount();
    let big = m.p("big.bin");

    assert_eq!(get(&big, "user.none"), Err(libc::ENODATA));
    assert_eq!(list(&big), Vec::<String>::new());
    set(&big, "user.foo", b"bar", 0).expect("setxattr");
    set(&big, "user.bin", &[0, 0xff, 0x10], 0).expect("setxattr binary");
    assert_eq!(get(&big, "user.foo").unwrap(), b"bar");
    assert_eq!(get(&big, "user.bin").unwrap(), vec![0, 0xff, 0x10]);
    assert_eq!(list(&big), vec!["user.bin", "user.foo"]);
    assert_eq!(
        set(&big, "user.foo", b"x", libc::XATTR_CREATE),
        Err(libc::EEXIST)
    );
    assert_eq!(
        set(&big, "user.new", b"x", libc::XATTR_REPLACE),
        Err(libc::ENODATA)
    );
    set(&big, "user.foo", b"baz", libc::XATTR_REPLACE).expect("replace");
    remove(&big, "user.bin").expect("removexattr");
    assert_eq!(remove(&big, "user.bin"), Err(libc::ENODATA));
    let (n_copies, n_parts) = (copies.delayed_count(), parts.delayed_count());
    assert!(
        n_copies >= 4,
        "each change is a copy onto the object: {n_copies} copies, {n_parts} parts\n{}",
        m.log_text()
    );
    assert_eq!(
        parts.delayed_count(),
        0,
        "the 20 MiB content was never sent again"
    );

    // Not stored: security labels; past the 2 KiB of metadata S3 keeps: E2BIG / ENOSPC.
    assert_eq!(set(&big, "security.x", b"1", 0), Err(libc::EOPNOTSUPP));
    assert_eq!(set(&big, "user.big", &[b'a'; 3000], 0), Err(libc::E2BIG));
    set(&big, "user.a", &[b'a'; 900], 0).expect("900 bytes fit");
    assert_eq!(set(&big, "user.b", &[b'b'; 900], 0), Err(libc::ENOSPC));
    assert_eq!(
        get(&big, "user.b"),
        Err(libc::ENODATA),
        "nothing half-stored"
    );

    // A file known only from a listing keeps what it stores (owner, mode) when an attribute
    // is set, and every change moves ctime.
    let small = m.p("d/small.txt");
    let _ = std::fs::read_dir(m.p("d")).unwrap().count();
    let before = std::fs::metadata(&small).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    set(&small, "user.k", b"v", 0).expect("setxattr on a listed file");
    let meta = s3.boto(
        "h = c.head_object(Bucket='xat', Key='d/small.txt')['Metadata']\n\
         print(h.get('uid'), h.get('mode'), h.get('xattr'))\n\
         h = c.head_object(Bucket='xat', Key='big.bin')['Metadata']\n\
         print(h.get('xattr'))",
    );
    let lines: Vec<&str> = meta.lines().collect();
    assert_eq!(
        lines[0], "4321 33184 %7B%22user.k%22%3A%22dg%3D%3D%22%7D",
        "{meta}"
    );
    // s3fs's format: a JSON map of base64 values, percent-encoded, names in order.
    assert_eq!(
        lines[1],
        format!(
            "%7B%22user.a%22%3A%22{}%22%2C%22user.foo%22%3A%22YmF6%22%7D",
            support::b64_encode(&[b'a'; 900])
                .replace('+', "%2B")
                .replace('=', "%3D")
        ),
        "{meta}"
    );
    use std::os::unix::fs::MetadataExt;
    let after = std::fs::metadata(&small).unwrap();
    assert!(
        (after.ctime(), after.ctime_nsec()) > (before.ctime(), before.ctime_nsec()),
        "setxattr moves ctime"
    );
    drop(m);

    // A fresh mount reads them back.
    let m = MountCmd::s3(&s3, "xat", &[]).mount();
    assert_eq!(get(&m.p("big.bin"), "user.foo").unwrap(), b"baz");
    assert_eq!(list(&m.p("d/small.txt")), vec!["user.k"]);
    drop(m);

    // xattr=false: the kernel is told there are none (ENOSYS → EOPNOTSUPP) and stops asking.
    let m = MountCmd::s3(&s3, "xat", &["xattr=false"]).mount();
    assert_eq!(get(&m.p("big.bin"), "user.foo"), Err(libc::EOPNOTSUPP));
}

#[test]
fn posix_acls_are_stored_and_enforced_by_the_kernel() {
    support::ensure_test_user("tests");
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("acl");
    let m = MountCmd::s3(&s3, "acl", &["allow_other", "acl"]).mount();
    let f = m.p("shared.txt");
    std::fs::write(&f, b"for everyone but tests\n").unwrap();
    let path = f.display().to_string();
    let read_as_tests = || support::run_as("tests", &["cat", &path]).status.success();
    assert!(read_as_tests(), "mode 0644: readable");
    let out = std::process::Command::new("setfacl")
        .args(["-m", "u:tests:---", &path])
        .output()
        .expect("setfacl (Debian package acl)");
    assert!(
        out.status.success(),
        "setfacl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!read_as_tests(), "the ACL denies tests");
    let acl = get(&f, "system.posix_acl_access").expect("the ACL is an attribute");
    assert!(acl.len() > 4, "{acl:?}");
    drop(m);

    // Stored: a fresh mount enforces it too; without -o acl it is not served.
    let m = MountCmd::s3(&s3, "acl", &["allow_other", "acl"]).mount();
    let path = m.p("shared.txt").display().to_string();
    assert!(!support::run_as("tests", &["cat", &path]).status.success());
    drop(m);
    let m = MountCmd::s3(&s3, "acl", &[]).mount();
    assert_eq!(
        get(&m.p("shared.txt"), "system.posix_acl_access"),
        Err(libc::EOPNOTSUPP)
    );
}

#[test]
fn azure_keeps_attributes_special_files_and_directory_modes_in_blob_metadata() {
    let az = support::Azurite::start();
    az.create_container("xat");
    let endpoint = format!("endpoint={}", az.blob_endpoint);
    let mount = || {
        MountCmd::new("az://xat", &[&endpoint])
            .env("AZURE_STORAGE_ACCOUNT", &az.account)
            .env("AZURE_STORAGE_ACCESS_KEY", &az.key)
            .mount()
    };
    let m = mount();
    let f = m.p("a.txt");
    std::fs::write(&f, b"azure").unwrap();
    std::fs::create_dir(m.p("d")).unwrap();
    std::fs::set_permissions(
        m.p("d"),
        std::os::unix::fs::PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    set(&m.p("d"), "user.dir", b"on the marker", 0).expect("setxattr on a directory");
    // A FIFO is an empty blob whose metadata says so, as on S3.
    nix::unistd::mkfifo(
        &m.p("pipe"),
        nix::sys::stat::Mode::from_bits_truncate(0o640),
    )
    .expect("mkfifo on Azure");
    set(&f, "user.foo", b"bar", 0).expect("setxattr on Azure");
    set(&f, "user.two", b"2", 0).expect("setxattr on Azure");
    remove(&f, "user.two").expect("removexattr on Azure");
    drop(m);
    let store = az.store("xat");
    let stored = support::block_on(async move {
        use object_store::{Attribute, GetOptions};
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        let got = store
            .get_opts(&object_store::path::Path::from("a.txt"), opts)
            .await
            .expect("HEAD a.txt");
        got.attributes
            .iter()
            .find(|(k, _)| matches!(k, Attribute::Metadata(n) if n == "xattr"))
            .map(|(_, v)| v.to_string())
    });
    assert_eq!(stored.as_deref(), Some("%7B%22user.foo%22%3A%22YmFy%22%7D"));
    let m = mount();
    assert_eq!(get(&m.p("a.txt"), "user.foo").unwrap(), b"bar");
    // A directory's mode and attributes come back from its marker blob.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(m.p("d")).unwrap().mode(),
        libc::S_IFDIR | 0o750
    );
    assert_eq!(get(&m.p("d"), "user.dir").unwrap(), b"on the marker");
    assert_eq!(
        std::fs::symlink_metadata(m.p("pipe")).unwrap().mode(),
        libc::S_IFIFO | 0o640
    );
    assert_eq!(std::fs::read(m.p("a.txt")).unwrap(), b"azure");
}
