//! Staging files: the local copy of a file open for writing.
//!
//! Each inode open for writing has one staging file (mode 0600, in a 0700 directory); every
//! write handle of the inode shares it. The file is sparse: a file opened without `O_TRUNC`
//! starts with none of the stored bytes, which are fetched only where a read or an upload
//! needs them ([`Staged::missing`], [`Staged::fill`]); `changed` remembers what was written,
//! so a re-upload can copy the untouched parts on the server ([`Staged::reuse_plan`]).
//! `dirty` says whether the content differs from the object on the server; the core uploads
//! it on `flush`/`fsync` and clears it. The file is removed when the value is dropped,
//! unless an upload failed and the data would otherwise be lost ([`Staged::keep`]).
//!
//! Journal: while the content of a closed (flushed or fsynced) file is on its way to the
//! store, a record next to it (see `journal.rs`) names the object and the version it
//! replaces. If the daemon dies first (kill, power loss) or the upload fails for good, the
//! next mount finds it ([`StagingArea::pending`]) and finishes the upload, unless the server
//! holds something newer by then: such content, and records that cannot be read, are set
//! aside in `lost+found` next to the staging directory ([`StagingArea::set_aside`]). Content
//! no program closed is journaled only at a stop, as `unclosed`, and never uploaded unless
//! `-o upload_unclosed` asks.

use super::journal::{record_path, Expect, Record, RecordState};
use super::Ranges;
use crate::backend::{PartSource, PosixMeta};
use std::fs::{File, OpenOptions};
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Run file I/O `f` on the blocking pool, off the async workers (which serve every other
/// file of the mount meanwhile).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(std::io::Error::other(format!("staging I/O task: {e}"))),
    }
}

