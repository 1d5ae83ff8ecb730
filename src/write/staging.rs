//! Staging files: the local copy of a file open for writing.
//!
//! Each inode open for writing has one staging file (mode 0600, in a 0700 directory) holding
//! the whole new content; every write handle of the inode shares it. A file opened without
//! `O_TRUNC` is first filled with the object's current bytes. `dirty` says whether the content
//! differs from the object on the server; the core uploads it on `flush`/`fsync` and clears it.
//! The file is removed when the value is dropped, unless an upload failed and the data would
//! otherwise be lost ([`Staged::keep`]).
//!
//! Journal: while the content of a closed (flushed or fsynced) file is on its way to the
//! store, a `<file>.key` record next to it names the object. If the daemon dies first (kill,
//! power loss) or the upload fails for good, the next mount finds the record
//! ([`StagingArea::pending`]) and uploads the file. Content no program closed is never
//! journaled, so a half-written file is never sent.

use crate::backend::PosixMeta;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The directory staging files live in.
#[derive(Debug)]
pub struct StagingArea {
    dir: PathBuf,
    seq: AtomicU64,
    /// A private temporary directory, removed with the area.
    temporary: bool,
}

/// Temporary staging areas made by this process so far.
static TEMPORARY_AREAS: AtomicU64 = AtomicU64::new(0);

impl Drop for StagingArea {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl StagingArea {
    /// Use (creating it 0700) `dir` for staging files. Of what an earlier run left there, the
    /// journaled files are kept (see [`StagingArea::pending`]); the rest (content no program
    /// closed) is removed.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
            .map_err(|e| {
                format!(
                    "cannot create the staging directory {} for written data: {e}; \
                     choose another cache directory with -o cache=DIR",
                    dir.display()
                )
            })?;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let is_record = p.extension().is_some_and(|x| x == "key");
            if !is_record && !journal_path(&p).exists() {
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(StagingArea {
            dir: dir.to_path_buf(),
            seq: AtomicU64::new(0),
            temporary: false,
        })
    }

    /// A private staging directory under the system's temporary directory, removed when the
    /// area is dropped (for mounts without a cache directory; nothing survives a crash).
    pub fn temporary() -> Result<Self, String> {
        let n = TEMPORARY_AREAS.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("cloudmount-staging-{}-{n}", std::process::id()));
        let mut area = Self::open(&dir)?;
        area.temporary = true;
        Ok(area)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Closed content an earlier run did not get to upload, oldest first.
    pub fn pending(&self) -> Vec<Pending> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found: Vec<(std::time::SystemTime, Pending)> = entries
            .flatten()
            .filter_map(|e| {
                let record = e.path();
                let data = record.to_str()?.strip_suffix(".key").map(PathBuf::from)?;
                let text = std::fs::read_to_string(&record).ok()?;
                let (key, meta) = parse_record(&text);
                let age = e.metadata().and_then(|m| m.modified()).ok()?;
                data.is_file().then_some((age, Pending { data, key, meta }))
            })
            .collect();
        found.sort_by_key(|f| f.0);
        found.into_iter().map(|(_, p)| p).collect()
    }

    /// Forget a pending upload that is done (removes the data file and its record).
    pub fn settle(data: &Path) {
        let _ = std::fs::remove_file(journal_path(data));
        let _ = std::fs::remove_file(data);
    }

    /// A new, empty staging file for `key`.
    pub fn create(&self, key: &str) -> std::io::Result<Staged> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self.dir.join(format!(
            "{}.{nanos}.{}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&path)?;
        Ok(Staged {
            key: key.to_string(),
            file,
            path,
            size: 0,
            dirty: false,
            unlinked: false,
            base_etag: None,
            stream: None,
            base_len: 0,
            changed: Changes::default(),
            dropped: 0,
            keep: false,
        })
    }
}

/// Closed content a run did not get to upload (see [`StagingArea::pending`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The staged data file.
    pub data: PathBuf,
    /// The object it belongs to.
    pub key: String,
    /// The POSIX attributes to store with it.
    pub meta: PosixMeta,
}

