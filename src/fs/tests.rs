//! Core tests over the in-memory backend: no kernel, no network.

use super::*;
use crate::backend::memory::MemoryBackend;
use std::sync::atomic::Ordering::Relaxed;

fn fs_with(b: &Arc<MemoryBackend>, cfg: MountConfig) -> CloudFs {
    CloudFs::new(b.clone(), &cfg)
}

fn cfg() -> MountConfig {
    MountConfig::default()
}

#[derive(Default)]
struct Collect {
    names: Vec<(String, u64, u64)>,
    room: usize,
}

impl DirReplier for Collect {
    fn add(&mut self, name: &str, attr: &Attr, offset: u64) -> bool {
        if self.names.len() >= self.room {
            return true;
        }
        self.names.push((name.to_string(), attr.ino, offset));
        false
    }
}

async fn list_all(fs: &CloudFs, ino: u64, room: usize, plus: bool) -> Vec<(String, u64, u64)> {
    let fh = fs.opendir(ino).unwrap();
    let mut all: Vec<(String, u64, u64)> = vec![];
    let mut offset = 0;
    for _ in 0..100_000 {
        let mut c = Collect {
            room,
            ..Default::default()
        };
        fs.readdir(fh, offset, plus, &mut c).await.unwrap();
        if c.names.is_empty() {
            break;
        }
        offset = c.names.last().map(|n| n.2).unwrap_or(offset);
        all.extend(c.names);
    }
    fs.releasedir(fh);
    all
}

#[tokio::test]
async fn lookup_finds_files_implicit_dirs_and_markers() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("a.txt", "hello");
    b.insert("implicit/x", "1");
    b.insert("empty/", "");
    let fs = fs_with(&b, cfg());
    let f = fs.lookup(ROOT_INO, "a.txt").await.unwrap();
    assert_eq!((f.attr.kind, f.attr.size), (Kind::File, 5));
    assert_eq!(
        fs.lookup(ROOT_INO, "implicit").await.unwrap().attr.kind,
        Kind::Dir
    );
    assert_eq!(
        fs.lookup(ROOT_INO, "empty").await.unwrap().attr.kind,
        Kind::Dir
    );
    assert_eq!(
        fs.lookup(ROOT_INO, "nope").await.unwrap_err(),
        FsError::NotFound
    );
    let file = fs.lookup(ROOT_INO, "a.txt").await.unwrap().attr.ino;
    assert_eq!(fs.lookup(file, "x").await.unwrap_err(), FsError::NotDir);
}

#[tokio::test]
async fn lookup_counts_and_forget_remove_inodes() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("f", "1");
    let fs = fs_with(&b, cfg());
    let ino = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    assert_eq!(
        fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino,
        ino,
        "same inode while known"
    );
    fs.forget(ino, 1);
    assert!(fs.getattr(ino).await.is_ok(), "one reference left");
    fs.forget(ino, 1);
    assert_eq!(
        fs.getattr(ino).await.unwrap_err(),
        FsError::UnknownInode(ino)
    );
    let again = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    assert!(again > ino, "a forgotten inode number is never reused");
}

#[tokio::test]
async fn attributes_are_cached_until_the_ttl_expires() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("f", "1");
    let fs = fs_with(
        &b,
        MountConfig {
            attr_timeout: Duration::from_millis(100),
            ..cfg()
        },
    );
    let ino = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    let heads = b.counters.head.load(Relaxed);
    b.insert("f", "12345");
    assert_eq!(
        fs.getattr(ino).await.unwrap().0.size,
        1,
        "cached within the TTL"
    );
    assert_eq!(
        b.counters.head.load(Relaxed),
        heads,
        "no request within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        fs.getattr(ino).await.unwrap().0.size,
        5,
        "refreshed after the TTL"
    );
    b.remove("f");
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(fs.getattr(ino).await.unwrap_err(), FsError::NotFound);
}