/// The directory staging files live in.
#[derive(Debug)]
pub struct StagingArea {
    dir: PathBuf,
    /// Where content that must not be uploaded but must not be lost either goes.
    lost_found: PathBuf,
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
        let lost_found = dir.parent().unwrap_or(dir).join("lost+found");
        let area = StagingArea {
            dir: dir.to_path_buf(),
            lost_found,
            seq: AtomicU64::new(0),
            temporary: false,
        };
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.unwrap_or_default();
            if name.ends_with(".key.tmp") {
                // A record a killed daemon did not finish renaming: the old one (or none)
                // stands.
                let _ = std::fs::remove_file(&p);
            } else if let Some(data) = name.strip_suffix(".key") {
                if !dir.join(data).is_file() {
                    area.quarantine(&p, None, "its data file is missing");
                }
            } else if !record_path(&p).exists() {
                // Never journaled: content already stored, or that no program closed, from a
                // run that was killed (a clean stop journals unclosed content). Not uploaded.
                let _ = std::fs::remove_file(&p);
            }
        }
        Ok(area)
    }

    /// A private staging directory under the system's temporary directory, removed when the
    /// area is dropped (for mounts without a cache directory; nothing survives a crash).
    pub fn temporary() -> Result<Self, String> {
        let n = TEMPORARY_AREAS.fetch_add(1, Ordering::Relaxed);
        let template = std::env::temp_dir().join(format!(
            "cloudmount-staging-{}-{n}-XXXXXX",
            std::process::id()
        ));
        // mkdtemp: a new directory of ours, 0700, never one someone else made first.
        let dir = nix::unistd::mkdtemp(&template).map_err(|e| {
            format!(
                "cannot create a private staging directory in {}: {e}; set TMPDIR to a \
                 writable directory or mount with -o cache=DIR",
                std::env::temp_dir().display()
            )
        })?;
        let mut area = Self::open(&dir.join("staging"))?;
        area.dir = dir.join("staging");
        area.lost_found = dir.join("lost+found");
        area.temporary = true;
        Ok(area)
    }

    /// Where set-aside content goes (see [`StagingArea::set_aside`]).
    pub fn lost_found(&self) -> &Path {
        &self.lost_found
    }

    /// How many files were set aside in `lost+found` (this run or earlier ones).
    pub fn lost_found_count(&self) -> usize {
        std::fs::read_dir(&self.lost_found)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".record"))
            .count()
    }

    /// Move journaled content that must not be uploaded (the server holds a newer version,
    /// or nobody closed it) into `lost+found`, with its record beside it as
    /// `<name>.record`. Returns where the data went.
    pub fn set_aside(&self, p: &Pending, why: &str) -> Option<PathBuf> {
        let name = format!("{}-{}", stamp(), safe_name(&p.record.key));
        let to = self.move_to_lost_found(&p.data, &name)?;
        let _ = self.move_to_lost_found(&record_path(&p.data), &format!("{name}.record"));
        tracing::warn!(key = %p.record.key, kept = %to.display(), reason = why, "journaled content set aside in lost+found instead of being uploaded");
        Some(to)
    }

    /// Move a record that cannot be read (and its data, if any) into `lost+found`.
    fn quarantine(&self, record: &Path, data: Option<&Path>, why: &str) {
        let base = record
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let name = format!("{}-unreadable-{base}", stamp());
        let rec = self.move_to_lost_found(record, &format!("{name}.record"));
        let data = data.and_then(|d| self.move_to_lost_found(d, &name));
        tracing::warn!(record = ?rec, data = ?data, reason = why, "a journal record cannot be read; it and its data are set aside in lost+found, not uploaded");
    }

    fn move_to_lost_found(&self, from: &Path, name: &str) -> Option<PathBuf> {
        let made = std::fs::create_dir_all(&self.lost_found).and_then(|_| {
            std::fs::set_permissions(&self.lost_found, std::fs::Permissions::from_mode(0o700))
        });
        if let Err(e) = made {
            tracing::error!(dir = %self.lost_found.display(), error = %e, "cannot create lost+found; the content stays in the staging directory");
            return None;
        }
        let to = self.lost_found.join(name);
        match std::fs::rename(from, &to) {
            Ok(()) => Some(to),
            Err(e) => {
                tracing::error!(from = %from.display(), error = %e, "cannot move into lost+found");
                None
            }
        }
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
                let size = std::fs::symlink_metadata(&data).ok()?.len();
                let parsed = Record::parse(&text).and_then(|r| {
                    if r.size == size || r.state == RecordState::Unclosed {
                        Ok(r)
                    } else {
                        Err(format!(
                            "it names {} bytes, its data file has {size}",
                            r.size
                        ))
                    }
                });
                let record_path = record.clone();
                let record = match parsed {
                    Ok(r) => r,
                    Err(why) => {
                        self.quarantine(&record_path, Some(&data), &why);
                        return None;
                    }
                };
                let age = e.metadata().and_then(|m| m.modified()).ok()?;
                data.is_file().then_some((age, Pending { data, record }))
            })
            .collect();
        found.sort_by_key(|f| f.0);
        found.into_iter().map(|(_, p)| p).collect()
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
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)?;
        Ok(Staged::new(key, Arc::new(file), path))
    }

    /// The staged content of a pending upload, to finish it (dirty; removed with its record
    /// once dropped, unless kept).
    pub fn reopen(&self, p: &Pending) -> std::io::Result<Staged> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p.data)?;
        let size = file.metadata()?.len();
        let mut st = Staged::new(&p.record.key, Arc::new(file), p.data.clone());
        st.size = size;
        st.dirty = true;
        st.expect = p.record.expect.clone();
        st.record = Some(p.record.clone());
        match &p.record.base {
            // Only `local` is here; the rest is the stored version's (and everything local
            // counts as changed: what was written is not recorded).
            Some((etag, local)) => {
                st.base_etag = Some(etag.clone());
                st.base_len = size;
                st.local = local.clone();
                st.changed = local.clone();
            }
            None => st.changed = Ranges::from_range(0..size),
        }
        Ok(st)
    }
}

