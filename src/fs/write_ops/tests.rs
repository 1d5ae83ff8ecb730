//! Write operations over the in-memory backend: what the store holds after each step.

use super::super::{CloudFs, DirReplier, ROOT_INO};
use super::*;
use crate::backend::memory::MemoryBackend;
use crate::backend::Backend;
use crate::backend::PosixMeta;
use crate::config::MountConfig;
use crate::fs::Attr;

fn fs(b: &Arc<MemoryBackend>) -> CloudFs {
    CloudFs::new(b.clone(), &MountConfig::default())
}

async fn object(b: &MemoryBackend, key: &str) -> Option<Vec<u8>> {
    let size = b.head(key).await.ok()?.size;
    Some(b.get_range(key, 0..size, None).await.ok()?.to_vec())
}

#[derive(Default)]
struct Names(Vec<String>);

impl DirReplier for Names {
    fn add(&mut self, name: &str, _attr: &Attr, _offset: u64) -> bool {
        self.0.push(name.to_string());
        false
    }
}

async fn ls(fs: &CloudFs, ino: u64) -> Vec<String> {
    let fh = fs.opendir(ino).unwrap();
    let mut n = Names::default();
    fs.readdir(fh, 0, false, &mut n).await.unwrap();
    fs.releasedir(fh);
    let mut names: Vec<String> = n.0.into_iter().filter(|x| x != "." && x != "..").collect();
    names.sort();
    names
}

#[tokio::test]
async fn created_files_are_uploaded_at_flush_and_readable_before() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    let (e, o) = fs
        .create(ROOT_INO, "new.txt", PosixMeta::default())
        .await
        .unwrap();
    assert_eq!(
        ls(&fs, ROOT_INO).await,
        ["new.txt"],
        "listed before any upload"
    );
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"hello "))
        .await
        .unwrap();
    fs.write(o.fh, 6, bytes::Bytes::from_static(b"world"))
        .await
        .unwrap();
    assert_eq!(
        fs.getattr(e.attr.ino).await.unwrap().0.size,
        11,
        "stat sees the new size"
    );
    assert_eq!(&fs.read(o.fh, 0, 100).await.unwrap()[..], b"hello world");
    assert!(
        object(&b, "new.txt").await.is_none(),
        "nothing sent before close"
    );
    fs.flush(o.fh).await.unwrap();
    assert_eq!(object(&b, "new.txt").await.unwrap(), b"hello world");
    fs.release(o.fh).await;
    assert_eq!(
        ls(&fs, ROOT_INO).await,
        ["new.txt"],
        "listed once, from the store"
    );
    let o = fs.open(e.attr.ino, Access::Read).await.unwrap();
    assert_eq!(&fs.read(o.fh, 0, 100).await.unwrap()[..], b"hello world");
}

#[tokio::test]
async fn edits_truncates_and_appends_keep_the_rest_of_the_object() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("f", b"0123456789".to_vec());
    let fs = fs(&b);
    let ino = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    let o = fs
        .open(ino, Access::Write { truncate: false })
        .await
        .unwrap();
    fs.write(o.fh, 3, bytes::Bytes::from_static(b"abc"))
        .await
        .unwrap();
    fs.write(o.fh, 12, bytes::Bytes::from_static(b"!"))
        .await
        .unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    assert_eq!(object(&b, "f").await.unwrap(), b"012abc6789\0\0!");
    fs.set_size(ino, 4).await.unwrap();
    assert_eq!(
        object(&b, "f").await.unwrap(),
        b"012a",
        "truncate without an open file"
    );
    let o = fs
        .open(ino, Access::Write { truncate: true })
        .await
        .unwrap();
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    assert_eq!(object(&b, "f").await.unwrap(), b"x", "O_TRUNC");
}

#[tokio::test]
async fn failed_uploads_report_at_flush_and_succeed_later() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    let (_, o) = fs
        .create(ROOT_INO, "f", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"keep me"))
        .await
        .unwrap();
    b.fail_puts(true);
    assert!(
        fs.flush(o.fh).await.is_err(),
        "the application sees the failure"
    );
    b.fail_puts(false);
    fs.fsync(o.fh).await.unwrap();
    assert_eq!(object(&b, "f").await.unwrap(), b"keep me");
}

