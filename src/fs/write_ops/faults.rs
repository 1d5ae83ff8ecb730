//! Issue 11's cases, each on a fault-injecting backend that fails, holds or delays the server
//! round trip the case is about: what a program closed successfully is on the server (or in
//! the journal), and nothing else ever reaches it.

use super::super::{CloudFs, ROOT_INO};
use super::Access;
use crate::backend::fault::{FaultBackend, Faulty, Op};
use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, PosixMeta};
use crate::config::MountConfig;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// A store that streams like S3, with S3's part limit.
fn streaming() -> Arc<MemoryBackend> {
    Arc::new(MemoryBackend::with_streaming(10_000))
}

fn faulty(b: &Arc<MemoryBackend>) -> (Arc<CloudFs>, Arc<FaultBackend>) {
    let f = FaultBackend::new(b.clone());
    let fs = CloudFs::new(Arc::new(Faulty(f.clone())), &MountConfig::default());
    (Arc::new(fs), f)
}

async fn object(b: &MemoryBackend, key: &str) -> Option<Vec<u8>> {
    let size = b.head(key).await.ok()?.size;
    Some(b.get_range(key, 0..size, None).await.ok()?.to_vec())
}

async fn ino(fs: &CloudFs, name: &str) -> u64 {
    fs.lookup(ROOT_INO, name).await.unwrap().attr.ino
}

/// Bounded wait for a held operation to be reached.
async fn reached(n: &tokio::sync::Notify) {
    tokio::time::timeout(Duration::from_secs(10), n.notified())
        .await
        .expect("the held operation was never reached");
}

/// Case 1: more than 4,096 scattered writes once collapsed the staged range set into one
/// range, so the close uploaded zeros over every byte never fetched. 100,000 writes to a
/// 1 GiB object keep every other byte.
#[tokio::test]
async fn scattered_writes_to_a_big_object_keep_every_byte_they_did_not_touch() {
    const SIZE: usize = 1 << 30;
    let b = Arc::new(MemoryBackend::new());
    // A pattern of a prime length, so a byte in the wrong place shows.
    let block: Vec<u8> = (0..4093u32).map(|i| (i % 251) as u8 | 1).collect();
    let mut original = block.repeat(SIZE / block.len() + 1);
    original.truncate(SIZE);
    b.insert("big.img", original.clone());
    let (fs, _) = faulty(&b);
    let big = ino(&fs, "big.img").await;
    let o = fs
        .open(big, Access::Write { truncate: false })
        .await
        .unwrap();
    let mut want = original;
    let mut x: u64 = 88172645463325252;
    for _ in 0..100_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let at = (x % SIZE as u64) as usize;
        fs.write(o.fh, at as u64, Bytes::from_static(&[0xEE]))
            .await
            .unwrap();
        want[at] = 0xEE;
    }
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    let got = object(&b, "big.img").await.unwrap();
    assert_eq!(got.len(), SIZE);
    if got != want {
        let first_bad = got.iter().zip(&want).position(|(g, w)| g != w);
        panic!("byte differs at {first_bad:?}");
    }
}

/// Case 2: a failed `rm` (or a failed `mv` over an open file) once marked the file unlinked
/// anyway, so its next close silently uploaded nothing.
#[tokio::test]
async fn a_failed_unlink_or_rename_over_an_open_file_never_drops_its_next_close() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("open.txt", "v1");
    b.insert("other.txt", "other");
    let (fs, f) = faulty(&b);
    let open = ino(&fs, "open.txt").await;
    let o = fs
        .open(open, Access::Write { truncate: true })
        .await
        .unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"v2")).await.unwrap();
    f.fail(Op::Delete, "open.txt", 1);
    assert!(fs.unlink(ROOT_INO, "open.txt").await.is_err());
    f.fail(Op::Copy, "other.txt", 1);
    assert!(fs
        .rename(ROOT_INO, "other.txt", ROOT_INO, "open.txt", false)
        .await
        .is_err());
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    assert_eq!(object(&b, "open.txt").await.as_deref(), Some(&b"v2"[..]));
    assert_eq!(
        object(&b, "other.txt").await.as_deref(),
        Some(&b"other"[..])
    );
    assert_eq!(f.injected(), 2);
}

