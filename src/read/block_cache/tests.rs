use super::*;
use std::sync::Arc;

fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for sub in fs::read_dir(dir.join("blocks")).unwrap().flatten() {
        if let Ok(files) = fs::read_dir(sub.path()) {
            total += files
                .flatten()
                .filter_map(|f| f.metadata().ok())
                .map(|m| m.len())
                .sum::<u64>();
        }
    }
    total
}

#[test]
fn round_trip_is_keyed_by_etag_and_private() {
    let root = tempfile::tempdir().unwrap();
    let c = DiskBlockCache::open(root.path(), "s3://b", 1 << 20).unwrap();
    c.put("k", "\"e1\"", 3, b"block data");
    assert_eq!(c.get("k", "\"e1\"", 3).as_deref(), Some(&b"block data"[..]));
    assert!(
        c.get("k", "\"e2\"", 3).is_none(),
        "a new ETag never returns old bytes"
    );
    assert!(c.get("k", "\"e1\"", 4).is_none());
    let file = c.path_of(block_hash("k", "\"e1\"", 3));
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        fs::metadata(c.dir()).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn corrupt_blocks_are_misses_and_removed() {
    let root = tempfile::tempdir().unwrap();
    let c = DiskBlockCache::open(root.path(), "s3://b", 1 << 20).unwrap();
    c.put("k", "e", 0, &[5u8; 4096]);
    let file = c.path_of(block_hash("k", "e", 0));
    let mut bytes = fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&file, &bytes).unwrap();
    assert!(c.get("k", "e", 0).is_none());
    assert!(!file.exists(), "the corrupt file is deleted");
    assert_eq!(c.stats.corrupt.load(Ordering::Relaxed), 1);
    fs::write(&file, b"short").unwrap();
    assert!(
        c.get("k", "e", 0).is_none(),
        "a truncated file is a miss too"
    );
}

#[test]
fn limit_holds_under_concurrent_fills() {
    let root = tempfile::tempdir().unwrap();
    let max = 256 << 10;
    let c = Arc::new(DiskBlockCache::open(root.path(), "s3://b", max).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..100u64 {
                    c.put(&format!("obj{t}"), "e", i, &vec![t as u8; 10 << 10]);
                    assert!(c.used_bytes() <= max, "index over the limit");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(c.used_bytes() <= max);
    assert!(
        disk_bytes(c.dir()) <= max,
        "files on disk over the limit: {}",
        disk_bytes(c.dir())
    );
    assert!(c.stats.evictions.load(Ordering::Relaxed) > 0);
}

#[test]
fn survives_restart_and_refuses_a_second_user() {
    let root = tempfile::tempdir().unwrap();
    {
        let c = DiskBlockCache::open(root.path(), "az://c", 1 << 20).unwrap();
        c.put("k", "e", 1, b"persisted");
        let err = DiskBlockCache::open_waiting(
            root.path(),
            "az://c",
            1 << 20,
            std::time::Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(
            err.contains("in use by another cloudmount mount") && err.contains("-o cache="),
            "{err}"
        );
        assert!(
            DiskBlockCache::open(root.path(), "az://other", 1 << 20).is_ok(),
            "other sources have their own dir"
        );
    }
    let c = DiskBlockCache::open(root.path(), "az://c", 1 << 20).unwrap();
    assert!(c.used_bytes() > 0, "index rebuilt from disk");
    assert_eq!(c.get("k", "e", 1).as_deref(), Some(&b"persisted"[..]));
    drop(c);
    let small = DiskBlockCache::open(root.path(), "az://c", 10).unwrap();
    assert_eq!(small.used_bytes(), 0, "a lower limit evicts at open");
}

#[test]
fn open_to_others_is_fixed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path().join("cache");
    fs::create_dir(&r).unwrap();
    fs::set_permissions(&r, fs::Permissions::from_mode(0o777)).unwrap();
    DiskBlockCache::open(&r, "s3://b", 1 << 20).unwrap();
    assert_eq!(
        fs::metadata(&r).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[test]
fn a_failing_disk_costs_caching_not_reads() {
    let root = tempfile::tempdir().unwrap();
    let c = DiskBlockCache::open(root.path(), "s3://b", 1 << 20).unwrap();
    // Make the block directory unwritable for the writer: a file where a directory must go.
    let h = block_hash("k", "e", 0);
    let sub = c.path_of(h).parent().unwrap().to_path_buf();
    fs::write(&sub, b"not a directory").unwrap();
    c.put("k", "e", 0, b"data");
    c.put("k", "e", 0, b"data");
    assert_eq!(c.stats.write_errors.load(Ordering::Relaxed), 2);
    assert_eq!(c.used_bytes(), 0, "a failed write is not charged");
    assert!(c.get("k", "e", 0).is_none());
}

#[test]
fn unusable_cache_root_says_how_to_fix_it() {
    let root = tempfile::tempdir().unwrap();
    let file = root.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = DiskBlockCache::open(&file.join("sub"), "s3://b", 1 << 20).unwrap_err();
    assert!(
        err.contains("-o cache=DIR") && err.contains("-o cache=off"),
        "{err}"
    );
}

#[test]
fn encode_decode_checks_every_field() {
    let b = encode_block("key", "etag", 7, b"data");
    assert_eq!(decode_block(&b, "key", "etag", 7), Some(&b"data"[..]));
    assert_eq!(decode_block(&b, "key", "etag", 8), None);
    assert_eq!(decode_block(&b, "kez", "etag", 7), None);
    assert_eq!(decode_block(&b[..b.len() - 1], "key", "etag", 7), None);
    assert_eq!(decode_block(b"", "key", "etag", 7), None);
}