/// A journal record: one `name=value` line per POSIX attribute, then `key=` and the object key
/// (which may hold any character, so it comes last). A record of only a key (the first
/// format) has no attributes.
fn parse_record(text: &str) -> (String, PosixMeta) {
    let mut pairs = Vec::new();
    let mut rest = text;
    for _ in 0..8 {
        if let Some(key) = rest.strip_prefix("key=") {
            return (key.to_string(), PosixMeta::from_pairs(pairs));
        }
        let Some((line, next)) = rest.split_once('\n') else {
            break;
        };
        match line.split_once('=') {
            Some(pair) => pairs.push(pair),
            None => break,
        }
        rest = next;
    }
    (text.to_string(), PosixMeta::default())
}

fn record_text(key: &str, meta: &PosixMeta) -> String {
    let mut text = String::new();
    for (name, value) in meta.to_pairs() {
        text.push_str(&format!("{name}={value}\n"));
    }
    text.push_str("key=");
    text.push_str(key);
    text
}

/// The staged content of one file open for writing.
#[derive(Debug)]
pub struct Staged {
    /// Object key the content belongs to (follows renames).
    pub key: String,
    file: File,
    path: PathBuf,
    size: u64,
    /// The content differs from the object on the server.
    pub dirty: bool,
    /// The file was unlinked while open: its content must not be uploaded.
    pub unlinked: bool,
    /// Streaming upload while the file is written in order (`None`: not eligible).
    pub stream: Option<super::Streamer>,
    /// ETag of the object version the content started from (`None` for a new file): an
    /// upload that finds another version on the server logs the conflict.
    pub base_etag: Option<String>,
    /// Bytes `0..base_len` may still equal the same bytes of the version `base_etag` names
    /// (where `changed` says nothing else): what a re-upload can copy on the server.
    base_len: u64,
    /// Byte ranges written since the content last matched the stored version.
    changed: Changes,
    /// Bytes `0..dropped` went out in a streaming upload and were removed from the file to
    /// bound its size (`stream_staging_max`); they can no longer be read, changed or re-sent.
    dropped: u64,
    keep: bool,
}

impl Staged {
    /// Current size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Bytes at the start that were sent and dropped (see [`Staged::drop_below`]).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Remove bytes before `upto` (already sent in a streaming upload) from the file, so a
    /// large copy does not need its whole size in the staging area.
    pub fn drop_below(&mut self, upto: u64) -> std::io::Result<()> {
        use nix::fcntl::{fallocate, FallocateFlags};
        let upto = upto.min(self.size);
        if upto <= self.dropped {
            return Ok(());
        }
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        let len = (upto - self.dropped) as libc::off_t;
        fallocate(&self.file, flags, self.dropped as libc::off_t, len)?;
        self.dropped = upto;
        Ok(())
    }

    /// Why the content cannot be changed at `offset` (or read there, or sent whole): part of
    /// it was sent and dropped, so only appending to a running streaming upload is possible.
    pub fn check_change(&self, offset: u64) -> Result<(), String> {
        if self.dropped == 0 || self.stream.as_ref().is_some_and(|s| s.accepts(offset)) {
            return Ok(());
        }
        Err(format!(
            "{}: its first {} bytes were already uploaded by a streaming upload and dropped \
             from the staging area (-o stream_staging_max=); until it is closed, the file can \
             only be appended to",
            self.key, self.dropped
        ))
    }

