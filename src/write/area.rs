//! The staging directory: where staging files live, what an earlier run left there (its
//! journal, replayed at mount), and `lost+found` beside it for content that is kept but must
//! not be uploaded (see `docs/write-path.md`).

use super::journal::{record_path, Record, RecordState};
use super::Staged;
use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The directory staging files live in.
#[derive(Debug)]
pub struct StagingArea {
    dir: PathBuf,
    /// Where content that must not be uploaded but must not be lost either goes.
    lost_found: PathBuf,
    seq: AtomicU64,
    /// The private temporary directory this area made (with `mkdtemp`) and removes with
    /// itself; `None` for a cache directory's area.
    temporary: Option<PathBuf>,
}

/// Temporary staging areas made by this process so far.
static TEMPORARY_AREAS: AtomicU64 = AtomicU64::new(0);

impl Drop for StagingArea {
    fn drop(&mut self) {
        if let Some(root) = &self.temporary {
            let _ = std::fs::remove_dir_all(root);
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
            temporary: None,
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
        // Its staging/ and lost+found/ both live inside, and go with it.
        let mut area = Self::open(&dir.join("staging"))?;
        area.temporary = Some(dir);
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
                let parsed = Record::parse(&text).and_then(|r| check(r, &data, size));
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
        Ok(Staged::resumed(
            &p.record,
            Arc::new(file),
            p.data.clone(),
            size,
        ))
    }
}

/// `r` if its data file (`size` bytes) still holds what the record names: as many bytes and,
/// for content the kernel wrote, the same change time (else it was written after its close).
fn check(r: Record, data: &Path, size: u64) -> Result<Record, String> {
    if r.state == RecordState::Unclosed {
        return Ok(r);
    }
    if r.size != size {
        return Err(format!(
            "it names {} bytes, its data file has {size}",
            r.size
        ));
    }
    let Some(want) = &r.data_ctime else {
        return Ok(r);
    };
    match std::fs::File::open(data).and_then(|f| super::kernel::ctime_of(&f)) {
        Ok(now) if now == *want => Ok(r),
        Ok(now) => Err(format!(
            "its data file was written after it was closed (changed at {now}, closed at {want})"
        )),
        Err(e) => Err(format!("cannot read its data file's change time: {e}")),
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
