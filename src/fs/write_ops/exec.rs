//! Files run as programs: an `O_RDONLY|O_TRUNC` open empties a file, as Linux does, except
//! while a program runs from it (`ETXTBSY`, and nothing changes).

use super::super::ROOT_INO;
use super::*;
use crate::backend::memory::MemoryBackend;
use crate::backend::Backend;
use crate::config::MountConfig;

/// A mount of a store holding one 18-byte script, `prog`, and its inode.
async fn with_program() -> (Arc<MemoryBackend>, CloudFs, u64) {
    let b = Arc::new(MemoryBackend::new());
    b.insert("prog", b"#!/bin/sh\nsleep 1\n".to_vec());
    let fs = CloudFs::new(b.clone(), &MountConfig::default());
    let ino = fs.lookup(ROOT_INO, "prog").await.unwrap().attr.ino;
    (b, fs, ino)
}

#[tokio::test]
async fn a_truncating_read_open_is_refused_while_the_file_runs_and_empties_it_after() {
    let (b, fs, ino) = with_program().await;
    let reader = fs.open(ino, Access::Read).await.unwrap();
    let running = fs.open(ino, Access::Exec).await.unwrap();
    let e = fs.open(ino, Access::ReadTruncate).await.unwrap_err();
    assert_eq!(e.errno(), libc::ETXTBSY, "{e}");
    assert!(e.to_string().contains("prog: a program runs"), "{e}");
    assert_eq!(b.head("prog").await.unwrap().size, 18, "nothing changed");
    fs.release(running.fh).await;
    // A plain reader does not stop it, as on a local disk.
    let emptied = fs.open(ino, Access::ReadTruncate).await.unwrap();
    assert_eq!(
        b.head("prog").await.unwrap().size,
        0,
        "emptied on the server"
    );
    assert_eq!(fs.getattr(ino).await.unwrap().0.size, 0);
    fs.release(emptied.fh).await;
    fs.release(reader.fh).await;
}

#[tokio::test]
async fn a_truncating_read_open_that_cannot_reach_the_server_fails_and_opens_nothing() {
    let (b, fs, ino) = with_program().await;
    b.fail_puts(true);
    let e = fs.open(ino, Access::ReadTruncate).await.unwrap_err();
    assert_eq!(e.errno(), libc::EIO, "{e}");
    assert_eq!(
        b.head("prog").await.unwrap().size,
        18,
        "the server still holds the file"
    );
    assert!(
        !lock(&fs.files).values().any(|h| h.ino == ino),
        "no handle left open"
    );
}