#[tokio::test]
async fn negative_cache_spares_requests_until_it_expires() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs_with(
        &b,
        MountConfig {
            negative_timeout: Duration::from_millis(100),
            dir_cache_timeout: Duration::ZERO,
            ..cfg()
        },
    );
    assert_eq!(
        fs.lookup(ROOT_INO, "late").await.unwrap_err(),
        FsError::NotFound
    );
    let heads = b.counters.head.load(Relaxed);
    b.insert("late", "1");
    assert_eq!(
        fs.lookup(ROOT_INO, "late").await.unwrap_err(),
        FsError::NotFound
    );
    assert_eq!(
        b.counters.head.load(Relaxed),
        heads,
        "answered from the negative cache"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        fs.lookup(ROOT_INO, "late").await.is_ok(),
        "seen once the entry expired"
    );
}

#[tokio::test]
async fn readdir_pages_through_a_large_directory_with_a_small_reply_buffer() {
    let b = Arc::new(MemoryBackend::new());
    for i in 0..2500 {
        b.insert(&format!("big/f{i:05}"), "x");
    }
    b.insert("big/sub/y", "1");
    let fs = fs_with(
        &b,
        MountConfig {
            list_page_size: 100,
            ..cfg()
        },
    );
    let dir = fs.lookup(ROOT_INO, "big").await.unwrap().attr.ino;
    let all = list_all(&fs, dir, 7, true).await;
    let names: Vec<&str> = all.iter().map(|n| n.0.as_str()).collect();
    assert_eq!(names.len(), 2503, "., .., 2500 files and one directory");
    assert_eq!(&names[..2], [".", ".."]);
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "no duplicates across reply boundaries"
    );
    assert!(
        fs.inode_count() >= 2502,
        "readdirplus entries are in the inode table"
    );
}

