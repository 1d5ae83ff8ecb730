use super::*;
use crate::read::DiskBlockCache;

/// A complete cached version of `key`, as the core hands it out.
fn whole(cache: &Arc<DiskBlockCache>, key: &str) -> WholeFile {
    cache.put(key, "e", 3, 0, b"abc");
    let (file, pin) = cache.whole_file(key, "e", 3).expect("complete");
    WholeFile::new(file, pin)
}

fn cache() -> (tempfile::TempDir, Arc<DiskBlockCache>) {
    let dir = tempfile::tempdir().unwrap();
    let c = Arc::new(DiskBlockCache::open(dir.path(), "s3://b", 1 << 20, 4096).unwrap());
    (dir, c)
}

fn id(n: u32) -> impl FnOnce(&std::fs::File) -> std::io::Result<u32> {
    move |_| Ok(n)
}

#[test]
fn opens_of_an_inode_share_one_backing_id_until_the_last_release() {
    let (_d, c) = cache();
    let p = Passthrough::<u32>::new(true);
    let Served::Passthrough(a) = p.open(7, 1, false, Some("e"), Some(whole(&c, "k")), id(11))
    else {
        panic!("first open with a complete file uses passthrough");
    };
    let Served::Passthrough(b) = p.open(7, 2, false, Some("e"), None, |_| {
        panic!("no second registration")
    }) else {
        panic!("later opens join passthrough");
    };
    assert_eq!((*a, *b), (11, 11));
    assert_eq!(c.pinned_versions(), 1);
    p.release(7, 1);
    assert_eq!(p.backed_inodes(), 1, "still open once");
    p.release(7, 2);
    assert_eq!(p.backed_inodes(), 0);
    assert_eq!(
        c.pinned_versions(),
        0,
        "the cache pin went with the last handle"
    );
}

#[test]
fn an_inode_read_by_the_daemon_stays_so_while_open() {
    let (_d, c) = cache();
    let p = Passthrough::<u32>::new(true);
    assert!(matches!(
        p.open(7, 1, false, Some("e"), None, id(1)),
        Served::ByDaemon
    ));
    assert!(
        matches!(
            p.open(7, 2, false, Some("e"), Some(whole(&c, "k")), id(1)),
            Served::ByDaemon
        ),
        "the kernel refuses to mix modes on one inode"
    );
    p.release(7, 1);
    p.release(7, 2);
    assert!(matches!(
        p.open(7, 3, false, Some("e"), Some(whole(&c, "k")), id(5)),
        Served::Passthrough(_)
    ));
}

#[test]
fn a_refused_registration_turns_passthrough_off() {
    let (_d, c) = cache();
    let p = Passthrough::<u32>::new(true);
    let refused = |_: &std::fs::File| Err(std::io::Error::from_raw_os_error(libc::EPERM));
    assert!(matches!(
        p.open(7, 1, false, Some("e"), Some(whole(&c, "k")), refused),
        Served::ByDaemon
    ));
    assert!(!p.enabled());
    assert!(matches!(
        p.open(8, 2, false, Some("e"), Some(whole(&c, "j")), id(1)),
        Served::ByDaemon
    ));
    let off = Passthrough::<u32>::new(false);
    assert!(matches!(
        off.open(9, 3, false, Some("e"), Some(whole(&c, "i")), id(1)),
        Served::ByDaemon
    ));
}

#[test]
fn write_opens_never_use_the_backing_file() {
    let (_d, c) = cache();
    let p = Passthrough::<u32>::new(true);
    assert!(matches!(
        p.open(7, 1, false, Some("e"), Some(whole(&c, "k")), id(3)),
        Served::Passthrough(_)
    ));
    assert!(
        matches!(p.open(7, 2, true, Some("e"), None, id(4)), Served::DirectIo),
        "a writer next to a passthrough reader goes to the daemon with direct I/O"
    );
    p.release(7, 2);
    assert_eq!(
        p.backed_inodes(),
        1,
        "a direct-I/O release leaves passthrough alone"
    );
    p.release(7, 1);
    assert!(matches!(
        p.open(8, 3, true, Some("e"), None, id(5)),
        Served::ByDaemon
    ));
    assert!(
        matches!(
            p.open(8, 4, false, Some("e"), Some(whole(&c, "j")), id(6)),
            Served::ByDaemon
        ),
        "while a writer is open the inode stays with the daemon"
    );
}

/// Case 12 of issue 11: a read open of a newer version (the file was rewritten through the
/// mount while a passthrough reader still had it open) never joins the old backing file.
#[test]
fn a_read_of_a_newer_version_is_not_served_from_the_old_backing_file() {
    let (_d, c) = cache();
    let p = Passthrough::<u32>::new(true);
    let Served::Passthrough(_) = p.open(7, 1, false, Some("e"), Some(whole(&c, "k")), id(11))
    else {
        panic!("first open with a complete file uses passthrough");
    };
    assert!(matches!(
        p.open(7, 2, false, Some("e2"), None, |_| panic!(
            "no second backing file"
        )),
        Served::DirectIo
    ));
    assert!(matches!(
        p.open(7, 3, false, Some("e"), None, id(12)),
        Served::Passthrough(_)
    ));
    p.release(7, 2);
    p.release(7, 3);
    p.release(7, 1);
    assert_eq!(p.backed_inodes(), 0);
}
