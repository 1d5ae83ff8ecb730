//! Journal records: `<staging file>.key`, written next to a staging file while its content
//! waits for the store, so the next mount can finish the upload.
//!
//! A record is written to a temporary name and renamed over the record (a daemon killed in
//! the middle leaves the old record or none, never half of one); records the promise of a
//! failed close depends on are also fsynced, with their directory. It ends with a CRC-32 of
//! everything before it, and names the size of its data file: a record that does not parse,
//! does not match its checksum or its data is never guessed at but quarantined.
//!
//! Format, one `name=value` per line after the header line `cloudmount-journal 2`: `state=`
//! (`closed`, or `unclosed` for content no program closed, kept at a stop and never uploaded
//! unless `-o upload_unclosed` asks), `expect=` (the version on the server the content
//! replaces: `absent`, `etag:<ETag>`, or `any`), `size=` (bytes of the data file), the POSIX
//! attributes to store (`mode`, `uid`, `gid`, `mtime`, `ctime`), for content the kernel wrote
//! (FUSE passthrough, see `kernel.rs`) `data_ctime=` (the data file's change time when the
//! content was closed: a file written after its close has another), then, for content only partly
//! staged, `base=` (the ETag of the stored version the rest is copied from) and `local=` (the
//! byte ranges the file holds), and `key=` with the object key (which may hold any character,
//! newlines included), and last a line `#crc32=XXXXXXXX`.

use super::Ranges;
use crate::backend::PosixMeta;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The first line of a record.
const HEADER: &str = "cloudmount-journal 2";
/// What precedes the checksum at the end of a record.
const CRC_MARK: &str = "\n#crc32=";

/// Whether a program closed the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordState {
    /// Closed (flushed or fsynced): the next mount uploads it.
    #[default]
    Closed,
    /// Still open for writing when the daemon stopped: kept, never uploaded by default.
    Unclosed,
}

/// The version on the server that journaled content replaces; replay uploads only while the
/// server still holds it, so it never overwrites something newer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// No object of that name.
    Absent,
    /// The object with this entity tag.
    Etag(String),
    /// Whatever is there (nothing known about the server).
    #[default]
    Any,
}

impl Expect {
    fn to_text(&self) -> String {
        match self {
            Expect::Absent => "absent".into(),
            Expect::Etag(e) => format!("etag:{}", e.replace('\n', "")),
            Expect::Any => "any".into(),
        }
    }

    fn parse(text: &str) -> Option<Expect> {
        match text {
            "absent" => Some(Expect::Absent),
            "any" => Some(Expect::Any),
            _ => text.strip_prefix("etag:").map(|e| Expect::Etag(e.into())),
        }
    }
}

/// What a journal record says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// The object the content belongs to.
    pub key: String,
    /// The POSIX attributes to store with it.
    pub meta: PosixMeta,
    /// For content only partly staged: the stored version's ETag and the ranges held locally
    /// (the rest is that version's bytes).
    pub base: Option<(String, Ranges)>,
    /// Whether a program closed the content.
    pub state: RecordState,
    /// What the server must hold for the content to replace it.
    pub expect: Expect,
    /// Bytes of the data file.
    pub size: u64,
    /// For content the kernel wrote: the data file's change time (`seconds.nanoseconds`) when
    /// the record was written; a data file with another was written after it.
    pub data_ctime: Option<String>,
}

impl Record {
    /// The record's text.
    pub fn to_text(&self) -> String {
        let mut text = format!("{HEADER}\n");
        let state = match self.state {
            RecordState::Closed => "closed",
            RecordState::Unclosed => "unclosed",
        };
        text.push_str(&format!("state={state}\n"));
        text.push_str(&format!("expect={}\n", self.expect.to_text()));
        text.push_str(&format!("size={}\n", self.size));
        if let Some(t) = &self.data_ctime {
            text.push_str(&format!("data_ctime={}\n", t.replace('\n', "")));
        }
        for (name, value) in self.meta.to_pairs() {
            text.push_str(&format!("{name}={value}\n"));
        }
        if let Some((etag, local)) = &self.base {
            // An ETag has no newline; the format keeps it on one line regardless.
            text.push_str(&format!("base={}\n", etag.replace('\n', "")));
            text.push_str(&format!("local={}\n", local.to_text()));
        }
        text.push_str("key=");
        text.push_str(&self.key);
        let crc = crc32fast::hash(text.as_bytes());
        text.push_str(&format!("{CRC_MARK}{crc:08x}\n"));
        text
    }

