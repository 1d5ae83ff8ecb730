//! Pieces (partial blocks) in a real cache directory: kept, served, superseded, evicted,
//! dropped when corrupt, and found again after a restart.

use super::pieces::PIECE;
use super::*;

/// Blocks of four pieces.
const BS: u64 = 4 * PIECE;

fn open(root: &Path, max: u64) -> DiskBlockCache {
    DiskBlockCache::open(root, "s3://p", max, BS).unwrap()
}

/// Deterministic bytes of an object of `n` bytes.
fn object(n: u64) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 4093) as u8).collect()
}

fn allocated(p: &Path) -> u64 {
    std::os::unix::fs::MetadataExt::blocks(&fs::metadata(p).unwrap()) * 512
}

#[test]
fn pieces_are_kept_served_and_survive_restart() {
    let root = tempfile::tempdir().unwrap();
    let size = 3 * BS + 100;
    let obj = object(size);
    let (a, z) = (5 * PIECE, 7 * PIECE);
    {
        let c = open(root.path(), 1 << 30);
        c.put_range("k", "e", size, a, &obj[a as usize..z as usize]);
        let off = a + 100;
        assert_eq!(
            c.pieces_range("k", "e", off, 4096).as_deref(),
            Some(&obj[off as usize..off as usize + 4096]),
        );
        let across = 6 * PIECE - 10;
        assert_eq!(
            c.pieces_range("k", "e", across, 20).as_deref(),
            Some(&obj[across as usize..across as usize + 20]),
            "a read across two pieces"
        );
        assert!(!c.has_pieces("k", "e", 7 * PIECE, 7 * PIECE + 1));
        assert!(c.pieces_range("k", "e", z - 1, 2).is_none(), "half outside");
        assert!(c.pieces_range("k", "e2", a, 1).is_none(), "another version");
        assert!(c.get("k", "e", 1).is_none(), "no whole block");
        assert_eq!(c.used_bytes(), 2 * (PIECE + 8));
        let h = object_hash("k", "e");
        assert_eq!(
            fs::metadata(c.pieces_path(h)).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            allocated(&c.data_path(h)) <= 2 * PIECE + 8192,
            "only the pieces take disk space"
        );
    }
    let c = open(root.path(), 1 << 30);
    assert_eq!(c.used_bytes(), 2 * (PIECE + 8), "pieces indexed at open");
    assert_eq!(
        c.pieces_range("k", "e", a, 2 * PIECE).as_deref(),
        Some(&obj[a as usize..z as usize])
    );
}

#[test]
fn a_range_keeps_whole_blocks_as_blocks_and_the_last_short_piece() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path(), 1 << 30);
    let size = 2 * BS + PIECE + 100;
    let obj = object(size);
    // Pieces 3..8: the end of block 0, then all of block 1.
    let a = 3 * PIECE;
    c.put_range("k", "e", size, a, &obj[a as usize..2 * BS as usize]);
    assert_eq!(
        c.get("k", "e", 1).as_deref(),
        Some(&obj[BS as usize..2 * BS as usize])
    );
    assert!(
        !c.has_pieces("k", "e", BS, BS + 1),
        "block 1 is a block, not pieces"
    );
    assert!(c.has_pieces("k", "e", a, BS));
    // The object's short tail (piece 9, 100 bytes) alone.
    let t = 2 * BS + PIECE;
    c.put_range("k", "e", size, t, &obj[t as usize..]);
    assert!(c.get("k", "e", 2).is_none(), "block 2 is not whole");
    assert_eq!(
        c.pieces_range("k", "e", size - 50, 50).as_deref(),
        Some(&obj[size as usize - 50..])
    );
    assert_eq!(c.used_bytes(), (BS + 8) + (PIECE + 8) + (100 + 8));
    // A range covering the short last block whole stores it as a block.
    c.put_range("k", "e", size, 2 * BS, &obj[2 * BS as usize..]);
    assert_eq!(c.get("k", "e", 2).as_deref(), Some(&obj[2 * BS as usize..]));
    assert!(!c.has_pieces("k", "e", t, t + 1), "superseded by the block");
}

