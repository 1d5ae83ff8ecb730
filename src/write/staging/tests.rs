use super::*;
use crate::write::journal::{Expect, Record, RecordState};
use crate::write::{Pending, StagingArea};
use std::os::unix::fs::PermissionsExt;

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
    kept.write_at(0, bytes::Bytes::from_static(b"not uploaded"))
        .await
        .unwrap();
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
            data_ctime: None,
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

#[test]
fn a_temporary_area_is_private_and_goes_whole() {
    let area = StagingArea::temporary().unwrap();
    let root = area.dir().parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "made by mkdtemp");
    assert_eq!(area.lost_found().parent(), Some(root.as_path()));
    drop(area);
    assert!(
        !root.exists(),
        "the directory it made goes with it, lost+found included"
    );
}

#[tokio::test]
async fn ranges_match_checks_every_range_across_read_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let area = StagingArea::open(&dir.path().join("staging")).unwrap();
    let mut s = area.create("k").unwrap();
    // 3 MiB + 5 bytes: ranges span the 1 MiB read pieces.
    let data: Vec<u8> = (0..(3 << 20) + 5).map(|i: u32| (i % 253) as u8).collect();
    s.write_at(0, bytes::Bytes::from(data.clone()))
        .await
        .unwrap();
    let sum = |r: std::ops::Range<usize>| (r.start as u64..r.end as u64, crc32fast::hash(&data[r]));
    let good = vec![sum(0..(2 << 20) + 7), sum((2 << 20) + 7..data.len())];
    assert!(s.ranges_match(good.clone()).await);
    assert!(s.ranges_match(Vec::new()).await, "nothing to check");
    let mut bad = good.clone();
    bad[1].1 ^= 1;
    assert!(!s.ranges_match(bad).await, "a changed CRC");
    let past_end = vec![(0..data.len() as u64 + 1, crc32fast::hash(&data))];
    assert!(
        !s.ranges_match(past_end).await,
        "a range the file no longer has"
    );
    // One byte changed late in the first range.
    s.write_at(2 << 20, bytes::Bytes::from_static(b"X"))
        .await
        .unwrap();
    assert!(!s.ranges_match(good).await, "a byte rewritten");
}