    /// The local file (for uploads).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write `data` at `offset`, growing the file as needed.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.file.write_all_at(data, offset)?;
        let end = offset + data.len() as u64;
        if offset > self.size {
            // The gap reads as zeros.
            self.changed.add(self.size..offset);
        }
        self.changed.add(offset..end);
        self.size = self.size.max(end);
        self.dirty = true;
        Ok(())
    }

    /// Bytes `offset .. offset + len` (fewer at the end of the file).
    pub fn read_at(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let end = (offset.saturating_add(len)).min(self.size);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Cut or extend (with zeros) to `size`.
    pub fn truncate(&mut self, size: u64) -> std::io::Result<()> {
        self.file.set_len(size)?;
        if size < self.size {
            self.base_len = self.base_len.min(size);
        } else {
            self.changed.add(self.size..size);
        }
        self.size = size;
        self.dirty = true;
        Ok(())
    }

    /// Adopt content written to the file directly (the initial download of the stored
    /// version), without marking the file dirty.
    pub fn filled(&mut self, size: u64) {
        self.size = size;
        self.base_len = size;
        self.changed = Changes::default();
    }

    /// The content now matches the stored version (just uploaded).
    pub fn stored(&mut self) {
        self.dirty = false;
        self.base_len = if self.dropped == 0 { self.size } else { 0 };
        self.changed = Changes::default();
    }

    /// How to re-upload in parts of `part` bytes: which parts are unchanged bytes of the
    /// stored version (copied on the server) and which are sent. `None` when nothing can be
    /// copied.
    pub fn reuse_plan(&self, part: u64) -> Option<Vec<crate::backend::PartSource>> {
        use crate::backend::PartSource;
        if part == 0 || self.base_len < part || self.size <= part {
            return None;
        }
        let mut plan = Vec::new();
        let mut at = 0;
        while at < self.size {
            let end = (at + part).min(self.size);
            let copyable = end <= self.base_len && !self.changed.touches(at..end);
            plan.push(if copyable {
                PartSource::Copy(at..end)
            } else {
                PartSource::Send(at..end)
            });
            at = end;
        }
        plan.iter()
            .any(|p| matches!(p, PartSource::Copy(_)))
            .then_some(plan)
    }

    /// The file handle, for writing the initial download.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Keep the file on disk when dropped (its upload failed; the log names it).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Record that this closed content must reach the store (with `meta`) even if the daemon
    /// dies.
    pub fn journal(&self, meta: &PosixMeta) -> std::io::Result<()> {
        let record = journal_path(&self.path);
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&record)?;
        // Not synced: a successful close means the upload is done, so the record only has to
        // outlive the daemon (kill, crash), not the machine.
        std::io::Write::write_all(&mut f, record_text(&self.key, meta).as_bytes())
    }

    /// The journaled content reached the store.
    pub fn unjournal(&self) {
        let _ = std::fs::remove_file(journal_path(&self.path));
    }
}

/// Byte ranges, merged; past [`Changes::MAX`] ranges they collapse into one covering all
/// (a re-upload then sends more, never less).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Changes(Vec<std::ops::Range<u64>>);

impl Changes {
    const MAX: usize = 4096;

    fn add(&mut self, r: std::ops::Range<u64>) {
        if r.is_empty() {
            return;
        }
        let mut merged = r;
        self.0.retain(|x| {
            let overlaps = x.start <= merged.end && merged.start <= x.end;
            if overlaps {
                merged = merged.start.min(x.start)..merged.end.max(x.end);
            }
            !overlaps
        });
        let at = self.0.partition_point(|x| x.start < merged.start);
        self.0.insert(at, merged);
        if self.0.len() > Self::MAX {
            if let (Some(first), Some(last)) = (self.0.first(), self.0.last()) {
                let all = first.start..last.end;
                self.0.clear();
                self.0.push(all);
            }
        }
    }

    fn touches(&self, r: std::ops::Range<u64>) -> bool {
        self.0.iter().any(|x| x.start < r.end && r.start < x.end)
    }
}