/// Closed content a run did not get to upload (see [`StagingArea::pending`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The staged data file.
    pub data: PathBuf,
    /// What its journal record says.
    pub record: Record,
}

/// The staged content of one file open for writing.
#[derive(Debug)]
pub struct Staged {
    /// Object key the content belongs to (follows renames).
    pub key: String,
    /// Shared with the blocking tasks that read and write it (never on an async worker).
    file: Arc<File>,
    path: PathBuf,
    size: u64,
    /// The content differs from the object on the server.
    pub dirty: bool,
    /// The file was unlinked while open (the delete reached the server): its content must
    /// not be uploaded.
    pub unlinked: bool,
    /// Written (or truncated) since the last close: no program closed this content yet.
    pub unclosed: bool,
    /// The version on the server this content replaces (journaled with it).
    pub expect: Expect,
    /// The journal record naming this content, while there is one.
    record: Option<Record>,
    /// Streaming upload while the file is written in order (`None`: not eligible).
    pub stream: Option<super::Streamer>,
    /// ETag of the object version the content started from (`None` for a new file): its
    /// bytes fill what is not staged, and an upload that finds another version on the server
    /// logs the conflict.
    pub base_etag: Option<String>,
    /// Bytes `0..base_len` are the version `base_etag` names, except where `changed` says
    /// otherwise; only those in `local` are in the file. Bytes past it are all in the file.
    base_len: u64,
    /// Ranges below `base_len` that the file holds (written or fetched).
    local: Ranges,
    /// Byte ranges written since the content last matched the stored version.
    changed: Ranges,
    /// Bytes `0..dropped` went out in a streaming upload and were removed from the file to
    /// bound its size (`stream_staging_max`); they can no longer be read, changed or re-sent.
    dropped: u64,
    keep: bool,
}

