//! Staging files the kernel writes directly (FUSE passthrough for writes).
//!
//! A file opened for writing with empty content (a new file, or `O_TRUNC`) can be backed by
//! its staging file: the kernel then writes (and reads) it without the daemon, which no
//! longer sees the writes. What the daemon needs to know about them (that the content
//! changed, and its size) it learns from the file itself: [`KernelWrites`] looks at its size
//! and change time (`ctime`, which no program can set) whenever the daemon touches the
//! session, and at every `getattr`.
//!
//! That is exact only where a change right after a look always moves the change time: on
//! Linux 6.13 and later, filesystems with fine-grained ("multigrain") timestamps give a change
//! that follows a `stat` a time of its own, never the coarse one the `stat` saw. Older kernels
//! keep one timestamp per clock tick (a few milliseconds), so a write just after a close could
//! go unseen; [`supported`] therefore allows kernel writes only on those filesystems and
//! kernels.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Filesystems with multigrain timestamps (Linux 6.13: ext4, xfs, btrfs, tmpfs), by magic.
const MULTIGRAIN: [i64; 4] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994];

/// Why kernel writes cannot be used for staging files in `dir` (`None`: they can).
pub fn supported(dir: &Path) -> Option<String> {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if (major, minor) < (6, 13) {
        return Some(format!(
            "Linux {release} keeps coarse file times; written files are seen only from 6.13 on"
        ));
    }
    // The magic's type differs between architectures (i64 on x86_64).
    #[allow(clippy::unnecessary_cast)]
    let magic = |s: &nix::sys::statfs::Statfs| s.filesystem_type().0 as i64;
    match nix::sys::statfs::statfs(dir) {
        Ok(s) if MULTIGRAIN.contains(&magic(&s)) => None,
        Ok(s) => Some(format!(
            "the staging directory {} is on a filesystem (type {:#x}) without fine-grained file \
             times (ext4, xfs, btrfs and tmpfs have them)",
            dir.display(),
            s.filesystem_type().0
        )),
        Err(e) => Some(format!("cannot statfs {}: {e}", dir.display())),
    }
}

/// Size and change time of the file at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Look {
    size: u64,
    ctime: (i64, i64),
}

/// What each reader of the file last saw: the inode's attributes and the write session
/// notice changes independently.
#[derive(Debug, Default)]
struct Seen {
    inode: Look,
    session: Look,
}

/// A staging file written by the kernel, and what the daemon last saw of it.
#[derive(Debug)]
pub struct KernelWrites {
    file: Arc<File>,
    seen: Mutex<Seen>,
}

/// Which reader asks.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Inode,
    Session,
}

impl KernelWrites {
    /// Start watching `file`, as it is now.
    pub fn new(file: Arc<File>) -> std::io::Result<Self> {
        let now = look(&file)?;
        Ok(KernelWrites {
            file,
            seen: Mutex::new(Seen {
                inode: now,
                session: now,
            }),
        })
    }

    fn changed(&self, reader: Reader) -> std::io::Result<Option<u64>> {
        let now = look(&self.file)?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let last = match reader {
            Reader::Inode => &mut seen.inode,
            Reader::Session => &mut seen.session,
        };
        if *last == now {
            return Ok(None);
        }
        *last = now;
        Ok(Some(now.size))
    }

    /// For the inode's attributes: the file's size when it changed since the last call.
    pub fn inode_change(&self) -> Option<u64> {
        self.changed(Reader::Inode).ok().flatten()
    }

    /// For the write session: the file's size when it changed since the last call.
    pub fn session_change(&self) -> std::io::Result<Option<u64>> {
        self.changed(Reader::Session)
    }

    /// The file's size now.
    pub fn size(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

/// The change time of `file`, as `seconds.nanoseconds` (journaled with closed content the
/// kernel wrote: a replay that finds another knows the file was written after the close).
pub fn ctime_of(file: &File) -> std::io::Result<String> {
    let l = look(file)?;
    Ok(format!("{}.{:09}", l.ctime.0, l.ctime.1))
}

fn look(file: &File) -> std::io::Result<Look> {
    let m = file.metadata()?;
    Ok(Look {
        size: m.len(),
        ctime: (m.ctime(), m.ctime_nsec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn a_write_after_a_look_is_seen_by_each_reader_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = Arc::new(File::create(dir.path().join("f")).unwrap());
        let k = KernelWrites::new(file.clone()).unwrap();
        assert_eq!(k.inode_change(), None);
        assert_eq!(k.session_change().unwrap(), None);
        file.write_all_at(b"abc", 0).unwrap();
        assert_eq!(k.inode_change(), Some(3));
        assert_eq!(k.inode_change(), None);
        assert_eq!(k.session_change().unwrap(), Some(3));
        assert_eq!(k.session_change().unwrap(), None);
        if supported(dir.path()).is_none() {
            // Same size, right after a look: only the change time tells (multigrain).
            for i in 0..100u8 {
                file.write_all_at(&[i], 0).unwrap();
                assert_eq!(k.session_change().unwrap(), Some(3), "write {i} unseen");
            }
        }
    }
}