fn journal_path(data: &Path) -> PathBuf {
    let mut p = data.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(journal_path(&self.path));
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_truncates_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(&dir.path().join("staging")).unwrap();
        assert_eq!(
            std::fs::metadata(area.dir()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let mut s = area.create("k").unwrap();
        assert_eq!(
            std::fs::metadata(s.path()).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!s.dirty);
        s.write_at(5, b"hello").unwrap();
        assert!(s.dirty);
        assert_eq!(s.size(), 10);
        assert_eq!(s.read_at(0, 100).unwrap(), b"\0\0\0\0\0hello");
        assert_eq!(s.read_at(7, 2).unwrap(), b"ll");
        assert!(s.read_at(20, 5).unwrap().is_empty());
        s.truncate(6).unwrap();
        assert_eq!(s.read_at(0, 100).unwrap(), b"\0\0\0\0\0h");
        let path = s.path().to_path_buf();
        drop(s);
        assert!(!path.exists(), "removed when done");
        let mut kept = area.create("k").unwrap();
        kept.keep();
        let path = kept.path().to_path_buf();
        drop(kept);
        assert!(path.exists(), "a failed upload's data stays on disk");

        // Journaled content survives a restart and is offered for upload; the rest goes.
        let journaled = area.create("dir/key\nkey=odd").unwrap();
        let meta = PosixMeta {
            mode: Some(0o100640),
            uid: Some(7),
            gid: None,
            mtime: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)),
        };
        journaled.journal(&meta).unwrap();
        let jpath = journaled.path().to_path_buf();
        std::mem::forget(journaled); // as if the daemon died
        let area = StagingArea::open(area.dir()).unwrap();
        assert!(!path.exists(), "unjournaled leftovers are removed");
        let want = Pending {
            data: jpath.clone(),
            key: "dir/key\nkey=odd".to_string(),
            meta,
        };
        assert_eq!(area.pending(), vec![want]);
        // A record of the first format: only the key.
        let old = area.create("x").unwrap();
        std::fs::write(journal_path(old.path()), "plain/key").unwrap();
        let (key, meta) = parse_record("plain/key");
        assert_eq!((key.as_str(), meta), ("plain/key", PosixMeta::default()));
        drop(old);
        StagingArea::settle(&jpath);
        assert!(area.pending().is_empty() && !jpath.exists());
    }

    #[test]
    fn a_reupload_copies_only_untouched_parts_of_the_stored_version() {
        use crate::backend::PartSource::{Copy, Send};
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path()).unwrap();
        let mut s = area.create("k").unwrap();
        s.file().set_len(100).unwrap();
        s.filled(100);
        assert_eq!(
            s.reuse_plan(10),
            Some((0..10).map(|i| Copy(i * 10..i * 10 + 10)).collect())
        );
        s.write_at(25, b"x").unwrap();
        s.write_at(59, b"yz").unwrap();
        let plan = s.reuse_plan(10).unwrap();
        assert_eq!(plan[2], Send(20..30));
        assert_eq!(
            (plan[5].clone(), plan[6].clone()),
            (Send(50..60), Send(60..70))
        );
        assert_eq!(plan.iter().filter(|p| matches!(p, Copy(_))).count(), 7);
        // Cut and grown again: the tail is zeros, not the stored bytes.
        s.truncate(75).unwrap();
        s.truncate(100).unwrap();
        let plan = s.reuse_plan(10).unwrap();
        assert_eq!(plan[7..], [Send(70..80), Send(80..90), Send(90..100)]);
        // Appended past the end (a gap of zeros): sent.
        s.write_at(120, b"end").unwrap();
        let plan = s.reuse_plan(10).unwrap();
        assert_eq!(plan.last(), Some(&Send(120..123)));
        // Uploaded: everything is the stored version again.
        s.stored();
        assert!(s
            .reuse_plan(10)
            .unwrap()
            .iter()
            .all(|p| matches!(p, Copy(_))));
        // Small files and new files are sent whole.
        assert_eq!(s.reuse_plan(200), None);
        let fresh = area.create("n").unwrap();
        assert_eq!(fresh.reuse_plan(10), None);
    }

    #[test]
    fn changes_merge_and_stay_bounded() {
        let mut c = Changes::default();
        c.add(10..20);
        c.add(30..40);
        c.add(15..32);
        assert_eq!(c.0, vec![10..40]);
        c.add(40..41);
        assert_eq!(c.0, vec![10..41], "adjacent ranges merge");
        for i in 0..(Changes::MAX as u64 + 10) {
            c.add(1000 + i * 10..1000 + i * 10 + 1);
        }
        assert!(c.0.len() <= Changes::MAX);
        assert!(c.touches(5000..5001) && c.touches(10..11) && !c.touches(0..10));
    }
}
