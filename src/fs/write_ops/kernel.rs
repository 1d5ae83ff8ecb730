//! Sessions whose staging file the kernel writes (write passthrough): the core learns of the
//! writes only from the file, and still uploads exactly what was closed.

use super::super::{CloudFs, ROOT_INO};
use super::Access;
use crate::backend::fault::{Fault, FaultBackend, Faulty, Op};
use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, PosixMeta};
use crate::config::MountConfig;
use crate::read::DiskBlockCache;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

async fn object(b: &MemoryBackend, key: &str) -> Option<Vec<u8>> {
    let size = b.head(key).await.ok()?.size;
    Some(b.get_range(key, 0..size, None).await.ok()?.to_vec())
}

/// A mount of `backend` with its cache (and staging) in `dir`; `None` where the kernel's
/// writes could not be followed (old kernel, or a filesystem with coarse times).
fn mount(backend: Arc<dyn Backend>, dir: &std::path::Path) -> Option<CloudFs> {
    if let Some(why) = crate::write::kernel::supported(dir) {
        println!("kernel writes unsupported here: {why}");
        return None;
    }
    let cache = DiskBlockCache::open(dir, "memory://kernel", 1 << 30, 1 << 20).ok()?;
    Some(CloudFs::with_cache(
        backend,
        &MountConfig::default(),
        Some(Arc::new(cache)),
    ))
}

#[tokio::test]
async fn the_close_uploads_what_the_kernel_wrote_and_getattr_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(MemoryBackend::new());
    let Some(fs) = mount(b.clone(), dir.path()) else {
        return;
    };
    let (e, o) = fs
        .create(ROOT_INO, "k.bin", PosixMeta::default())
        .await
        .unwrap();
    let ino = e.attr.ino;
    let offer = o.staging.expect("a write open is offered its staging file");
    assert!(offer.fresh, "a new file, alone: the kernel may write it");
    fs.write_by_kernel(o.fh).await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    offer.file.write_all_at(b"hello", 0).unwrap();
    let (attr, _) = fs.getattr(ino).await.unwrap();
    assert_eq!(attr.size, 5, "the size comes from the staging file");
    assert!(attr.mtime > e.attr.mtime, "a write moves mtime");
    assert_eq!(
        object(&b, "k.bin").await,
        None,
        "nothing sent before a close"
    );
    fs.flush(o.fh).await.unwrap();
    assert_eq!(object(&b, "k.bin").await.as_deref(), Some(&b"hello"[..]));

    // Another open joins the session (not fresh: the kernel already writes its file).
    let o2 = fs
        .open(ino, Access::Write { truncate: false })
        .await
        .unwrap();
    let joined = o2.staging.expect("offered");
    assert!(!joined.fresh && Arc::ptr_eq(&joined.file, &offer.file));
    // Same size, only the bytes change: seen from the file's change time.
    offer.file.write_all_at(b"HELLO", 0).unwrap();
    fs.flush(o2.fh).await.unwrap();
    assert_eq!(object(&b, "k.bin").await.as_deref(), Some(&b"HELLO"[..]));
    fs.release(o2.fh).await;
    fs.release(o.fh).await;
    assert_eq!(object(&b, "k.bin").await.as_deref(), Some(&b"HELLO"[..]));
}

