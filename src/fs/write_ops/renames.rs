//! A store that moves files and whole directories in one step (Drive, a local directory):
//! renames send no copies, and open files move with their objects.

use super::super::ROOT_INO;
use super::*;
use crate::backend::memory::MemoryBackend;
use crate::backend::Backend;
use crate::config::MountConfig;

async fn object(b: &MemoryBackend, key: &str) -> Option<Vec<u8>> {
    let size = b.head(key).await.ok()?.size;
    Some(b.get_range(key, 0..size, None).await.ok()?.to_vec())
}

#[tokio::test]
async fn stores_that_rename_in_one_step_move_files_and_directories_without_copies() {
    let b = Arc::new(MemoryBackend::with_native_renames());
    b.insert("d/x", b"X".to_vec());
    b.insert("d/sub/y", b"Y".to_vec());
    b.insert("f", b"F".to_vec());
    let fs = CloudFs::new(b.clone(), &MountConfig::default());
    // A file open for writing is not fetched first: its object moves with it.
    let f = fs.lookup(ROOT_INO, "f").await.unwrap().attr.ino;
    let o = fs.open(f, Access::Write { truncate: false }).await.unwrap();
    fs.write(o.fh, 1, bytes::Bytes::from_static(b"G"))
        .await
        .unwrap();
    fs.rename(ROOT_INO, "f", ROOT_INO, "g", false)
        .await
        .unwrap();
    fs.flush(o.fh).await.unwrap();
    fs.release(o.fh).await;
    assert_eq!(object(&b, "g").await.unwrap(), b"FG");
    assert!(object(&b, "f").await.is_none());
    fs.rename(ROOT_INO, "d", ROOT_INO, "e", false)
        .await
        .unwrap();
    assert_eq!(object(&b, "e/sub/y").await.unwrap(), b"Y");
    assert!(object(&b, "d/x").await.is_none());
    assert!(fs.lookup(ROOT_INO, "e").await.is_ok());
    assert_eq!(
        fs.lookup(ROOT_INO, "d").await.unwrap_err(),
        FsError::NotFound
    );
    assert_eq!(b.copies.load(std::sync::atomic::Ordering::Relaxed), 0);
}