#[tokio::test]
async fn unlink_mkdir_rmdir_and_rename() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("a.txt", b"A".to_vec());
    b.insert("d/x", b"X".to_vec());
    b.insert("d/sub/y", b"Y".to_vec());
    let fs = fs(&b);

    fs.unlink(ROOT_INO, "a.txt").await.unwrap();
    assert!(object(&b, "a.txt").await.is_none());
    assert_eq!(
        fs.lookup(ROOT_INO, "a.txt").await.unwrap_err(),
        FsError::NotFound
    );

    let e = fs
        .mkdir(ROOT_INO, "empty", PosixMeta::default())
        .await
        .unwrap();
    assert_eq!(ls(&fs, ROOT_INO).await, ["d", "empty"]);
    assert_eq!(
        fs.mkdir(ROOT_INO, "empty", PosixMeta::default())
            .await
            .unwrap_err(),
        FsError::Exists
    );
    let (_, o) = fs
        .create(e.attr.ino, "inside", PosixMeta::default())
        .await
        .unwrap();
    assert_eq!(
        fs.rmdir(ROOT_INO, "empty").await.unwrap_err(),
        FsError::NotEmpty
    );
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    assert_eq!(object(&b, "empty/inside").await.unwrap(), b"");
    fs.unlink(e.attr.ino, "inside").await.unwrap();
    fs.rmdir(ROOT_INO, "empty").await.unwrap();
    assert_eq!(ls(&fs, ROOT_INO).await, ["d"]);
    assert_eq!(
        fs.rmdir(ROOT_INO, "d").await.unwrap_err(),
        FsError::NotEmpty
    );

    let d = fs.lookup(ROOT_INO, "d").await.unwrap().attr.ino;
    fs.rename(d, "x", ROOT_INO, "moved", false).await.unwrap();
    assert!(object(&b, "d/x").await.is_none());
    assert_eq!(object(&b, "moved").await.unwrap(), b"X");
    b.insert("other", b"O".to_vec());
    assert_eq!(
        fs.rename(ROOT_INO, "moved", ROOT_INO, "other", true)
            .await
            .unwrap_err(),
        FsError::Exists,
        "RENAME_NOREPLACE"
    );
    fs.rename(ROOT_INO, "moved", ROOT_INO, "other", false)
        .await
        .unwrap();
    assert_eq!(object(&b, "other").await.unwrap(), b"X", "replaced");

    fs.rename(ROOT_INO, "d", ROOT_INO, "e", false)
        .await
        .unwrap();
    assert_eq!(object(&b, "e/sub/y").await.unwrap(), b"Y");
    assert!(object(&b, "d/sub/y").await.is_none());
    let e = fs.lookup(ROOT_INO, "e").await.unwrap().attr.ino;
    assert_eq!(ls(&fs, e).await, ["sub"]);
    assert_eq!(ls(&fs, ROOT_INO).await, ["e", "other"]);
}

#[tokio::test]
async fn files_unlinked_while_open_have_no_links_and_still_work() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    let (e, o) = fs
        .create(ROOT_INO, "f", PosixMeta::default())
        .await
        .unwrap();
    let ino = e.attr.ino;
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    assert_eq!(fs.getattr(ino).await.unwrap().0.nlink, 1);
    fs.unlink(ROOT_INO, "f").await.unwrap();
    let a = fs.getattr(ino).await.unwrap().0;
    assert_eq!((a.nlink, a.size), (0, 5), "fstat after unlink");
    fs.write(o.fh, 5, bytes::Bytes::from_static(b" world"))
        .await
        .unwrap();
    assert_eq!(&fs.read(o.fh, 0, 64).await.unwrap()[..], b"hello world");
    assert_eq!(fs.getattr(ino).await.unwrap().0.size, 11);
    // The name is free again: a new file there is another inode, with its link.
    let (again, o2) = fs
        .create(ROOT_INO, "f", PosixMeta::default())
        .await
        .unwrap();
    assert_ne!(again.attr.ino, ino);
    assert_eq!(again.attr.nlink, 1);
    fs.release(o.fh).await;
    fs.release(o2.fh).await;
    assert_eq!(
        object(&b, "f").await.unwrap(),
        b"",
        "the unlinked content never went up"
    );

    // A file replaced by a rename loses its name too; the one moved there keeps one.
    b.insert("old", b"O".to_vec());
    b.insert("new", b"N".to_vec());
    let old = fs.lookup(ROOT_INO, "old").await.unwrap().attr.ino;
    fs.rename(ROOT_INO, "new", ROOT_INO, "old", false)
        .await
        .unwrap();
    assert_eq!(fs.getattr(old).await.unwrap().0.nlink, 0);
    assert_eq!(fs.lookup(ROOT_INO, "old").await.unwrap().attr.nlink, 1);

    // fchmod on a file open for reading after its unlink: shown, never stored (storing
    // would upload the deleted object again).
    b.insert("ro", b"R".to_vec());
    let ro = fs.lookup(ROOT_INO, "ro").await.unwrap().attr.ino;
    let r = fs.open(ro, Access::Read).await.unwrap();
    fs.unlink(ROOT_INO, "ro").await.unwrap();
    let chmod = PosixMeta {
        mode: Some(0o600),
        ..PosixMeta::default()
    };
    fs.set_attrs(ro, chmod).await.unwrap();
    fs.set_size(ro, 0).await.unwrap();
    let a = fs.getattr(ro).await.unwrap().0;
    assert_eq!((a.perm, a.size, a.nlink), (0o600, 0, 0));
    fs.release(r.fh).await;
    assert!(
        object(&b, "ro").await.is_none(),
        "the unlinked object came back"
    );
}