#[tokio::test]
async fn second_listing_and_lookups_come_from_the_listing_cache() {
    let b = Arc::new(MemoryBackend::new());
    for i in 0..50 {
        b.insert(&format!("d/f{i}"), "x");
    }
    let fs = fs_with(
        &b,
        MountConfig {
            list_page_size: 10,
            attr_timeout: Duration::ZERO,
            negative_timeout: Duration::from_millis(100),
            ..cfg()
        },
    );
    let dir = fs.lookup(ROOT_INO, "d").await.unwrap().attr.ino;
    let first = list_all(&fs, dir, 1000, true).await;
    let (lists, heads) = (b.counters.list.load(Relaxed), b.counters.head.load(Relaxed));
    let second = list_all(&fs, dir, 1000, true).await;
    assert_eq!(first.len(), second.len());
    assert!(fs.lookup(dir, "f7").await.is_ok());
    assert_eq!(
        (b.counters.list.load(Relaxed), b.counters.head.load(Relaxed)),
        (lists, heads),
        "no request for a name of a cached listing"
    );
    // A name the listing lacks is asked of the store (it may have been made elsewhere since),
    // then kept as missing for negative_timeout.
    for _ in 0..3 {
        assert_eq!(
            fs.lookup(dir, "missing").await.unwrap_err(),
            FsError::NotFound
        );
    }
    assert_eq!(b.counters.head.load(Relaxed), heads + 1, "one lookup");
    assert_eq!(fs.lookup(dir, "new").await.unwrap_err(), FsError::NotFound);
    b.insert("d/new", "made elsewhere");
    assert_eq!(
        fs.lookup(dir, "new").await.unwrap_err(),
        FsError::NotFound,
        "missing for negative_timeout"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(
        fs.lookup(dir, "new").await.is_ok(),
        "found once negative_timeout passed, with the listing still cached"
    );
}

#[tokio::test]
async fn rewinddir_restarts_the_listing() {
    let b = Arc::new(MemoryBackend::new());
    for i in 0..30 {
        b.insert(&format!("f{i:02}"), "x");
    }
    let fs = fs_with(
        &b,
        MountConfig {
            list_page_size: 4,
            dir_cache_timeout: Duration::ZERO,
            ..cfg()
        },
    );
    let fh = fs.opendir(ROOT_INO).unwrap();
    let mut c = Collect {
        room: 20,
        ..Default::default()
    };
    fs.readdir(fh, 0, false, &mut c).await.unwrap();
    let mut again = Collect {
        room: 20,
        ..Default::default()
    };
    fs.readdir(fh, 0, false, &mut again).await.unwrap();
    let n = |c: &Collect| c.names.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(n(&c), n(&again));
}

#[tokio::test]
async fn file_shadowed_by_a_directory_is_reachable_with_the_suffix() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("same", "file-content");
    b.insert("same/inner", "1");
    let fs = fs_with(
        &b,
        MountConfig {
            dir_cache_timeout: Duration::ZERO,
            ..cfg()
        },
    );
    assert_eq!(
        fs.lookup(ROOT_INO, "same").await.unwrap().attr.kind,
        Kind::Dir
    );
    let f = fs.lookup(ROOT_INO, "same.file").await.unwrap();
    assert_eq!((f.attr.kind, f.attr.size), (Kind::File, 12));
    let fh = fs.open(f.attr.ino, Access::Read).await.unwrap().fh;
    assert_eq!(&fs.read(fh, 0, 100).await.unwrap()[..], b"file-content");
    let names: Vec<String> = list_all(&fs, ROOT_INO, 100, true)
        .await
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert!(
        names.contains(&"same".to_string()) && names.contains(&"same.file".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn reads_return_exact_bytes_and_a_read_only_mount_refuses_writes() {
    let b = Arc::new(MemoryBackend::new());
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    b.insert("blob", data.clone());
    let fs = fs_with(
        &b,
        MountConfig {
            read_only: true,
            ..cfg()
        },
    );
    let ino = fs.lookup(ROOT_INO, "blob").await.unwrap().attr.ino;
    assert_eq!(
        fs.open(ino, Access::Write { truncate: false })
            .await
            .unwrap_err(),
        FsError::ReadOnly
    );
    let fh = fs.open(ino, Access::Read).await.unwrap().fh;
    assert_eq!(
        &fs.read(fh, 1_000_000, 10).await.unwrap()[..],
        &data[1_000_000..1_000_010]
    );
    assert_eq!(
        fs.read(fh, 2_999_990, 100).await.unwrap().len(),
        10,
        "short read at EOF"
    );
    assert!(fs.read(fh, 5_000_000, 10).await.unwrap().is_empty());
    fs.release(fh).await;
    assert_eq!(fs.read(fh, 0, 1).await.unwrap_err(), FsError::BadHandle(fh));
}

#[tokio::test]
async fn a_100000_entry_directory_streams_with_bounded_memory() {
    let b = Arc::new(MemoryBackend::new());
    for i in 0..100_000 {
        b.insert(&format!("huge/k{i:06}"), "");
    }
    // A cache limit below the directory's size forces the paged stream.
    let fs = fs_with(
        &b,
        MountConfig {
            list_page_size: 1000,
            dir_cache_max_entries: 5000,
            ..cfg()
        },
    );
    let dir = fs.lookup(ROOT_INO, "huge").await.unwrap().attr.ino;
    let fh = fs.opendir(dir).unwrap();
    let (mut offset, mut seen, mut peak) = (0u64, 0usize, 0usize);
    for _ in 0..10_000 {
        let mut c = Collect {
            room: 250,
            ..Default::default()
        };
        fs.readdir(fh, offset, false, &mut c).await.unwrap();
        if c.names.is_empty() {
            break;
        }
        seen += c.names.len();
        offset = c.names.last().map(|n| n.2).unwrap_or(offset);
        peak = peak.max(fs.dir_handle_in_memory(fh).await.unwrap());
    }
    assert_eq!(seen, 100_002, "every entry plus . and ..");
    assert!(peak <= 1001, "at most one page in memory, saw {peak}");
    assert_eq!(
        b.counters.list.load(Relaxed),
        100 + 1,
        "100 pages plus the lookup probe"
    );
}

#[tokio::test]
async fn keep_cache_only_while_the_etag_is_unchanged() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("f", "one");
    let fs = fs_with(
        &b,
        MountConfig {
            attr_timeout: Duration::ZERO,
            ..cfg()
        },
    );
    let ino = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    assert!(
        !fs.open(ino, Access::Read).await.unwrap().keep_cache,
        "first open: nothing cached yet"
    );
    assert!(
        fs.open(ino, Access::Read).await.unwrap().keep_cache,
        "same ETag: keep the kernel's pages"
    );
    b.insert("f", "two");
    let o = fs.open(ino, Access::Read).await.unwrap();
    assert!(!o.keep_cache, "new ETag: the kernel must drop its pages");
    assert_eq!(&fs.read(o.fh, 0, 10).await.unwrap()[..], b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_cached_files_are_offered_whole_unless_the_kernel_kept_pages() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("f", vec![3u8; 3 << 20]);
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let fs = CloudFs::with_cache(b.clone(), &cfg(), Some(cache));
    let ino = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    let o = fs.open(ino, Access::Read).await.unwrap();
    assert!(o.whole.is_none(), "nothing cached yet");
    assert_eq!(fs.read(o.fh, 0, 3 << 20).await.unwrap().len(), 3 << 20);
    assert!(
        fs.blocks()
            .drain_cache_writes(Duration::from_secs(10))
            .await
    );
    fs.release(o.fh).await;

    let o = fs.open(ino, Access::Read).await.unwrap();
    assert!(
        o.keep_cache && o.whole.is_none(),
        "the kernel's own pages come first"
    );
    fs.served_by_kernel(ino);
    let o = fs.open(ino, Access::Read).await.unwrap();
    let whole = o.whole.expect("complete in the cache, no kernel pages");
    assert!(!o.keep_cache);
    assert_eq!(whole.file.metadata().unwrap().len(), 3 << 20);

    let off = CloudFs::with_cache(
        b.clone(),
        &MountConfig {
            passthrough: false,
            ..cfg()
        },
        fs.blocks().cache().cloned(),
    );
    let ino = off.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    assert!(
        off.open(ino, Access::Read).await.unwrap().whole.is_none(),
        "passthrough=false"
    );
}

#[tokio::test]
async fn an_open_after_a_change_elsewhere_reads_the_new_version_and_a_change_while_open_is_stale() {
    let b = Arc::new(MemoryBackend::new());
    let (one, two, three) = (vec![1u8; 8 << 20], vec![2u8; 8 << 20], vec![3u8; 8 << 20]);
    b.insert("f", one);
    // The default attribute TTL: the open trusts the version it knows.
    let fs = fs_with(&b, cfg());
    let ino = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    b.insert("f", two.clone());
    let fh = fs.open(ino, Access::Read).await.unwrap().fh;
    assert_eq!(
        fs.read(fh, 0, 4096).await.unwrap(),
        &two[..4096],
        "nothing was read from this handle yet: the new version, not ESTALE"
    );
    // Changed while open, after data was served: ESTALE where the data is not in memory.
    b.insert("f", three.clone());
    assert_eq!(
        fs.read(fh, 7 << 20, 4096).await.unwrap_err(),
        FsError::Stale
    );
    fs.release(fh).await;
    let fh = fs.open(ino, Access::Read).await.unwrap().fh;
    assert_eq!(fs.read(fh, 7 << 20, 4096).await.unwrap(), &three[..4096]);
}

#[tokio::test]
async fn directory_times_reach_the_marker_once_per_flush_and_never_revive_a_removed_one() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs_with(&b, cfg());
    use crate::backend::{Backend, PosixMeta};
    let d = fs.mkdir(ROOT_INO, "d", PosixMeta::default()).await.unwrap();
    let made = b.head("d/").await.unwrap().meta.mtime;
    tokio::time::sleep(Duration::from_millis(5)).await;
    for name in ["a", "b", "c"] {
        fs.mknod(d.attr.ino, name, PosixMeta::default(), 0)
            .await
            .unwrap();
    }
    let shown = fs.getattr(d.attr.ino).await.unwrap().0.mtime;
    assert_eq!(fs.store_dir_times().await, 1, "three changes, one write");
    let stored = b.head("d/").await.unwrap().meta;
    assert_eq!(stored.mtime, Some(shown));
    assert!(stored.mtime > made);
    assert_eq!(fs.store_dir_times().await, 0, "nothing changed since");

    // Emptied and removed: a flush afterwards does not bring its marker back.
    for name in ["a", "b", "c"] {
        fs.unlink(d.attr.ino, name).await.unwrap();
    }
    fs.rmdir(ROOT_INO, "d").await.unwrap();
    fs.store_dir_times().await;
    assert!(b.head("d/").await.is_err(), "no marker after rmdir");
}

#[tokio::test]
async fn a_burst_of_lookups_in_one_directory_is_answered_by_one_listing() {
    let b = Arc::new(MemoryBackend::new());
    for i in 0..60 {
        b.insert(&format!("images/img{i:03}.jpg"), "x");
    }
    let fs = fs_with(&b, cfg());
    let dir = fs.lookup(ROOT_INO, "images").await.unwrap().attr.ino;
    let heads = |fs: &CloudFs| -> u64 {
        fs.metrics()
            .backend
            .snapshot()
            .iter()
            .filter(|o| o.op == "head")
            .map(|o| o.latency.count)
            .sum()
    };
    let before = heads(&fs);
    for i in 0..60 {
        let e = fs.lookup(dir, &format!("img{i:03}.jpg")).await.unwrap();
        assert_eq!((e.attr.kind, e.attr.size), (Kind::File, 1));
    }
    let asked = heads(&fs) - before;
    assert_eq!(
        asked,
        u64::from(super::bursts::THRESHOLD) - 1,
        "names after the burst's start come from one listing"
    );
    // A name the listing lacks is still asked of the store (it may have been made since).
    b.insert("images/new.jpg", "yy");
    assert_eq!(fs.lookup(dir, "new.jpg").await.unwrap().attr.size, 2);
    assert!(fs.lookup(dir, "missing.jpg").await.is_err());
}

/// A listing in flight while a file is removed through the mount must not be cached: it
/// would answer for the removed name (and `ls` would show it) until its TTL ran out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_overlaps_a_removal_is_not_cached() {
    use crate::backend::fault::{Fault, FaultBackend, Faulty, Op};
    let mem = Arc::new(MemoryBackend::new());
    mem.insert("d/a", b"a".to_vec());
    mem.insert("d/b", b"b".to_vec());
    let fb = FaultBackend::new(mem.clone());
    // One name per page: the listing reads `a`, then the removal happens, then page two.
    let cfg = MountConfig {
        list_page_size: 1,
        ..cfg()
    };
    let fs = Arc::new(CloudFs::with_cache(
        Arc::new(Faulty(fb.clone())),
        &cfg,
        None,
    ));
    let d = fs.lookup(ROOT_INO, "d").await.unwrap().attr.ino;
    fb.inject(Op::List, "d/", Fault::Delay(Duration::ZERO), 1);
    let (reached, release) = fb.hold(Op::List, "d/");
    let lister = {
        let fs = fs.clone();
        tokio::spawn(async move { list_all(&fs, d, 100, false).await })
    };
    tokio::time::timeout(Duration::from_secs(10), reached.notified())
        .await
        .expect("page two reached the store");
    fs.unlink(d, "a").await.unwrap();
    release.notify_one();
    let first = tokio::time::timeout(Duration::from_secs(10), lister)
        .await
        .expect("the listing ended")
        .unwrap();
    assert!(
        first.iter().any(|n| n.0 == "a"),
        "page one was read before the removal: {first:?}"
    );
    let again: Vec<String> = list_all(&fs, d, 100, false)
        .await
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    assert!(
        !again.contains(&"a".to_string()),
        "listed again, without a: {again:?}"
    );
    assert_eq!(
        fs.lookup(d, "a").await.map(|_| ()).unwrap_err().errno(),
        libc::ENOENT
    );
}