    /// Read a record's text; `Err` says what is wrong with it.
    pub fn parse(text: &str) -> Result<Record, String> {
        let body = text
            .strip_suffix('\n')
            .and_then(|t| t.rsplit_once(CRC_MARK))
            .ok_or("no checksum line (torn or written by an older version)")?;
        let (body, crc) = body;
        let want = u32::from_str_radix(crc, 16).map_err(|_| "unreadable checksum")?;
        if crc32fast::hash(body.as_bytes()) != want {
            return Err("checksum mismatch".into());
        }
        let mut rest = body
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or("no header line")?;
        let mut r = Record::default();
        let (mut pairs, mut etag, mut local) = (Vec::new(), None, None);
        let (mut state, mut expect, mut size) = (None, None, None);
        for _ in 0..16 {
            if let Some(key) = rest.strip_prefix("key=") {
                r.key = key.to_string();
                r.state = state.ok_or("no state= line")?;
                r.expect = expect.ok_or("no expect= line")?;
                r.size = size.ok_or("no size= line")?;
                r.meta = PosixMeta::from_pairs(pairs);
                r.base = match (etag, local) {
                    (Some(e), Some(l)) => Some((e, l)),
                    (None, None) => None,
                    _ => return Err("base= without local= or the reverse".into()),
                };
                if r.key.is_empty() {
                    return Err("empty key".into());
                }
                return Ok(r);
            }
            let (line, next) = rest.split_once('\n').ok_or("no key= line")?;
            match line.split_once('=') {
                Some(("state", "closed")) => state = Some(RecordState::Closed),
                Some(("state", "unclosed")) => state = Some(RecordState::Unclosed),
                Some(("expect", v)) => expect = Some(Expect::parse(v).ok_or("bad expect=")?),
                Some(("size", v)) => size = Some(v.parse::<u64>().map_err(|_| "bad size=")?),
                Some(("data_ctime", v)) => r.data_ctime = Some(v.to_string()),
                Some(("base", v)) => etag = Some(v.to_string()),
                Some(("local", v)) => local = Some(Ranges::parse(v).ok_or("bad local=")?),
                Some(pair) => pairs.push(pair),
                None => return Err(format!("unreadable line {line:?}")),
            }
            rest = next;
        }
        Err("too many lines before key=".into())
    }

    /// Write the record of data file `data`: to a temporary file renamed over the record, so
    /// no reader ever sees half of one. `durable` also fsyncs it and its directory (for
    /// records that outlive a failed close or a stop).
    pub fn write(&self, data: &Path, durable: bool) -> std::io::Result<()> {
        let path = record_path(data);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        f.write_all(self.to_text().as_bytes())?;
        if durable {
            f.sync_all()?;
        }
        drop(f);
        std::fs::rename(&tmp, &path)?;
        if durable {
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
        }
        Ok(())
    }
}

/// The record of staging file `data`.
pub fn record_path(data: &Path) -> PathBuf {
    let mut p = data.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Record {
        Record {
            key: "dir/odd\nkey=name\n#crc32=00000000".into(),
            meta: PosixMeta {
                mode: Some(0o100640),
                uid: Some(7),
                gid: None,
                rdev: None,
                mtime: Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000)),
                ctime: Some(std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_001, 5)),
                xattrs: None,
            },
            base: Some(("\"abc-3\"".into(), Ranges::from_range(5..10))),
            state: RecordState::Unclosed,
            expect: Expect::Etag("\"e1\"".into()),
            size: 42,
            data_ctime: Some("1600000002.000000007".into()),
        }
    }

    #[test]
    fn records_round_trip() {
        let r = sample();
        assert_eq!(Record::parse(&r.to_text()), Ok(r));
        let plain = Record {
            key: "k".into(),
            expect: Expect::Absent,
            ..Record::default()
        };
        assert_eq!(Record::parse(&plain.to_text()), Ok(plain));
    }

    /// A torn, empty, altered or old-format record is refused, never read as a key.
    #[test]
    fn damaged_records_are_refused() {
        let text = sample().to_text();
        for cut in [0, 1, 10, text.len() / 2, text.len() - 2, text.len() - 1] {
            assert!(Record::parse(&text[..cut]).is_err(), "torn at {cut}");
        }
        let altered = text.replacen("size=42", "size=43", 1);
        assert_eq!(
            Record::parse(&altered),
            Err("checksum mismatch".to_string())
        );
        assert!(Record::parse("plain/key").is_err(), "the first format");
        assert!(Record::parse("mode=33188\nkey=k").is_err());
    }

    #[test]
    fn records_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("d");
        let r = sample();
        r.write(&data, true).unwrap();
        let again = Record {
            size: 7,
            ..sample()
        };
        again.write(&data, false).unwrap();
        let text = std::fs::read_to_string(record_path(&data)).unwrap();
        assert_eq!(Record::parse(&text), Ok(again));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: journal records. Damaged text never parses into a record with another
        /// key or size than was written (the CRC catches it), and never panics.
        #[test]
        fn fuzz_journal_records(text in crate::fuzz::text(&[
            "cloudmount-journal 2\nstate=closed\nexpect=absent\nsize=3\nkey=a/b\n#crc32=00000000\n",
            SAMPLE_TEXT,
        ])) {
            if let Ok(r) = Record::parse(&text) {
                proptest::prop_assert_eq!(Record::parse(&r.to_text()), Ok(r));
            }
        }

        /// Any key and size survive the record format.
        #[test]
        fn fuzz_journal_keys_round_trip(
            key in crate::fuzz::text(&["a/b", "odd\nkey=x\n#crc32=0"]),
            size in proptest::prelude::any::<u64>(),
        ) {
            // The writer never journals an empty key (the mount's root is no file).
            proptest::prop_assume!(!key.is_empty());
            let r = Record { key, size, ..sample() };
            proptest::prop_assert_eq!(Record::parse(&r.to_text()), Ok(r));
        }
    }

    /// A valid record's text, for the fuzz target to damage.
    const SAMPLE_TEXT: &str = "cloudmount-journal 2\nstate=unclosed\nexpect=etag:\"e1\"\nsize=10\nmode=33188\nbase=\"e1\"\nlocal=0-4\nkey=dir/odd\n#crc32=12345678\n";
}
