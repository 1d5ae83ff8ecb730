use super::*;
use std::sync::Arc;

const BS: u64 = 4096;

/// Bytes the cache's files really occupy on disk (sparse files count only their blocks).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for sub in fs::read_dir(dir.join("objects")).unwrap().flatten() {
        if let Ok(files) = fs::read_dir(sub.path()) {
            total += files
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.blocks() * 512)
                .sum::<u64>();
        }
    }
    total
}

fn open(root: &Path, source: &str, max: u64) -> DiskBlockCache {
    DiskBlockCache::open(root, source, max, BS).unwrap()
}

#[test]
fn round_trip_is_keyed_by_etag_and_private() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path(), "s3://b", 1 << 20);
    let size = 3 * BS + 10;
    c.put("k", "\"e1\"", size, 3, b"block data");
    assert_eq!(c.get("k", "\"e1\"", 3).as_deref(), Some(&b"block data"[..]));
    assert!(
        c.get("k", "\"e2\"", 3).is_none(),
        "a new ETag never returns old bytes"
    );
    assert!(c.get("k", "\"e1\"", 2).is_none());
    c.put("k", "\"e1\"", size, 2, b"wrong length");
    assert!(
        c.get("k", "\"e1\"", 2).is_none(),
        "a block of the wrong size is refused"
    );
    let data = c.data_path(object_hash("k", "\"e1\""));
    for f in [data.clone(), data.with_extension("meta")] {
        assert_eq!(
            fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        fs::metadata(&data).unwrap().len(),
        size,
        "data file has the object's size"
    );
    assert_eq!(
        fs::metadata(c.dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn corrupt_blocks_are_misses_and_dropped() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path(), "s3://b", 1 << 20);
    c.put("k", "e", 2 * BS, 0, &[5u8; BS as usize]);
    c.put("k", "e", 2 * BS, 1, &[6u8; BS as usize]);
    let data = c.data_path(object_hash("k", "e"));
    let mut bytes = fs::read(&data).unwrap();
    bytes[10] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    assert!(c.get("k", "e", 0).is_none());
    assert_eq!(c.stats.corrupt.load(Ordering::Relaxed), 1);
    assert!(c.get("k", "e", 0).is_none(), "dropped, so now a plain miss");
    assert_eq!(c.stats.corrupt.load(Ordering::Relaxed), 1);
    assert_eq!(c.get("k", "e", 1).as_deref(), Some(&[6u8; BS as usize][..]));
    // A truncated data file: every block beyond the end is a miss, never an error.
    fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert!(c.get("k", "e", 1).is_none());
    c.put("k", "e", 2 * BS, 0, &[5u8; BS as usize]);
    assert_eq!(
        c.get("k", "e", 0).as_deref(),
        Some(&[5u8; BS as usize][..]),
        "refetched block cached again"
    );
}

#[test]
fn limit_holds_under_concurrent_fills() {
    let root = tempfile::tempdir().unwrap();
    let max = 256 << 10;
    let c = Arc::new(open(root.path(), "s3://b", max));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    c.put(
                        &format!("obj{t}"),
                        "e",
                        100 * BS,
                        i,
                        &vec![t as u8 + 1; BS as usize],
                    );
                    assert!(c.used_bytes() <= max, "index over the limit");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(c.used_bytes() <= max);
    // Data blocks on disk plus the small record files (one 4 KiB page each here).
    let records = 8 * BS;
    assert!(
        disk_bytes(c.dir()) <= max + records,
        "files on disk over the limit: {}",
        disk_bytes(c.dir())
    );
    assert!(c.stats.evictions.load(Ordering::Relaxed) > 0);
    // What the index says is there reads back intact.
    let hits = (0..8)
        .flat_map(|t| (0..100).map(move |i| (t, i)))
        .filter(|&(t, i)| {
            c.get(&format!("obj{t}"), "e", i)
                .inspect(|b| assert!(b.iter().all(|&x| x == t as u8 + 1)))
                .is_some()
        })
        .count();
    assert!(hits > 0 && hits as u64 * BS <= max);
}

#[test]
fn survives_restart_and_refuses_a_second_user() {
    let root = tempfile::tempdir().unwrap();
    {
        let c = open(root.path(), "az://c", 1 << 20);
        c.put("k", "e", 2 * BS, 1, &[7u8; BS as usize]);
        let err = DiskBlockCache::open_waiting(
            root.path(),
            "az://c",
            1 << 20,
            BS,
            std::time::Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(
            err.contains("in use by another cloudmount mount") && err.contains("-o cache="),
            "{err}"
        );
        assert!(
            DiskBlockCache::open(root.path(), "az://other", 1 << 20, BS).is_ok(),
            "other sources have their own dir"
        );
    }
    let c = open(root.path(), "az://c", 1 << 20);
    assert!(c.used_bytes() > 0, "index rebuilt from disk");
    assert_eq!(c.get("k", "e", 1).as_deref(), Some(&[7u8; BS as usize][..]));
    drop(c);
    let other_bs = DiskBlockCache::open(root.path(), "az://c", 1 << 20, 2 * BS).unwrap();
    assert!(
        other_bs.get("k", "e", 0).is_none(),
        "another block size never reads old files"
    );
    assert_eq!(other_bs.used_bytes(), 0);
    drop(other_bs);
    let c = open(root.path(), "az://c", 1 << 20);
    c.put("k", "e", 2 * BS, 1, &[7u8; BS as usize]);
    drop(c);
    let small = open(root.path(), "az://c", 10);
    assert_eq!(small.used_bytes(), 0, "a lower limit evicts at open");
}

#[test]
fn whole_files_only_when_complete_and_pinned_while_used() {
    let root = tempfile::tempdir().unwrap();
    let size = 2 * BS + 100;
    let max = 4 * BS;
    let c = Arc::new(open(root.path(), "s3://b", max));
    c.put("k", "e", size, 0, &[1u8; BS as usize]);
    c.put("k", "e", size, 1, &[2u8; BS as usize]);
    assert!(
        c.whole_file("k", "e", size).is_none(),
        "a block is still missing"
    );
    c.put("k", "e", size, 2, &[3u8; 100]);
    let (file, pin) = c.whole_file("k", "e", size).expect("complete");
    assert!(
        c.whole_file("k", "e", size + 1).is_none(),
        "size must match"
    );
    let mut expect = vec![1u8; BS as usize];
    expect.extend(vec![2u8; BS as usize]);
    expect.extend(vec![3u8; 100]);
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut &file, &mut got).unwrap();
    assert_eq!(got, expect, "the data file is the object, byte for byte");
    // Filling the cache cannot evict a pinned file; the new blocks are refused instead.
    for i in 0..4 {
        c.put("other", "e", 4 * BS, i, &[9u8; BS as usize]);
        assert!(c.used_bytes() <= max);
    }
    assert!(c.get("k", "e", 0).is_some(), "pinned blocks stay");
    drop(pin);
    for i in 0..4 {
        c.put("other", "e", 4 * BS, i, &[9u8; BS as usize]);
    }
    assert!(c.used_bytes() <= max);
    assert!(c.get("k", "e", 0).is_none(), "unpinned, it can be evicted");
    assert!(c.whole_file("k", "e", size).is_none(), "no longer complete");
}

#[test]
fn completeness_survives_restart() {
    let root = tempfile::tempdir().unwrap();
    {
        let c = open(root.path(), "s3://b", 1 << 20);
        c.put("k", "e", BS + 1, 0, &[1u8; BS as usize]);
        c.put("k", "e", BS + 1, 1, &[2u8]);
    }
    let c = Arc::new(open(root.path(), "s3://b", 1 << 20));
    assert!(c.whole_file("k", "e", BS + 1).is_some());
    assert_eq!(c.stats.whole_files.load(Ordering::Relaxed), 1);
}

#[test]
fn open_to_others_is_fixed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().join("cache");
    fs::create_dir(&r).unwrap();
    fs::set_permissions(&r, fs::Permissions::from_mode(0o777)).unwrap();
    open(&r, "s3://b", 1 << 20);
    assert_eq!(
        fs::metadata(&r).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn a_failing_disk_costs_caching_not_reads() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path(), "s3://b", 1 << 20);
    // Make the object directory unwritable for the writer: a file where a directory must go.
    let h = object_hash("k", "e");
    let sub = c.data_path(h).parent().unwrap().to_path_buf();
    fs::write(&sub, b"not a directory").unwrap();
    c.put("k", "e", 4, 0, b"data");
    c.put("k", "e", 4, 0, b"data");
    assert_eq!(c.stats.write_errors.load(Ordering::Relaxed), 2);
    assert_eq!(c.used_bytes(), 0, "a failed write is not charged");
    assert!(c.get("k", "e", 0).is_none());
}