/// A close while the store is down journals what the file held; the kernel then writes more
/// through a descriptor still open, and the daemon dies before it looks again. The next mount
/// must not upload that (nobody closed it): the journal record's change time tells.
#[tokio::test]
async fn content_the_kernel_wrote_after_a_journaled_close_is_set_aside_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(MemoryBackend::new());
    let f = FaultBackend::new(b.clone());
    let Some(fs) = mount(Arc::new(Faulty(f.clone())), dir.path()) else {
        return;
    };
    let mut files = Vec::new();
    for name in ["later.bin", "kept.bin"] {
        let (_, o) = fs
            .create(ROOT_INO, name, PosixMeta::default())
            .await
            .unwrap();
        let file = o.staging.expect("offered").file;
        fs.write_by_kernel(o.fh).await.unwrap();
        file.write_all_at(b"closed", 0).unwrap();
        files.push((o.fh, file));
    }
    f.inject(Op::Put, "", Fault::Down, 1000);
    for (fh, _) in &files {
        fs.flush(*fh)
            .await
            .expect("journaled while the store is down");
    }
    // Same size: only the change time shows it.
    files[0].1.write_all_at(b"LATER!", 0).unwrap();
    drop(files);
    drop(fs); // the daemon dies
    f.clear();
    let again = mount(b.clone(), dir.path()).expect("supported");
    again.resume_uploads().await;
    assert_eq!(
        object(&b, "kept.bin").await.as_deref(),
        Some(&b"closed"[..]),
        "closed content is sent by the next mount"
    );
    assert_eq!(
        object(&b, "later.bin").await,
        None,
        "written after its close: never sent"
    );
    let aside = again.lost_found_dir().expect("a lost+found");
    let kept: Vec<_> = std::fs::read_dir(aside)
        .unwrap()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".txt"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    assert!(kept.contains(&b"LATER!".to_vec()), "set aside, not lost");
}

/// Parts the kernel's writer is past go out while it writes; a part rewritten after it was
/// sent is caught at close (its CRC differs) and the file goes up whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_stream_while_the_kernel_writes_and_a_rewritten_one_is_caught() {
    const PART: usize = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(MemoryBackend::with_streaming(10_000));
    let f = FaultBackend::new(b.clone());
    let Some(fs) = mount(Arc::new(Faulty(f.clone())), dir.path()) else {
        return;
    };
    for rewrite in [false, true] {
        let name = format!("big-{rewrite}.bin");
        let (_, o) = fs
            .create(ROOT_INO, &name, PosixMeta::default())
            .await
            .unwrap();
        let file = o.staging.expect("offered").file;
        fs.write_by_kernel(o.fh).await.unwrap();
        let mut want: Vec<u8> = (0..4 * PART + 12_345).map(|i| (i % 253) as u8).collect();
        file.write_all_at(&want, 0).unwrap();
        let parts = |f: &FaultBackend| {
            f.reached()
                .iter()
                .filter(|(op, k)| *op == Op::Part && *k == name)
                .count()
        };
        // The writer is past three parts: they go out before any close.
        let mut sent = 0;
        for _ in 0..500 {
            sent = parts(&f);
            if sent >= 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(sent, 3, "three full parts streamed while open");
        if rewrite {
            want[PART + 7] ^= 0xff;
            file.write_all_at(&want[PART + 7..PART + 8], (PART + 7) as u64)
                .unwrap();
        }
        fs.flush(o.fh).await.unwrap();
        assert!(
            object(&b, &name).await == Some(want),
            "the server holds exactly what was closed (rewrite: {rewrite})"
        );
        let whole = f
            .reached()
            .iter()
            .any(|(op, k)| *op == Op::Put && *k == name);
        assert_eq!(whole, rewrite, "sent whole only when a sent part changed");
        fs.release(o.fh).await;
    }
}

/// `cp -p` and `rsync -t` write, then set the mtime, then close: the writes the kernel made
/// before the mtime was set must not move it again at the close.
#[tokio::test]
async fn an_mtime_set_after_kernel_writes_is_the_one_stored() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(MemoryBackend::new());
    let Some(fs) = mount(b.clone(), dir.path()) else {
        return;
    };
    let (e, o) = fs
        .create(ROOT_INO, "p.bin", PosixMeta::default())
        .await
        .unwrap();
    let file = o.staging.expect("offered").file;
    fs.write_by_kernel(o.fh).await.unwrap();
    file.write_all_at(b"data", 0).unwrap();
    let then = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_500_000_000);
    fs.set_attrs(
        e.attr.ino,
        PosixMeta {
            mtime: Some(then),
            ..PosixMeta::default()
        },
    )
    .await
    .unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    assert_eq!(fs.getattr(e.attr.ino).await.unwrap().0.mtime, then);
    assert_eq!(b.head("p.bin").await.unwrap().meta.mtime, Some(then));
}
