//! `mknod` and `mkfifo` through a real mount against moto: FIFOs, sockets, character and
//! block devices and regular files are stored as s3fs stores them (an empty object whose
//! `x-amz-meta-mode` carries the type bits, plus `x-amz-meta-rdev` for devices), show with
//! their types after a remount, in a listing and by name, and work as what they are (a FIFO
//! passes data through the kernel). Hard links answer EPERM.

mod harness;
mod support;

use harness::MountCmd;
use nix::sys::stat::{mknod, Mode, SFlag};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// (type bits, permission bits, rdev) of `path`, not following links.
fn kind_of(path: &std::path::Path) -> (u32, u32, u64) {
    let md = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("stat {path:?}: {e}"));
    (md.mode() & libc::S_IFMT, md.mode() & 0o7777, md.rdev())
}

#[test]
fn special_files_are_stored_as_s3fs_stores_them_and_survive_a_remount() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("nodes");
    let dev_c = nix::sys::stat::makedev(4, 5);
    let dev_b = nix::sys::stat::makedev(8, 1);
    let want = [
        ("fifo", libc::S_IFIFO, 0o640, 0),
        ("sock", libc::S_IFSOCK, 0o755, 0),
        ("cdev", libc::S_IFCHR, 0o600, dev_c),
        ("bdev", libc::S_IFBLK, 0o660, dev_b),
        ("plain", libc::S_IFREG, 0o604, 0),
    ];
    {
        let m = MountCmd::s3(&s3, "nodes", &[]).mount();
        let old = nix::sys::stat::umask(Mode::empty());
        for (name, kind, perm, rdev) in want {
            let flag = SFlag::from_bits_truncate(kind);
            let made = mknod(&m.p(name), flag, Mode::from_bits_truncate(perm), rdev);
            if let Err(e) = made {
                nix::sys::stat::umask(old);
                panic!("mknod {name}: {e}");
            }
        }
        nix::sys::stat::umask(old);
        for (name, kind, perm, rdev) in want {
            assert_eq!(kind_of(&m.p(name)), (kind, perm, rdev), "{name} as made");
        }
        // A FIFO made here works as one (the kernel serves it).
        let fifo = m.p("fifo");
        let writer = std::thread::spawn(move || std::fs::write(fifo, b"through the pipe"));
        let got = std::fs::read(m.p("fifo")).expect("read the FIFO");
        writer.join().unwrap().expect("write the FIFO");
        assert_eq!(got, b"through the pipe");
        assert!(std::fs::metadata(m.p("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        // Hard links are not there, as on Linux filesystems without them.
        let e = std::fs::hard_link(m.p("plain"), m.p("plain2")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "link: {e}");
        // Names are taken.
        let again = mknod(
            &m.p("fifo"),
            SFlag::S_IFIFO,
            Mode::from_bits_truncate(0o644),
            0,
        );
        assert_eq!(again, Err(nix::errno::Errno::EEXIST));
    }

    // The objects: empty, with s3fs's metadata.
    let meta = s3.boto(
        "for k in ['fifo', 'sock', 'cdev', 'bdev', 'plain']:\n\
         \x20   h = c.head_object(Bucket='nodes', Key=k)\n\
         \x20   print(k, h['ContentLength'], h['Metadata'].get('mode'), h['Metadata'].get('rdev'))",
    );
    for (name, kind, perm, rdev) in want {
        let rdev = if rdev == 0 {
            "None".to_string()
        } else {
            rdev.to_string()
        };
        let line = format!("{name} 0 {} {rdev}", kind | perm);
        assert!(meta.lines().any(|l| l == line), "want {line:?} in\n{meta}");
    }

    // A fresh mount shows the same types, first in a listing, then by name.
    let m = MountCmd::s3(&s3, "nodes", &[]).mount();
    let listed: Vec<(String, bool, bool, bool, bool)> = std::fs::read_dir(m.path.clone())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                t.is_fifo(),
                t.is_socket(),
                t.is_char_device(),
                t.is_block_device(),
            )
        })
        .collect();
    for (name, f, s, c, b) in &listed {
        let want = match name.as_str() {
            "fifo" => (true, false, false, false),
            "sock" => (false, true, false, false),
            "cdev" => (false, false, true, false),
            "bdev" => (false, false, false, true),
            _ => (false, false, false, false),
        };
        assert_eq!((*f, *s, *c, *b), want, "listed type of {name}");
    }
    assert_eq!(listed.len(), 5, "{listed:?}");
    for (name, kind, perm, rdev) in want {
        assert_eq!(
            kind_of(&m.p(name)),
            (kind, perm, rdev),
            "{name} after a remount"
        );
    }
    // They rename and delete like files.
    std::fs::rename(m.p("cdev"), m.p("cdev2")).expect("rename a device file");
    assert_eq!(kind_of(&m.p("cdev2")), (libc::S_IFCHR, 0o600, dev_c));
    std::fs::remove_file(m.p("fifo")).expect("unlink a FIFO");
    assert!(!m.p("fifo").exists());
}
