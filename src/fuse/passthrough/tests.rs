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
    let Served::Passthrough(a) = p.open_reader(7, 1, Some("e"), Some(whole(&c, "k")), id(11))
    else {
        panic!("first open with a complete file uses passthrough");
    };
    let Served::Passthrough(b) =
        p.open_reader(7, 2, Some("e"), None, |_| panic!("no second registration"))
    else {
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
        p.open_reader(7, 1, Some("e"), None, id(1)),
        Served::ByDaemon
    ));
    assert!(
        matches!(
            p.open_reader(7, 2, Some("e"), Some(whole(&c, "k")), id(1)),
            Served::ByDaemon
        ),
        "the kernel refuses to mix modes on one inode"
    );
    p.release(7, 1);
    p.release(7, 2);
    assert!(matches!(
        p.open_reader(7, 3, Some("e"), Some(whole(&c, "k")), id(5)),
        Served::Passthrough(_)
    ));
}

#[test]
fn a_refused_registration_turns_passthrough_off() {
    let (_d, c) = cache();
    let p = Passthrough::<u32>::new(true);
    let refused = |_: &std::fs::File| Err(std::io::Error::from_raw_os_error(libc::EPERM));
    assert!(matches!(
        p.open_reader(7, 1, Some("e"), Some(whole(&c, "k")), refused),
        Served::ByDaemon
    ));
    assert!(!p.enabled());
    assert!(matches!(
        p.open_reader(8, 2, Some("e"), Some(whole(&c, "j")), id(1)),
        Served::ByDaemon
    ));
    let off = Passthrough::<u32>::new(false);
    assert!(matches!(
        off.open_reader(9, 3, Some("e"), Some(whole(&c, "i")), id(1)),
        Served::ByDaemon
    ));
}

fn staging() -> Arc<std::fs::File> {
    Arc::new(tempfile::tempfile().unwrap())
}

/// The kernel refuses (EIO) any open of an inode with a backing file that is not a passthrough
/// open of it: a writer next to a reader of a cache file is refused before the core opens it
/// (an `O_TRUNC` would otherwise cut a file the open then fails on).
#[test]
fn a_writer_is_refused_while_a_cache_file_backs_the_inode() {
    let (_d, c) = cache();
    let p = Arc::new(Passthrough::<u32>::new(true));
    assert!(matches!(
        p.open_reader(7, 1, Some("e"), Some(whole(&c, "k")), id(3)),
        Served::Passthrough(_)
    ));
    assert!(p.begin_write(7).is_none(), "refused before the core opens");
    p.release(7, 1);
    let gate = p.begin_write(7).expect("nothing open");
    assert!(
        matches!(
            gate.serve(2, Some(staging()), false, id(4)),
            Served::ByDaemon
        ),
        "a writer not offered a fresh staging file goes to the daemon"
    );
    assert!(
        matches!(
            p.open_reader(7, 3, Some("e"), Some(whole(&c, "j")), id(6)),
            Served::ByDaemon
        ),
        "while a writer is open by the daemon the inode stays with the daemon"
    );
}

/// A writer that starts its file empty is backed by its staging file; every later open of the
/// inode joins it, reader or writer of the same session; a writer of another session (the
/// first ended while a reader still reads its file) is not.
#[test]
fn opens_of_a_file_the_kernel_writes_join_its_staging_file() {
    let p = Arc::new(Passthrough::<u32>::new(true));
    let file = staging();
    let gate = p.begin_write(7).unwrap();
    assert!(gate.would_back());
    let Served::Passthrough(a) = gate.serve(1, Some(file.clone()), true, id(21)) else {
        panic!("a fresh staging file is backed");
    };
    let Served::Passthrough(b) = p.open_reader(7, 2, Some("e"), None, |_| panic!("no new id"))
    else {
        panic!("a reader joins the staging file");
    };
    let gate = p.begin_write(7).unwrap();
    assert!(
        Arc::ptr_eq(&gate.session().unwrap(), &file),
        "must join that session"
    );
    assert!(!gate.would_back());
    let Served::Passthrough(c) = gate.serve(3, Some(file.clone()), false, |_| panic!("no new id"))
    else {
        panic!("a writer of the same session joins");
    };
    assert_eq!((*a, *b, *c), (21, 21, 21));
    p.release(7, 1);
    p.release(7, 3);
    let gate = p.begin_write(7).unwrap();
    assert!(
        matches!(gate.serve(4, Some(staging()), true, id(22)), Served::Busy),
        "another session's file is not the one the kernel uses"
    );
    p.release(7, 2);
    assert_eq!(p.backed_inodes(), 0);
}

/// While a write open is between its check and its answer, a reader starts no backing file
/// (the writer could not join a cache file).
#[test]
fn a_reader_during_a_write_open_starts_no_backing_file() {
    let (_d, c) = cache();
    let p = Arc::new(Passthrough::<u32>::new(true));
    let gate = p.begin_write(7).unwrap();
    assert!(matches!(
        p.open_reader(7, 1, Some("e"), Some(whole(&c, "k")), id(3)),
        Served::ByDaemon
    ));
    assert!(matches!(
        gate.serve(2, Some(staging()), true, id(4)),
        Served::ByDaemon
    ));
    p.release(7, 1);
    p.release(7, 2);
    let gate = p.begin_write(7).unwrap();
    drop(gate);
    assert!(
        matches!(
            p.open_reader(7, 3, Some("e"), Some(whole(&c, "k")), id(5)),
            Served::Passthrough(_)
        ),
        "a dropped gate no longer holds readers back"
    );
}

/// Case 12 of issue 11, as the kernel allows it: an inode has one backing file, so a read open
/// of a newer version (the object changed on the server) while a passthrough reader has the
/// old one open reads that one until all have closed; the mount itself cannot rewrite it
/// meanwhile (its writers are refused), and once all are closed the new version is opened.
#[test]
fn a_read_of_a_newer_version_joins_the_open_one_until_all_close() {
    let (_d, c) = cache();
    let p = Arc::new(Passthrough::<u32>::new(true));
    let Served::Passthrough(_) = p.open_reader(7, 1, Some("e"), Some(whole(&c, "k")), id(11))
    else {
        panic!("first open with a complete file uses passthrough");
    };
    assert!(p.begin_write(7).is_none());
    assert!(matches!(
        p.open_reader(7, 2, Some("e2"), None, |_| panic!("no second backing file")),
        Served::Passthrough(_)
    ));
    p.release(7, 2);
    p.release(7, 1);
    assert_eq!(p.backed_inodes(), 0);
    assert!(matches!(
        p.open_reader(7, 3, Some("e2"), Some(whole(&c, "k2")), id(12)),
        Served::Passthrough(_)
    ));
}
