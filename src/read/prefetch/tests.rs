use super::*;
use crate::backend::memory::MemoryBackend;
use crate::backend::Backend;
use crate::read::fill::FillConfig;
use crate::read::DiskBlockCache;
use proptest::prelude::*;
use std::sync::atomic::Ordering::Relaxed;

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 31) as u8
        })
        .collect()
}

pub(super) async fn setup(
    len: usize,
    cache: Option<Arc<DiskBlockCache>>,
    bs: u64,
) -> (Arc<MemoryBackend>, Arc<BlockSource>, ObjectRef, Vec<u8>) {
    let b = Arc::new(MemoryBackend::new());
    let d = data(len, 3);
    b.insert("obj", d.clone());
    let info = b.head("obj").await.unwrap();
    let obj = ObjectRef {
        key: "obj".into(),
        etag: info.etag,
        size: len as u64,
    };
    let src = BlockSource::new(b.clone(), cache, bs);
    (b, src, obj, d)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn any_read_sequence_returns_exactly_the_objects_bytes(
        len in 0usize..600_000,
        bs_pow in 12u32..17,
        part_blocks in 1u64..6,
        max_window in 1u64..2_000_000,
        limit in 4096u64..1_000_000,
        reads in prop::collection::vec((any::<bool>(), 0u64..700_000, 1u64..200_000), 1..40),
        cached in any::<bool>(),
    ) {
        rt().block_on(async {
            let bs = 1u64 << bs_pow;
            let dir = tempfile::tempdir().unwrap();
            // With a cache, random runs start background fills that race the reads.
            let cache = cached.then(|| Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, bs).unwrap()));
            let (_b, src, obj, d) = setup(len, cache, bs).await;
            let budget = MemoryBudget::new(limit);
            let fill = FillConfig { parallel: 3, part_size: part_blocks * bs };
            let cfg = PrefetchConfig { initial_window: bs, max_window, part_size: part_blocks * bs, random_align: 4096, max_skip: 3 * bs, back_window: bs, fill_after: 2, fill, fill_min_wait: std::time::Duration::ZERO };
            let p = Prefetcher::new(src, budget.clone(), obj, cfg);
            let mut pos = 0u64;
            let mut max_len = 0;
            for (continue_on, jump, rlen) in reads {
                let off = if continue_on { pos } else { jump };
                max_len = max_len.max(rlen);
                let got = p.read(off, rlen).await.unwrap();
                let from = (off as usize).min(d.len());
                let to = ((off + rlen) as usize).min(d.len());
                prop_assert_eq!(&got[..], &d[from..to], "read {} +{}", off, rlen);
                pos = off + got.len() as u64;
            }
            // Prefetching stays within the budget; only the blocks a read needs may overdraw it.
            let overdraw = (max_len / bs + 2 + 2 * part_blocks) * bs;
            prop_assert!(budget.peak() <= limit + overdraw, "peak {} limit {} overdraw {}", budget.peak(), limit, overdraw);
            drop(p);
            // Parts still fetching hold their memory until their fetch ends.
            for _ in 0..500 {
                if budget.used() == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            prop_assert_eq!(budget.used(), 0, "every reservation is released");
            Ok(())
        })?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_grows_geometrically_and_a_far_seek_resets_it() {
    let (_b, src, obj, d) = setup(40 << 20, None, 1 << 20).await;
    let cfg = PrefetchConfig {
        max_window: 16 << 20,
        part_size: 2 << 20,
        ..PrefetchConfig::default()
    };
    let p = Prefetcher::new(src.clone(), MemoryBudget::new(1 << 30), obj, cfg);
    let mut windows = vec![];
    for i in 0..6u64 {
        p.read(i * (128 << 10), 128 << 10).await.unwrap();
        windows.push(p.window().await >> 20);
    }
    assert_eq!(windows, [1, 2, 4, 8, 16, 16], "MiB: doubles to the maximum");
    // From the second read on, the window is at least a part (one round trip of ramp). The
    // budget does not cap it: bytes asked for take memory only as they arrive.
    let q = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(4 << 20),
        p.object().clone(),
        PrefetchConfig {
            max_window: 32 << 20,
            part_size: 8 << 20,
            ..PrefetchConfig::default()
        },
    );
    let mut windows = vec![];
    for i in 0..5u64 {
        q.read(i * (128 << 10), 128 << 10).await.unwrap();
        windows.push(q.window().await >> 20);
    }
    assert_eq!(
        windows,
        [1, 8, 16, 32, 32],
        "MiB: up to the maximum, past a budget of 4 MiB"
    );
    let got = p.read(30 << 20, 4096).await.unwrap();
    assert_eq!(&got[..], &d[30 << 20..(30 << 20) + 4096]);
    assert_eq!(
        p.window().await,
        0,
        "a far seek is a random read and resets the stream"
    );
    p.read((30 << 20) + 4096, 4096).await.unwrap();
    assert_eq!(
        p.window().await,
        1 << 20,
        "sequential again: restarts at the initial window"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_reads_fetch_only_what_is_asked() {
    let (_b, src, obj, _d) = setup(8 << 20, None, 1 << 20).await;
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(64 << 20),
        obj,
        PrefetchConfig::default(),
    );
    for off in [5_000_000u64, 1_000_000, 7_000_000, 3_000_000] {
        p.read(off, 4096).await.unwrap();
    }
    assert_eq!(src.stats.gets.load(Relaxed), 4);
    assert!(
        src.stats.bytes_fetched.load(Relaxed) <= 4 * (128 << 10),
        "aligned 64 KiB reads, not blocks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handles_share_in_flight_gets() {
    let (b, src, obj, d) = setup(4 << 20, None, 1 << 20).await;
    b.slow_down_gets("obj", std::time::Duration::from_millis(200));
    let budget = MemoryBudget::new(64 << 20);
    let p1 = Prefetcher::new(
        src.clone(),
        budget.clone(),
        obj.clone(),
        PrefetchConfig::default(),
    );
    let p2 = Prefetcher::new(
        src.clone(),
        budget.clone(),
        obj.clone(),
        PrefetchConfig::default(),
    );
    let (a, c) = tokio::join!(p1.read(0, 1 << 20), p2.read(0, 1 << 20));
    assert_eq!(&a.unwrap()[..], &d[..1 << 20]);
    assert_eq!(&c.unwrap()[..], &d[..1 << 20]);
    assert_eq!(
        src.stats.gets.load(Relaxed),
        1,
        "the second handle joined the first GET"
    );
    assert!(src.stats.shared.load(Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_budget_holds_prefetching_back_but_reads_stay_correct() {
    let (_b, src, obj, d) = setup(20 << 20, None, 1 << 20).await;
    let budget = MemoryBudget::new(2 << 20);
    let p = Prefetcher::new(src, budget.clone(), obj, PrefetchConfig::default());
    let mut out = Vec::new();
    let mut off = 0;
    while off < d.len() as u64 {
        let got = p.read(off, 1 << 20).await.unwrap();
        off += got.len() as u64;
        out.extend_from_slice(&got);
    }
    assert_eq!(out, d);
    assert!(
        budget.peak() <= (2 << 20) + (9 << 20),
        "peak {}",
        budget.peak()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_blocks_need_no_get_after_a_restart_and_new_etags_miss() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, obj, d) = setup(5 << 20, None, 1 << 20).await;
    {
        let cache =
            Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
        let src = BlockSource::new(b.clone(), Some(cache), 1 << 20);
        let p = Prefetcher::new(
            src.clone(),
            MemoryBudget::new(64 << 20),
            obj.clone(),
            PrefetchConfig::default(),
        );
        let got = p.read(0, 5 << 20).await.unwrap();
        assert_eq!(&got[..], &d[..]);
        // Cache writes run on blocking threads; wait (bounded) until all five blocks are there.
        let cache = src.cache().unwrap().clone();
        for _ in 0..200 {
            if cache.stats.writes.load(Relaxed) >= 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(cache.stats.writes.load(Relaxed), 5);
    }
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let src = BlockSource::new(b.clone(), Some(cache.clone()), 1 << 20);
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(64 << 20),
        obj.clone(),
        PrefetchConfig::default(),
    );
    assert_eq!(&p.read(0, 5 << 20).await.unwrap()[..], &d[..]);
    assert_eq!(
        src.stats.gets.load(Relaxed),
        0,
        "every block came from the reopened cache"
    );

    let new = data(5 << 20, 9);
    b.insert("obj", new.clone());
    let etag = b.head("obj").await.unwrap().etag;
    let obj2 = ObjectRef { etag, ..obj };
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(64 << 20),
        obj2,
        PrefetchConfig::default(),
    );
    assert_eq!(
        &p.read(0, 5 << 20).await.unwrap()[..],
        &new[..],
        "a new ETag reads new bytes"
    );
    assert!(src.stats.gets.load(Relaxed) > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_read_across_a_block_boundary_comes_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let (_b, src, obj, d) = setup(3 << 20, Some(cache.clone()), 1 << 20).await;
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(64 << 20),
        obj.clone(),
        PrefetchConfig::default(),
    );
    assert_eq!(&p.read(0, 3 << 20).await.unwrap()[..], &d[..]);
    for _ in 0..200 {
        if cache.stats.writes.load(Relaxed) >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let gets = src.stats.gets.load(Relaxed);
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(64 << 20),
        obj,
        PrefetchConfig::default(),
    );
    let at = (1 << 20) - 100;
    let got = p.read(at, 4096).await.unwrap();
    assert_eq!(&got[..], &d[at as usize..at as usize + 4096]);
    // Across three blocks too.
    let got = p.read(100, (2 << 20) + 100).await.unwrap();
    assert_eq!(&got[..], &d[100..(2 << 20) + 200]);
    assert_eq!(
        src.stats.gets.load(Relaxed),
        gets,
        "both blocks were cached: no request (offline, it would fail)"
    );
}

/// Waits (bounded) until every block of `obj` is in the cache behind `src`.
async fn wait_cached(src: &BlockSource, obj: &ObjectRef) -> bool {
    let n = src.block_count(obj);
    for _ in 0..500 {
        if src.has_blocks(obj, 0, n) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    false
}

fn spots(n: usize, size: u64) -> Vec<u64> {
    // Never offset 0: a fresh handle's read there is the start of a stream, not a random read.
    (1..=n as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) % (size / 4096 - 1) + 1) * 4096)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_readers_fill_the_object_into_the_cache_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let (b, src, obj, d) = setup(24 << 20, Some(cache.clone()), 1 << 20).await;
    b.slow_down_gets("obj", std::time::Duration::from_millis(20));
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(24 << 20),
        obj.clone(),
        PrefetchConfig::default(),
    );
    let offsets = spots(200, 24 << 20);
    for &off in &offsets[..4] {
        let got = p.read(off, 4096).await.unwrap();
        assert_eq!(&got[..], &d[off as usize..off as usize + 4096]);
    }
    assert!(
        wait_cached(&src, &obj).await,
        "the fill brought every block into the cache"
    );
    let gets = src.stats.gets.load(Relaxed);
    assert!(
        gets <= 4 + 6,
        "four random reads and six 4 MiB parts: {gets} GETs"
    );
    for &off in &offsets[4..] {
        let got = p.read(off, 4096).await.unwrap();
        assert_eq!(&got[..], &d[off as usize..off as usize + 4096]);
    }
    assert_eq!(
        src.stats.gets.load(Relaxed),
        gets,
        "later random reads come from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_random_reads_or_an_object_too_big_for_the_cache_start_no_fill() {
    let dir = tempfile::tempdir().unwrap();
    // 10 MiB is more than half of a 16 MiB cache.
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 16 << 20, 1 << 20).unwrap());
    let (_b, src, obj, _d) = setup(10 << 20, Some(cache), 1 << 20).await;
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(24 << 20),
        obj.clone(),
        PrefetchConfig::default(),
    );
    // Backward jumps: every read is random.
    for i in 1..=12u64 {
        p.read((10 << 20) - i * (800 << 10), 4096).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(
        src.stats.gets.load(Relaxed),
        12,
        "one small GET per read, no fill"
    );

    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let (_b, src, obj, _d) = setup(10 << 20, Some(cache), 1 << 20).await;
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(24 << 20),
        obj,
        PrefetchConfig::default(),
    );
    // A header, then a seek to an index, then sequential: three random reads, no fill.
    for off in [100u64 << 10, 9 << 20, 5 << 20] {
        p.read(off, 4096).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        src.stats.bytes_fetched.load(Relaxed) <= 3 * (64 << 10),
        "no fill after three random reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_last_handle_stops_its_fill() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let (b, src, obj, _d) = setup(128 << 20, Some(cache), 1 << 20).await;
    b.slow_down_gets("obj", std::time::Duration::from_millis(300));
    let budget = MemoryBudget::new(24 << 20);
    // Two GETs at a time: the fill takes seconds, the test stops it long before.
    let cfg = PrefetchConfig {
        fill: FillConfig {
            parallel: 2,
            part_size: 4 << 20,
        },
        ..PrefetchConfig::default()
    };
    let p = Prefetcher::new(src.clone(), budget.clone(), obj.clone(), cfg.clone());
    let q = Prefetcher::new(src.clone(), budget.clone(), obj.clone(), cfg);
    // q reads elsewhere than p (half an object away): the pieces p's reads left would answer
    // q's at once, and q would not be a reader waiting for the store.
    for off in spots(4, 64 << 20) {
        p.read(off, 4096).await.unwrap();
        q.read(off + (64 << 20), 4096).await.unwrap();
    }
    drop(p);
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let with_q = src.stats.gets.load(Relaxed);
    drop(q);
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    let settled = src.stats.gets.load(Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(
        src.stats.gets.load(Relaxed),
        settled,
        "no GET after the last handle closed"
    );
    assert!(
        with_q > 8 + 4,
        "the fill went on while a handle was open: {with_q} GETs"
    );
    assert!(!src.has_blocks(&obj, 0, 128), "stopped before the end");
    for _ in 0..200 {
        if budget.used() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(budget.used(), 0, "the fill's memory is released");
}

/// A cache that cannot write (disk full, broken directory) stops a fill at its first block:
/// fetching the whole object for nothing would only cost the store's bandwidth. Reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_that_cannot_write_stops_the_fill() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let (b, src, obj, d) = setup(32 << 20, Some(cache.clone()), 1 << 20).await;
    // A file where the object's directory must go: every write of this object fails.
    let h = crate::read::block_cache::object_hash("obj", obj.etag.as_deref().unwrap());
    std::fs::write(cache.data_path(h).parent().unwrap(), b"not a directory").unwrap();
    b.slow_down_gets("obj", std::time::Duration::from_millis(5));
    let cfg = PrefetchConfig {
        fill: FillConfig {
            parallel: 1,
            part_size: 4 << 20,
        },
        ..PrefetchConfig::default()
    };
    let p = Prefetcher::new(src.clone(), MemoryBudget::new(24 << 20), obj.clone(), cfg);
    for off in spots(8, 32 << 20) {
        let got = p.read(off, 4096).await.unwrap();
        assert_eq!(&got[..], &d[off as usize..off as usize + 4096]);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let fetched = src.stats.bytes_fetched.load(Relaxed);
    assert!(
        fetched < 8 << 20,
        "the fill stopped at the first block it could not keep: {fetched} bytes fetched"
    );
    assert!(cache.stats.write_errors.load(Relaxed) >= 1);
}

/// Item 4 of issue 16: the 64 KiB pieces random reads fetch are kept in the disk cache, so a
/// later read there (another handle, or the next mount with the cache reopened) needs no GET,
/// and its bytes are exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_reads_leave_pieces_that_later_reads_find() {
    let dir = tempfile::tempdir().unwrap();
    let offsets = [100u64 << 10, 9 << 20, (5 << 20) - 10];
    let open =
        || Arc::new(DiskBlockCache::open(dir.path(), "memory://", 1 << 30, 1 << 20).unwrap());
    let (b, src, obj, d) = setup(10 << 20, Some(open()), 1 << 20).await;
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(24 << 20),
        obj.clone(),
        PrefetchConfig::default(),
    );
    for off in offsets {
        p.read(off, 4096).await.unwrap();
    }
    assert_eq!(src.stats.gets.load(Relaxed), 3);
    assert!(
        src.drain_cache_writes(std::time::Duration::from_secs(5))
            .await
    );
    // Another handle reads inside the same pieces, never where it read before.
    let p2 = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(24 << 20),
        obj.clone(),
        PrefetchConfig::default(),
    );
    for off in offsets {
        let got = p2.read(off + 8192, 100).await.unwrap();
        assert_eq!(&got[..], &d[off as usize + 8192..off as usize + 8192 + 100]);
    }
    // The third read spanned two pieces; both were kept.
    let got = p2.read((5 << 20) - 10, 4096).await.unwrap();
    assert_eq!(&got[..], &d[(5 << 20) - 10..(5 << 20) + 4086]);
    assert_eq!(
        src.stats.gets.load(Relaxed),
        3,
        "later reads came from the pieces"
    );
    drop((p, p2, src));
    // The next mount: the cache reopened from disk.
    let src = BlockSource::new(b.clone(), Some(open()), 1 << 20);
    let p = Prefetcher::new(
        src.clone(),
        MemoryBudget::new(24 << 20),
        obj,
        PrefetchConfig::default(),
    );
    for off in offsets {
        let got = p.read(off, 4096).await.unwrap();
        assert_eq!(&got[..], &d[off as usize..off as usize + 4096]);
    }
    assert_eq!(
        src.stats.gets.load(Relaxed),
        0,
        "pieces found after a restart"
    );
}