#[tokio::test]
async fn renaming_a_huge_directory_is_refused_with_the_limit() {
    let b = Arc::new(MemoryBackend::new());
    for i in 0..5 {
        b.insert(&format!("big/{i}"), b"x".to_vec());
    }
    let fs = CloudFs::new(
        b.clone(),
        &MountConfig {
            rename_dir_limit: 3,
            ..MountConfig::default()
        },
    );
    let err = fs
        .rename(ROOT_INO, "big", ROOT_INO, "huge", false)
        .await
        .unwrap_err();
    assert!(
        matches!(err, FsError::TooMany(ref m) if m.contains("rename_dir_limit")),
        "{err}"
    );
    assert!(object(&b, "big/0").await.is_some(), "nothing moved");
}

#[tokio::test]
async fn too_many_writers_get_enfile() {
    let b = Arc::new(MemoryBackend::new());
    let fs = CloudFs::new(
        b.clone(),
        &MountConfig {
            max_open_writes: 2,
            ..MountConfig::default()
        },
    );
    let (_, a) = fs
        .create(ROOT_INO, "a", PosixMeta::default())
        .await
        .unwrap();
    fs.create(ROOT_INO, "b", PosixMeta::default())
        .await
        .unwrap();
    let err = fs
        .create(ROOT_INO, "c", PosixMeta::default())
        .await
        .unwrap_err();
    assert_eq!(err.errno(), libc::ENFILE);
    assert!(err.to_string().contains("max_open_writes"), "{err}");
    assert_eq!(
        ls(&fs, ROOT_INO).await,
        ["a", "b"],
        "the refused file does not appear"
    );
    fs.release(a.fh).await;
    fs.create(ROOT_INO, "c", PosixMeta::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn posix_attributes_follow_s3fs_metadata_both_ways() {
    let b = Arc::new(MemoryBackend::new());
    let written_by_s3fs = PosixMeta {
        mode: Some(0o100640),
        uid: Some(1234),
        gid: Some(99),
        rdev: None,
        mtime: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)),
        ctime: None,
        xattrs: None,
    };
    b.insert_with_meta("theirs", b"data".to_vec(), written_by_s3fs.clone());
    let fs = fs(&b);
    let a = fs.lookup(ROOT_INO, "theirs").await.unwrap().attr;
    assert_eq!((a.perm, a.uid, a.gid), (0o640, 1234, 99));
    assert_eq!(a.mtime, written_by_s3fs.mtime.unwrap());
    assert_eq!(
        a.ctime, a.mtime,
        "without a stored ctime, the mtime stands in"
    );

    // Created through the mount: mode and owner of the creator are stored.
    let mine = PosixMeta {
        mode: Some(0o100600),
        uid: Some(42),
        gid: Some(43),
        rdev: None,
        mtime: None,
        ctime: None,
        xattrs: None,
    };
    let (e, o) = fs.create(ROOT_INO, "mine", mine).await.unwrap();
    assert_eq!(e.attr.perm, 0o600);
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"x"))
        .await
        .unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    let stored = b.head("mine").await.unwrap().meta;
    assert_eq!(
        (stored.mode, stored.uid, stored.gid),
        (Some(0o100600), Some(42), Some(43))
    );
    assert!(stored.mtime.is_some(), "mtime is stored too");

    // chmod/chown/utimens of a closed file: stored, content unchanged.
    let ino = fs.lookup(ROOT_INO, "theirs").await.unwrap().attr.ino;
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let change = PosixMeta {
        mode: Some(0o755),
        uid: Some(7),
        gid: None,
        rdev: None,
        mtime: Some(when),
        ctime: None,
        xattrs: None,
    };
    let before = std::time::SystemTime::now();
    fs.set_attrs(ino, change).await.unwrap();
    let stored = b.head("theirs").await.unwrap().meta;
    assert_eq!(stored.mode, Some(0o100755), "file type bits kept");
    assert_eq!(
        (stored.uid, stored.gid, stored.mtime),
        (Some(7), Some(99), Some(when))
    );
    assert_eq!(object(&b, "theirs").await.unwrap(), b"data");
    let a = fs.getattr(ino).await.unwrap().0;
    assert_eq!((a.perm, a.uid, a.mtime), (0o755, 7, when));
    assert!(
        a.ctime >= before,
        "chmod/chown/utimens move the ctime to now"
    );
    assert_eq!(stored.ctime, Some(a.ctime), "and it is stored, exactly");

    // A change of content moves both times; the stored times are the ones shown.
    let o = fs
        .open(ino, Access::Write { truncate: false })
        .await
        .unwrap();
    let before = std::time::SystemTime::now();
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"DATA"))
        .await
        .unwrap();
    fs.release(o.fh).await;
    let a = fs.getattr(ino).await.unwrap().0;
    assert!(a.mtime >= before && a.ctime == a.mtime, "{a:?}");
    let stored = b.head("theirs").await.unwrap().meta;
    assert_eq!((stored.mtime, stored.ctime), (Some(a.mtime), Some(a.ctime)));

    // O_TRUNC moves them too, although the stored mtime was set by the last upload.
    let was = a.mtime;
    let o = fs
        .open(ino, Access::Write { truncate: true })
        .await
        .unwrap();
    fs.release(o.fh).await;
    let a = fs.getattr(ino).await.unwrap().0;
    assert_eq!(a.size, 0);
    assert!(a.mtime > was && a.ctime == a.mtime, "{a:?} after {was:?}");
    assert_eq!(b.head("theirs").await.unwrap().meta.mtime, Some(a.mtime));
}

