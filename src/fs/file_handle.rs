//! An open file: its inode and the read-ahead stream of the object version it opened.

use crate::read::Prefetcher;

/// One `open` of a file.
#[derive(Debug)]
pub struct FileHandle {
    /// The file's inode.
    pub ino: u64,
    /// Reads of this handle.
    pub reader: Prefetcher,
    /// Opened for writing.
    pub write: bool,
    /// Opened to execute the file.
    pub exec: bool,
    /// The size is unknown until read: reads go straight to the backend.
    pub size_unknown: bool,
    /// Some read of this handle has returned data: a change on the server from now on is a
    /// change while open (`ESTALE`), not one made before the open.
    pub served: std::sync::atomic::AtomicBool,
}