/// Case 6: a close racing a rename once uploaded the new content under the new name, which
/// the rename's copy of the old version then replaced.
#[tokio::test]
async fn a_close_racing_a_rename_is_never_overwritten_by_the_old_version() {
    let b = Arc::new(MemoryBackend::new());
    b.insert("a.txt", "old version");
    let (fs, f) = faulty(&b);
    let a = ino(&fs, "a.txt").await;
    let o = fs.open(a, Access::Write { truncate: true }).await.unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"new version"))
        .await
        .unwrap();
    let (at_copy, go) = f.hold(Op::Copy, "a.txt");
    let mv = {
        let fs = fs.clone();
        tokio::spawn(async move { fs.rename(ROOT_INO, "a.txt", ROOT_INO, "b.txt", false).await })
    };
    reached(&at_copy).await;
    let close = {
        let fs = fs.clone();
        tokio::spawn(async move { fs.flush(o.fh).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    go.notify_one();
    mv.await.unwrap().unwrap();
    close.await.unwrap().unwrap();
    fs.release(o.fh).await;
    assert_eq!(
        object(&b, "b.txt").await.as_deref(),
        Some(&b"new version"[..])
    );
    assert_eq!(object(&b, "a.txt").await, None);
}

/// Case 10: an open racing the last close once counted its handle outside the sessions'
/// lock: it got EBADF, or its `O_TRUNC` emptied what the close was uploading.
#[tokio::test]
async fn an_open_racing_the_last_close_joins_a_whole_session() {
    let b = Arc::new(MemoryBackend::new());
    let (fs, f) = faulty(&b);
    let (e, o) = fs
        .create(ROOT_INO, "race.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"first content"))
        .await
        .unwrap();
    // The close's flush fails, so the last release uploads: that upload is held.
    f.fail(Op::Put, "race.txt", 1);
    assert!(fs.flush(o.fh).await.is_err());
    let (at_put, go) = f.hold(Op::Put, "race.txt");
    let release = {
        let fs = fs.clone();
        tokio::spawn(async move { fs.release(o.fh).await })
    };
    reached(&at_put).await;
    let reopen = {
        let fs = fs.clone();
        let ino = e.attr.ino;
        tokio::spawn(async move { fs.open(ino, Access::Write { truncate: true }).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    go.notify_one();
    release.await.unwrap();
    let o2 = reopen.await.unwrap().unwrap();
    assert_eq!(
        object(&b, "race.txt").await.as_deref(),
        Some(&b"first content"[..]),
        "the close uploaded what was closed, not the truncation"
    );
    fs.write(o2.fh, 0, Bytes::from_static(b"second"))
        .await
        .expect("the new handle works (no EBADF)");
    fs.flush(o2.fh).await.unwrap();
    fs.release(o2.fh).await;
    assert_eq!(
        object(&b, "race.txt").await.as_deref(),
        Some(&b"second"[..])
    );
    assert_eq!(fs.stats().open_for_writing, 0);
}

/// Case 5: a last close whose upload failed once left the sessions' map at once, so a stop
/// never saw it; it stays (journaled) until it is sent.
#[tokio::test]
async fn a_failed_last_close_stays_until_the_stop_sends_it() {
    let b = Arc::new(MemoryBackend::new());
    let (fs, f) = faulty(&b);
    let (_, o) = fs
        .create(ROOT_INO, "late.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"closed"))
        .await
        .unwrap();
    f.fail(Op::Put, "late.txt", 2);
    assert!(fs.flush(o.fh).await.is_err());
    fs.release(o.fh).await;
    assert_eq!(object(&b, "late.txt").await, None);
    assert_eq!(fs.stats().open_for_writing, 1, "the session stays");
    assert_eq!(fs.drain(Duration::from_secs(5)).await, 0);
    assert_eq!(
        object(&b, "late.txt").await.as_deref(),
        Some(&b"closed"[..])
    );
}

/// Case 4: a shrinking truncate while a stream is under way (logrotate's copytruncate: the
/// writer goes on at its old offset) once kept the cut bytes in the stream's mirror.
#[tokio::test]
async fn a_truncate_during_a_stream_never_sends_the_cut_bytes() {
    const MIB: usize = 1 << 20;
    let b = streaming();
    let (fs, _) = faulty(&b);
    let (_, o) = fs
        .create(ROOT_INO, "log", PosixMeta::default())
        .await
        .unwrap();
    let old = Bytes::from(vec![b'o'; 3 * MIB]);
    fs.write(o.fh, 0, old).await.unwrap();
    let ino = ino(&fs, "log").await;
    fs.set_size(ino, MIB as u64).await.unwrap();
    let new = Bytes::from(vec![b'n'; 6 * MIB]);
    fs.write(o.fh, 3 * MIB as u64, new).await.unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    let got = object(&b, "log").await.unwrap();
    let mut want = vec![b'o'; MIB];
    want.resize(3 * MIB, 0);
    want.resize(9 * MIB, b'n');
    assert_eq!(got.len(), want.len());
    assert!(got == want, "stale bytes were sent");
}

/// Case 7: streamed parts once had a fixed size, so a stream past 10,000 parts (48.8 GiB at
/// 5 MiB) failed after its data had left staging. On a store taking only 22 parts, a 200 MiB
/// stream fits because its parts grow.
#[tokio::test]
async fn a_stream_stays_within_the_store_part_limit() {
    const MIB: usize = 1 << 20;
    let b = Arc::new(MemoryBackend::with_streaming(22));
    let fs = CloudFs::new(
        b.clone(),
        &MountConfig {
            upload_part_size: 5 << 20,
            ..MountConfig::default()
        },
    );
    let (_, o) = fs
        .create(ROOT_INO, "big", PosixMeta::default())
        .await
        .unwrap();
    let mut want = Vec::with_capacity(200 * MIB);
    for i in 0..200u8 {
        let chunk = Bytes::from(vec![i; MIB]);
        want.extend_from_slice(&chunk);
        fs.write(o.fh, u64::from(i) * MIB as u64, chunk)
            .await
            .unwrap();
    }
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    let got = object(&b, "big").await.unwrap();
    assert!(got == want, "the streamed object differs");
    let streamed = b
        .counters
        .streamed
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(streamed, 1, "sent as one stream, not whole at close");
}

/// A mount whose server does not answer asks it once, not once per journal record (each ask
/// costs the request timeout and its retries before the mount serves); the records stay and
/// the next mount sends them.
#[tokio::test]
async fn a_replay_against_a_silent_server_gives_up_at_once_and_keeps_every_record() {
    use crate::read::DiskBlockCache;
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(MemoryBackend::new());
    let f = FaultBackend::new(b.clone());
    let mount = || {
        let cache = DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap();
        let backend = Arc::new(Faulty(f.clone()));
        CloudFs::with_cache(backend, &MountConfig::default(), Some(Arc::new(cache)))
    };
    let fs = mount();
    for name in ["a", "b", "c"] {
        let (_, o) = fs
            .create(ROOT_INO, name, PosixMeta::default())
            .await
            .unwrap();
        fs.write(o.fh, 0, Bytes::from(name.repeat(10)))
            .await
            .unwrap();
        f.fail(Op::Put, name, 2);
        assert!(fs.flush(o.fh).await.is_err());
        fs.release(o.fh).await;
    }
    drop(fs);
    f.fail(Op::Head, "", 100);
    let before = f.injected();
    mount().resume_uploads().await;
    assert_eq!(
        f.injected() - before,
        1,
        "one unanswered HEAD, not one per record"
    );
    f.clear();
    mount().resume_uploads().await;
    for name in ["a", "b", "c"] {
        assert_eq!(object(&b, name).await, Some(name.repeat(10).into_bytes()));
    }
}

/// A truncate of a closed file whose session stays (its upload failed) is a complete
/// operation: it reaches the server (it was applied to the session as unclosed content, which
/// nothing ever sent).
#[tokio::test]
async fn a_truncate_of_a_closed_file_whose_upload_failed_reaches_the_server() {
    let b = streaming();
    let (fs, f) = faulty(&b);
    let (e, o) = fs
        .create(ROOT_INO, "t.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"hello world"))
        .await
        .unwrap();
    f.fail(Op::Put, "t.txt", 2);
    assert!(fs.flush(o.fh).await.is_err());
    fs.release(o.fh).await;
    assert!(fs.is_open_for_write(e.attr.ino), "the session stays");
    fs.set_size(e.attr.ino, 5).await.unwrap();
    assert_eq!(object(&b, "t.txt").await.as_deref(), Some(&b"hello"[..]));
    assert!(
        !fs.is_open_for_write(e.attr.ino),
        "sent, the session is gone"
    );
}

/// A chmod of a closed file whose session stays (its upload failed) is a complete operation:
/// content and mode reach the server (the mode was marked on the session, which nothing sent).
#[tokio::test]
async fn a_chmod_of_a_closed_file_whose_upload_failed_reaches_the_server() {
    let b = streaming();
    let (fs, f) = faulty(&b);
    let (e, o) = fs
        .create(ROOT_INO, "m.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"hello"))
        .await
        .unwrap();
    f.fail(Op::Put, "m.txt", 2);
    assert!(fs.flush(o.fh).await.is_err());
    fs.release(o.fh).await;
    assert!(fs.is_open_for_write(e.attr.ino), "the session stays");
    let change = PosixMeta {
        mode: Some(0o600),
        ..PosixMeta::default()
    };
    fs.set_attrs(e.attr.ino, change).await.unwrap();
    assert_eq!(object(&b, "m.txt").await.as_deref(), Some(&b"hello"[..]));
    let stored = b.head("m.txt").await.unwrap().meta.mode.unwrap_or(0);
    assert_eq!(stored & 0o7777, 0o600, "the mode is on the server");
    assert!(
        !fs.is_open_for_write(e.attr.ino),
        "sent, the session is gone"
    );
}

/// A utimens that arrives while the last close is uploading (as `touch -d` right after a
/// write) is not lost: it lands on the object after that upload, not on the retired session.
#[tokio::test]
async fn an_attribute_change_during_the_last_close_upload_reaches_the_server() {
    let b = streaming();
    let (fs, f) = faulty(&b);
    let (e, o) = fs
        .create(ROOT_INO, "u.txt", PosixMeta::default())
        .await
        .unwrap();
    fs.write(o.fh, 0, Bytes::from_static(b"data"))
        .await
        .unwrap();
    let (at_put, go) = f.hold(Op::Put, "u.txt");
    let release = {
        let fs = fs.clone();
        tokio::spawn(async move { fs.release(o.fh).await })
    };
    reached(&at_put).await;
    let when = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let touch = {
        let fs = fs.clone();
        let ino = e.attr.ino;
        let change = PosixMeta {
            mtime: Some(when),
            ..PosixMeta::default()
        };
        tokio::spawn(async move { fs.set_attrs(ino, change).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    go.notify_one();
    release.await.unwrap();
    touch.await.unwrap().unwrap();
    assert_eq!(object(&b, "u.txt").await.as_deref(), Some(&b"data"[..]));
    assert_eq!(b.head("u.txt").await.unwrap().meta.mtime, Some(when));
    assert!(!fs.is_open_for_write(e.attr.ino));
}