#[tokio::test]
async fn names_longer_than_name_max_are_refused() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    let long = "n".repeat(256);
    let ok = "n".repeat(255);
    for err in [
        fs.lookup(ROOT_INO, &long).await.unwrap_err(),
        fs.create(ROOT_INO, &long, PosixMeta::default())
            .await
            .unwrap_err(),
        fs.mkdir(ROOT_INO, &long, PosixMeta::default())
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.errno(), libc::ENAMETOOLONG);
    }
    fs.create(ROOT_INO, &ok, PosixMeta::default())
        .await
        .unwrap();
    assert_eq!(
        fs.rename(ROOT_INO, &ok, ROOT_INO, &long, false)
            .await
            .unwrap_err()
            .errno(),
        libc::ENAMETOOLONG
    );
}

#[derive(Default)]
struct Kinds(Vec<(String, Kind)>);

impl DirReplier for Kinds {
    fn add(&mut self, name: &str, attr: &Attr, _offset: u64) -> bool {
        self.0.push((name.to_string(), attr.kind));
        false
    }
}

#[tokio::test]
async fn symlinks_are_stored_as_s3fs_stores_them_and_stay_links_after_a_listing() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    let me = PosixMeta {
        mode: Some(libc::S_IFLNK | 0o777),
        uid: Some(5),
        gid: Some(6),
        rdev: None,
        mtime: None,
        ctime: None,
        xattrs: None,
    };
    let e = fs
        .symlink(ROOT_INO, "link", b"dir/target.txt", me.clone())
        .await
        .unwrap();
    assert_eq!(
        (e.attr.kind, e.attr.size, e.attr.perm),
        (Kind::Symlink, 14, 0o777)
    );
    assert_eq!(object(&b, "link").await.unwrap(), b"dir/target.txt");
    let stored = b.head("link").await.unwrap().meta;
    assert_eq!((stored.mode, stored.uid), (Some(0o120777), Some(5)));
    assert_eq!(
        &fs.readlink(e.attr.ino).await.unwrap()[..],
        b"dir/target.txt"
    );
    assert_eq!(
        fs.symlink(ROOT_INO, "link", b"x", me.clone()).await,
        Err(FsError::Exists)
    );

    // One s3fs wrote; a fresh mount finds both by name, and a listing does not turn them
    // back into files.
    b.insert_with_meta(
        "theirs",
        b"/abs/path".to_vec(),
        PosixMeta {
            mode: Some(0o120777),
            ..Default::default()
        },
    );
    let fs2 = CloudFs::new(b.clone(), &MountConfig::default());
    for (name, target) in [("link", "dir/target.txt"), ("theirs", "/abs/path")] {
        let a = fs2.lookup(ROOT_INO, name).await.unwrap().attr;
        assert_eq!(a.kind, Kind::Symlink, "{name}");
        assert_eq!(&fs2.readlink(a.ino).await.unwrap()[..], target.as_bytes());
    }
    let fh = fs2.opendir(ROOT_INO).unwrap();
    let mut k = Kinds::default();
    fs2.readdir(fh, 0, true, &mut k).await.unwrap();
    fs2.releasedir(fh);
    assert!(
        k.0.contains(&("theirs".to_string(), Kind::Symlink)),
        "{:?}",
        k.0
    );
    assert_eq!(
        fs2.lookup(ROOT_INO, "theirs").await.unwrap().attr.kind,
        Kind::Symlink
    );

    // Renamed: still a link; unlinked: gone.
    fs2.rename(ROOT_INO, "link", ROOT_INO, "moved", false)
        .await
        .unwrap();
    let a = fs2.lookup(ROOT_INO, "moved").await.unwrap().attr;
    assert_eq!(a.kind, Kind::Symlink);
    assert_eq!(b.head("moved").await.unwrap().meta.mode, Some(0o120777));
    fs2.unlink(ROOT_INO, "moved").await.unwrap();
    assert!(object(&b, "moved").await.is_none());
}