impl Staged {
    fn new(key: &str, file: Arc<File>, path: PathBuf) -> Staged {
        Staged {
            key: key.to_string(),
            file,
            path,
            size: 0,
            dirty: false,
            unlinked: false,
            unclosed: false,
            expect: Expect::Any,
            record: None,
            base_etag: None,
            stream: None,
            base_len: 0,
            local: Ranges::default(),
            changed: Ranges::default(),
            dropped: 0,
            keep: false,
        }
    }

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
    pub async fn drop_below(&mut self, upto: u64) -> std::io::Result<()> {
        use nix::fcntl::{fallocate, FallocateFlags};
        let upto = upto.min(self.size);
        if upto <= self.dropped {
            return Ok(());
        }
        let flags = FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE;
        let (at, len) = (
            self.dropped as libc::off_t,
            (upto - self.dropped) as libc::off_t,
        );
        let file = self.file.clone();
        blocking(move || Ok(fallocate(&*file, flags, at, len)?)).await?;
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
    pub async fn write_at(&mut self, offset: u64, data: bytes::Bytes) -> std::io::Result<()> {
        let (file, bytes) = (self.file.clone(), data.clone());
        blocking(move || file.write_all_at(&bytes, offset)).await?;
        let end = offset + data.len() as u64;
        if offset > self.size {
            // The gap reads as zeros.
            self.changed.add(self.size..offset);
        }
        self.changed.add(offset..end);
        self.local.add(offset..end);
        self.size = self.size.max(end);
        self.dirty = true;
        self.unclosed = true;
        self.reopened();
        Ok(())
    }

    /// Bytes `offset .. offset + len` (fewer at the end of the file). What is
    /// [`Staged::missing`] there reads as zeros: fill it first.
    pub async fn read_at(&self, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let end = (offset.saturating_add(len)).min(self.size);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        let file = self.file.clone();
        blocking(move || file.read_exact_at(&mut buf, offset).map(|()| buf)).await
    }

    /// Cut or extend (with zeros) to `size`.
    pub async fn truncate(&mut self, size: u64) -> std::io::Result<()> {
        let file = self.file.clone();
        blocking(move || file.set_len(size)).await?;
        if size < self.size {
            self.base_len = self.base_len.min(size);
            // Bytes past the cut are gone: a later growth reads zeros there, never the old
            // bytes, and a streaming upload must wait for them to be written again.
            self.local.cut(size);
        } else {
            self.changed.add(self.size..size);
        }
        self.size = size;
        self.dirty = true;
        self.unclosed = true;
        self.reopened();
        Ok(())
    }

    /// Start empty for a new file or `O_TRUNC` (the staging file is new: nothing to cut).
    pub fn start_empty(&mut self) {
        self.size = 0;
        self.base_len = 0;
        self.dirty = true;
        self.unclosed = true;
    }

    /// Start as the stored version of `size` bytes, none of them staged yet (they are
    /// fetched where needed); not dirty.
    pub fn adopt(&mut self, size: u64) -> std::io::Result<()> {
        self.file.set_len(size)?;
        self.size = size;
        self.base_len = size;
        self.local = Ranges::default();
        self.changed = Ranges::default();
        Ok(())
    }

    /// Where the bytes the file holds without a gap from `offset` on end (for a file written
    /// from empty: where its content is complete, no hole left to fill).
    pub fn written_through(&self, offset: u64) -> u64 {
        self.local.end_of_run(offset)
    }

    /// The parts of `range` that are the stored version's bytes and not in the file yet.
    pub fn missing(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let end = range.end.min(self.base_len).min(self.size);
        if range.start >= end {
            return Vec::new();
        }
        self.local.gaps(range.start..end)
    }

    /// Put fetched bytes of the stored version at `offset` (not a change).
    pub async fn fill(&mut self, offset: u64, data: bytes::Bytes) -> std::io::Result<()> {
        let (file, bytes) = (self.file.clone(), data.clone());
        blocking(move || file.write_all_at(&bytes, offset)).await?;
        self.local.add(offset..offset + data.len() as u64);
        Ok(())
    }

    /// The content now matches the stored version (just uploaded).
    pub fn stored(&mut self) {
        self.dirty = false;
        self.local.add(self.base_len..self.size);
        self.base_len = if self.dropped == 0 { self.size } else { 0 };
        self.changed = Ranges::default();
        self.keep = false;
    }

    /// How to re-upload in parts of `part` bytes: which parts are unchanged bytes of the
    /// stored version (copied on the server) and which are sent. `None` when nothing can be
    /// copied.
    pub fn reuse_plan(&self, part: u64) -> Option<Vec<PartSource>> {
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

    /// Keep the file on disk when dropped (its upload failed; the log names it).
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Record that this content must reach the store (with `meta`) even if the daemon dies,
    /// unless the server no longer holds [`Staged::expect`]. Content only partly staged
    /// records the version the rest comes from. `durable`: fsynced (see `Record::write`).
    pub async fn journal(
        &mut self,
        meta: &PosixMeta,
        state: RecordState,
        durable: bool,
    ) -> std::io::Result<()> {
        let base = match (&self.base_etag, self.missing(0..self.size).is_empty()) {
            (Some(etag), false) => {
                let mut local = self.local.clone();
                local.add(self.base_len..self.size);
                Some((etag.clone(), local))
            }
            _ => None,
        };
        let record = Record {
            key: self.key.clone(),
            meta: meta.clone(),
            base,
            state,
            expect: self.expect.clone(),
            size: self.size,
        };
        let (file, path, text) = (self.file.clone(), self.path.clone(), record.clone());
        blocking(move || {
            if durable {
                // The record promises this data: it must be on disk before the record is.
                file.sync_data()?;
            }
            text.write(&path, durable)
        })
        .await?;
        self.record = Some(record);
        Ok(())
    }

    /// The journaled content reached the store.
    pub fn unjournal(&mut self) {
        if self.record.take().is_some() {
            let _ = std::fs::remove_file(record_path(&self.path));
        }
    }

    /// Whether a journal record names this content now.
    pub fn journaled(&self) -> bool {
        self.record.is_some()
    }

    /// The content changed after it was journaled as closed: what the file holds now is no
    /// longer what a program closed, so the record says `unclosed` from now on (never
    /// uploaded unless asked; its size is no longer checked).
    fn reopened(&mut self) {
        let Some(r) = self
            .record
            .as_mut()
            .filter(|r| r.state == RecordState::Closed)
        else {
            return;
        };
        r.state = RecordState::Unclosed;
        if let Err(e) = r.write(&self.path, false) {
            // Left as closed, the record would upload content nobody closed: remove it.
            tracing::warn!(key = %self.key, error = %e, "cannot mark a journal record unclosed; removing it");
            let _ = std::fs::remove_file(record_path(&self.path));
            self.record = None;
        }
    }

    /// The content must never be uploaded (its name is gone on the server): no record, and
    /// the file goes when dropped.
    pub fn discard(&mut self) {
        self.unjournal();
        self.keep = false;
    }
}

/// Now, as a sortable name part.
fn stamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

/// An object key as one file name: `/` and control characters become `_`, at most 150 bytes.
fn safe_name(key: &str) -> String {
    let mut out: String = key
        .chars()
        .map(|c| if c == '/' || c.is_control() { '_' } else { c })
        .collect();
    if out.len() > 150 {
        let mut cut = 150;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Content not uploaded yet is never removed with its session (a runtime dropped in
        // the middle of an upload): its record, if any, lets the next mount finish it.
        let unsent = self.dirty && !self.unlinked;
        if !self.keep && !unsent {
            let path = std::mem::take(&mut self.path);
            let remove = move || {
                let _ = std::fs::remove_file(record_path(&path));
                let _ = std::fs::remove_file(&path);
            };
            // Removing a large file can take a while: not on an async worker.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn_blocking(remove)),
                Err(_) => remove(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `path` is gone within 5 s (files are removed off the async workers).
    async fn gone(path: &Path) -> bool {
        for _ in 0..500 {
            if !path.exists() {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test]
    async fn writes_reads_truncates_and_cleans_up() {
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
        s.write_at(5, bytes::Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert!(s.dirty);
        assert_eq!(s.size(), 10);
        assert_eq!(s.read_at(0, 100).await.unwrap(), b"\0\0\0\0\0hello");
        assert_eq!(s.read_at(7, 2).await.unwrap(), b"ll");
        assert!(s.read_at(20, 5).await.unwrap().is_empty());
        s.truncate(6).await.unwrap();
        assert_eq!(s.read_at(0, 100).await.unwrap(), b"\0\0\0\0\0h");
        let path = s.path().to_path_buf();
        drop(s);
        assert!(
            path.exists(),
            "content not uploaded is never removed with its session"
        );
        let mut done = area.create("k").unwrap();
        done.write_at(0, bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();
        done.stored();
        let path = done.path().to_path_buf();
        drop(done);
        assert!(gone(&path).await, "removed once stored");
        let mut kept = area.create("k").unwrap();
        kept.keep();
        let path = kept.path().to_path_buf();
        drop(kept);
        assert!(path.exists(), "a failed upload's data stays on disk");

        // Journaled content survives a restart and is offered for upload; the rest goes.
        let mut journaled = area.create("dir/key\nkey=odd").unwrap();
        let meta = PosixMeta {
            mode: Some(0o100640),
            ..Default::default()
        };
        journaled
            .journal(&meta, RecordState::Closed, true)
            .await
            .unwrap();
        let jpath = journaled.path().to_path_buf();
        std::mem::forget(journaled); // as if the daemon died
        let area = StagingArea::open(area.dir()).unwrap();
        assert!(!path.exists(), "unjournaled leftovers are removed");
        assert_eq!(area.lost_found_count(), 0);
        let want = Pending {
            data: jpath.clone(),
            record: Record {
                key: "dir/key\nkey=odd".to_string(),
                meta,
                base: None,
                state: RecordState::Closed,
                expect: Expect::Any,
                size: 0,
            },
        };
        let pending = area.pending();
        assert_eq!(pending, vec![want]);
        let again = area.reopen(&pending[0]).unwrap();
        assert!(again.dirty && again.missing(0..again.size()).is_empty());
        let mut again = again;
        again.stored();
        again.unjournal();
        drop(again);
        assert!(
            gone(&jpath).await && area.pending().is_empty(),
            "done: removed"
        );
    }

    #[tokio::test]
    async fn only_what_is_needed_of_the_stored_version_is_staged() {
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path()).unwrap();
        let mut s = area.create("k").unwrap();
        s.base_etag = Some("e1".into());
        s.adopt(100).unwrap();
        assert!(!s.dirty);
        assert_eq!(s.missing(0..100), vec![0..100], "nothing fetched at open");
        s.write_at(10, bytes::Bytes::from_static(b"abc"))
            .await
            .unwrap();
        s.fill(50, bytes::Bytes::from(vec![7u8; 10])).await.unwrap();
        assert_eq!(s.missing(0..100), vec![0..10, 13..50, 60..100]);
        s.write_at(100, bytes::Bytes::from_static(b"tail"))
            .await
            .unwrap();
        assert_eq!(
            s.missing(90..104),
            vec![90..100],
            "appended bytes are local"
        );
        // Closed while partly staged: the journal names the version the rest comes from.
        s.journal(&PosixMeta::default(), RecordState::Closed, false)
            .await
            .unwrap();
        let p = area.pending().pop().unwrap();
        let (etag, local) = p.record.base.clone().unwrap();
        assert_eq!(etag, "e1");
        assert_eq!(local.gaps(0..104), vec![0..10, 13..50, 60..100]);
        let r = area.reopen(&p).unwrap();
        assert_eq!(r.missing(0..104), vec![0..10, 13..50, 60..100]);
        assert_eq!(r.base_etag.as_deref(), Some("e1"));
        std::mem::forget(r);
        // Uploaded: what the file holds is the new version's; the rest is fetched from it.
        s.stored();
        assert_eq!(s.missing(0..104), vec![0..10, 13..50, 60..100]);
    }

    #[tokio::test]
    async fn a_reupload_copies_only_untouched_parts_of_the_stored_version() {
        use crate::backend::PartSource::{Copy, Send};
        let dir = tempfile::tempdir().unwrap();
        let area = StagingArea::open(dir.path()).unwrap();
        let mut s = area.create("k").unwrap();
        s.adopt(100).unwrap();
        assert_eq!(
            s.reuse_plan(10),
            Some((0..10).map(|i| Copy(i * 10..i * 10 + 10)).collect())
        );
        s.write_at(25, bytes::Bytes::from_static(b"x"))
            .await
            .unwrap();
        s.write_at(59, bytes::Bytes::from_static(b"yz"))
            .await
            .unwrap();
        let plan = s.reuse_plan(10).unwrap();
        assert_eq!(plan[2], Send(20..30));
        assert_eq!(
            (plan[5].clone(), plan[6].clone()),
            (Send(50..60), Send(60..70))
        );
        assert_eq!(plan.iter().filter(|p| matches!(p, Copy(_))).count(), 7);
        // Cut and grown again: the tail is zeros, not the stored bytes.
        s.truncate(75).await.unwrap();
        s.truncate(100).await.unwrap();
        let plan = s.reuse_plan(10).unwrap();
        assert_eq!(plan[7..], [Send(70..80), Send(80..90), Send(90..100)]);
        // Appended past the end (a gap of zeros): sent.
        s.write_at(120, bytes::Bytes::from_static(b"end"))
            .await
            .unwrap();
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
}