#[test]
fn unusable_cache_root_says_how_to_fix_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = DiskBlockCache::open(&file.join("sub"), "s3://b", 1 << 20, BS).unwrap_err();
    assert!(
        err.contains("-o cache=DIR") && err.contains("-o cache=off"),
        "{err}"
    );
}

/// A part of a block is read without the whole block and its CRC only when the block is known
/// good in this run (written by it, or read whole and checked once); a block recorded by an
/// earlier run is checked whole first, so a damaged one is still caught.
#[test]
fn ranges_of_blocks_known_good_in_this_run_skip_the_whole_block_check() {
    let root = tempfile::tempdir().unwrap();
    let size = 3 * BS;
    let block: Vec<u8> = (0..BS).map(|i| i as u8).collect();
    {
        let c = open(root.path(), "s3://r", 1 << 20);
        c.put("k", "e", size, 1, &block);
        assert_eq!(
            c.complete_range("k", "e", BS + 10, 20).as_deref(),
            Some(&block[10..30]),
            "written in this run"
        );
        assert!(
            c.complete_range("k", "e", 10, 20).is_none(),
            "block 0 absent"
        );
    }
    {
        let c = open(root.path(), "s3://r", 1 << 20);
        assert!(
            c.complete_range("k", "e", BS + 10, 20).is_none(),
            "recorded by an earlier run: not trusted unchecked"
        );
        assert_eq!(c.get("k", "e", 1).as_deref(), Some(&block[..]));
        assert_eq!(
            c.complete_range("k", "e", BS + 10, 20).as_deref(),
            Some(&block[10..30]),
            "checked once"
        );
    }
    let data = {
        let c = open(root.path(), "s3://r", 1 << 20);
        c.data_path(object_hash("k", "e"))
    };
    let mut bytes = fs::read(&data).unwrap();
    bytes[(BS + 2000) as usize] ^= 0xff;
    fs::write(&data, &bytes).unwrap();
    let c = open(root.path(), "s3://r", 1 << 20);
    assert!(c.complete_range("k", "e", BS + 10, 20).is_none());
    assert!(c.get("k", "e", 1).is_none(), "the damage is caught");
    assert_eq!(c.stats.corrupt.load(Ordering::Relaxed), 1);
    assert!(c.complete_range("k", "e", BS + 10, 20).is_none(), "dropped");
}