#[tokio::test]
async fn fallocate_grows_zeroes_or_refuses() {
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    let (e, o) = fs
        .create(ROOT_INO, "f", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"hello"))
        .await
        .unwrap();
    fs.fallocate(o.fh, 0, 100, 0).await.unwrap();
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().0.size, 100, "grown");
    fs.fallocate(o.fh, 0, 500, libc::FALLOC_FL_KEEP_SIZE)
        .await
        .unwrap();
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().0.size, 100, "kept");
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    fs.fallocate(o.fh, 1, 2, punch).await.unwrap();
    assert_eq!(&fs.read(o.fh, 0, 5).await.unwrap()[..], b"h\0\0lo");
    assert_eq!(
        fs.fallocate(o.fh, 0, 10, libc::FALLOC_FL_COLLAPSE_RANGE)
            .await
            .map_err(|e| e.errno()),
        Err(libc::ENOTSUP)
    );
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    let stored = object(&b, "f").await.unwrap();
    assert_eq!(stored.len(), 100);
    assert_eq!(&stored[..5], b"h\0\0lo");
}

/// Case 9 of issue 11: at a stop, what a program closed goes up; what none closed does not
/// (unless `upload_unclosed`), so a half-written file never replaces a good object.
#[tokio::test]
async fn drain_uploads_closed_content_only_and_stats_count_them() {
    for upload_unclosed in [false, true] {
        let b = Arc::new(MemoryBackend::new());
        b.insert("good.txt", "the good version");
        let cfg = MountConfig {
            upload_unclosed,
            ..MountConfig::default()
        };
        let fs = CloudFs::new(b.clone(), &cfg);
        // Rewritten with O_TRUNC, half way when the stop comes.
        let good = fs.lookup(ROOT_INO, "good.txt").await.unwrap().attr.ino;
        let half = fs
            .open(good, Access::Write { truncate: true })
            .await
            .unwrap();
        fs.write(half.fh, 0, bytes::Bytes::from_static(b"half"))
            .await
            .unwrap();
        // Closed, but its upload failed: it must go up at the stop.
        let (_, o) = fs
            .create(ROOT_INO, "closed.txt", PosixMeta::default())
            .await
            .unwrap();
        fs.write(o.fh, 0, bytes::Bytes::from_static(b"closed"))
            .await
            .unwrap();
        b.fail_puts(true);
        assert!(fs.flush(o.fh).await.is_err());
        b.fail_puts(false);
        let s = fs.stats();
        assert_eq!(
            (s.open_for_writing, s.uploads_in_flight, s.errors),
            (2, 0, 0)
        );
        let left = fs.drain(std::time::Duration::from_secs(5)).await;
        assert_eq!(
            object(&b, "closed.txt").await.as_deref(),
            Some(&b"closed"[..])
        );
        if upload_unclosed {
            assert_eq!(left, 0);
            assert_eq!(object(&b, "good.txt").await.as_deref(), Some(&b"half"[..]));
        } else {
            assert_eq!(left, 1, "the unclosed file is kept, not sent");
            assert_eq!(
                object(&b, "good.txt").await.as_deref(),
                Some(&b"the good version"[..])
            );
        }
        fs.release(o.fh).await;
        fs.release(half.fh).await;
    }
    let b = Arc::new(MemoryBackend::new());
    let fs = fs(&b);
    fs.note_error("read", &crate::fs::FsError::NotFound);
    fs.note_error("read", &crate::fs::FsError::LocalIo("disk".into()));
    let s = fs.stats();
    assert_eq!(s.errors, 1, "expected errors are not counted");
    assert!(s
        .last_error
        .is_some_and(|e| e.contains("read") && e.contains("disk")));
}