#[test]
fn a_whole_block_supersedes_its_pieces() {
    let root = tempfile::tempdir().unwrap();
    let size = 2 * BS;
    let obj = object(size);
    {
        let c = open(root.path(), 1 << 30);
        c.put_range(
            "k",
            "e",
            size,
            4 * PIECE,
            &obj[4 * PIECE as usize..6 * PIECE as usize],
        );
        c.put_range("k", "e", size, 0, &obj[..PIECE as usize]);
        assert_eq!(c.used_bytes(), 3 * (PIECE + 8));
        c.put("k", "e", size, 1, &obj[BS as usize..]);
        assert_eq!(
            c.used_bytes(),
            (BS + 8) + (PIECE + 8),
            "the block's pieces are no longer charged"
        );
        assert!(!c.has_pieces("k", "e", 4 * PIECE, 4 * PIECE + 1));
        assert_eq!(c.get("k", "e", 1).as_deref(), Some(&obj[BS as usize..]));
        // A piece fetched later inside the present block is not recorded again.
        c.put_range(
            "k",
            "e",
            size,
            5 * PIECE,
            &obj[5 * PIECE as usize..6 * PIECE as usize],
        );
        assert_eq!(c.used_bytes(), (BS + 8) + (PIECE + 8));
    }
    let c = open(root.path(), 1 << 30);
    assert_eq!(
        c.used_bytes(),
        (BS + 8) + (PIECE + 8),
        "the superseded records were cleared on disk"
    );
    assert!(c.has_pieces("k", "e", 0, PIECE));
}

#[test]
fn corrupt_pieces_are_misses_and_dropped() {
    let root = tempfile::tempdir().unwrap();
    let c = open(root.path(), 1 << 30);
    let size = BS;
    let obj = object(size);
    c.put_range(
        "k",
        "e",
        size,
        PIECE,
        &obj[PIECE as usize..3 * PIECE as usize],
    );
    let data = c.data_path(object_hash("k", "e"));
    let f = fs::OpenOptions::new().write(true).open(&data).unwrap();
    f.write_all_at(&[0xAA; 3], PIECE + 10).unwrap();
    assert!(c.pieces_range("k", "e", PIECE, 4096).is_none());
    assert_eq!(c.stats.corrupt.load(Ordering::Relaxed), 1);
    assert!(!c.has_pieces("k", "e", PIECE, PIECE + 1), "dropped");
    assert_eq!(c.used_bytes(), PIECE + 8, "its charge returned");
    assert_eq!(
        c.pieces_range("k", "e", 2 * PIECE, 10).as_deref(),
        Some(&obj[2 * PIECE as usize..2 * PIECE as usize + 10]),
        "the intact neighbour is still served"
    );
}

#[test]
fn pieces_are_evicted_within_the_limit_and_empty_versions_removed() {
    let root = tempfile::tempdir().unwrap();
    let max = 3 * (PIECE + 8);
    let c = open(root.path(), max);
    let size = 4 * BS;
    let obj = object(size);
    for p in [0u64, 5, 10] {
        let r = (p * PIECE) as usize..((p + 1) * PIECE) as usize;
        c.put_range("a", "e", size, p * PIECE, &obj[r]);
    }
    assert_eq!(c.used_bytes(), max);
    let ha = object_hash("a", "e");
    for p in [0u64, 5, 10] {
        let r = (p * PIECE) as usize..((p + 1) * PIECE) as usize;
        c.put_range("b", "e", size, p * PIECE, &obj[r]);
        assert!(c.used_bytes() <= max);
    }
    assert!(!c.has_pieces("a", "e", 0, 1) && !c.has_pieces("a", "e", 10 * PIECE, 10 * PIECE + 1));
    assert!(c.has_pieces("b", "e", 0, 1) && c.has_pieces("b", "e", 10 * PIECE, 10 * PIECE + 1));
    assert_eq!(c.stats.evictions.load(Ordering::Relaxed), 3);
    for f in [c.data_path(ha), c.meta_path(ha), c.pieces_path(ha)] {
        assert!(
            !f.exists(),
            "{} of the evicted version removed",
            f.display()
        );
    }
    let hb = c.data_path(object_hash("b", "e"));
    assert!(allocated(&hb) <= 3 * PIECE + 8192, "{}", allocated(&hb));
}