#[tokio::test]
async fn dropping_the_metadata_cache_shows_changes_made_elsewhere() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("a", "1");
    let fs = CloudFs::new(
        b.clone(),
        &MountConfig {
            attr_timeout: std::time::Duration::from_secs(3600),
            ..MountConfig::default()
        },
    );
    assert_eq!(ls(&fs, ROOT_INO).await, ["a"]);
    let a = fs.lookup(ROOT_INO, "a").await.unwrap().attr.ino;
    b.insert("a", "longer");
    b.insert("b", "2");
    assert_eq!(ls(&fs, ROOT_INO).await, ["a"], "cached");
    assert_eq!(fs.getattr(a).await.unwrap().0.size, 1, "cached");
    fs.drop_metadata_cache();
    assert_eq!(ls(&fs, ROOT_INO).await, ["a", "b"]);
    assert_eq!(fs.getattr(a).await.unwrap().0.size, 6);
}

#[tokio::test]
async fn after_a_failed_drain_writes_are_refused_and_the_next_mount_sends_the_data() {
    use crate::read::DiskBlockCache;
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(MemoryBackend::new());
    let open_fs = || {
        let cache = DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap();
        CloudFs::with_cache(b.clone(), &MountConfig::default(), Some(Arc::new(cache)))
    };
    let fs = open_fs();
    let (_, o) = fs
        .create(ROOT_INO, "late.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, bytes::Bytes::from_static(b"must survive"))
        .await
        .unwrap();
    b.fail_puts(true);
    assert!(fs.flush(o.fh).await.is_err(), "closed, but not stored");
    // Another file is still being written when the stop comes.
    let (_, half) = fs
        .create(ROOT_INO, "half.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(half.fh, 0, bytes::Bytes::from_static(b"half"))
        .await
        .unwrap();
    assert_eq!(fs.drain(std::time::Duration::from_secs(2)).await, 2);
    assert_eq!(
        fs.write(o.fh, 12, bytes::Bytes::from_static(b"!")).await,
        Err(FsError::ReadOnly),
        "no write is accepted once stopping"
    );
    assert_eq!(
        fs.create(ROOT_INO, "new", PosixMeta::default()).await.err(),
        Some(FsError::ReadOnly)
    );
    assert_eq!(fs.keep_unsent().await, 2);
    drop(fs);
    b.fail_puts(false);
    assert_eq!(object(&b, "late.txt").await, None);
    let fs = open_fs();
    fs.resume_uploads().await;
    assert_eq!(
        object(&b, "late.txt").await.as_deref(),
        Some(&b"must survive"[..])
    );
    assert_eq!(object(&b, "half.txt").await, None, "never closed: not sent");
    assert_eq!(fs.stats().lost_found, 1, "kept in lost+found instead");
}
