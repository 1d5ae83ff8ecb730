//! Streamed parts: memory taken as blocks arrive, late reads, whole parts.

use super::tests::setup;
use super::*;
use std::sync::atomic::Ordering::Relaxed;

/// Case 12 of issue 11: a part dropped while still fetching (a far seek, a closed file) kept
/// running after its memory left the budget, so `max_memory` could be exceeded. Blocks now take
/// their memory as they arrive, so a GET still running after its part is gone counts what it
/// brings until that is dropped, and pauses when the budget is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_dropped_while_fetching_stay_in_the_budget() {
    let (b, src, obj, d) = setup(32 << 20, None, 1 << 20).await;
    b.trickle_bodies(256 << 10, std::time::Duration::from_millis(2));
    let budget = MemoryBudget::new(4 << 20);
    let p = Prefetcher::new(src.clone(), budget.clone(), obj, PrefetchConfig::default());
    // Sequential reads grow the window past the part being read: parts ahead are fetching.
    for i in 0..6u64 {
        let got = p.read(i << 20, 1 << 20).await.unwrap();
        assert_eq!(&got[..], &d[(i << 20) as usize..((i + 1) << 20) as usize]);
    }
    drop(p);
    let mut settled = false;
    for _ in 0..500 {
        if budget.used() == 0 && src.stats.gets.load(Relaxed) > 0 {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(settled, "memory given back: {}", budget.used());
    // A read's own blocks may overdraw (2 here: a read may span two); nothing else does.
    assert!(
        budget.peak() <= (4 << 20) + (2 << 20),
        "peak {}",
        budget.peak()
    );
}

/// The kernel's read-ahead arrives on several threads: a read can come after the ones behind
/// it. It was taken for a seek, which dropped the stream and fetched it all again (a 1 GiB read
/// went from 1 to 5-7 resets and 250 blocks read twice once the stream kept less behind it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_read_leaves_the_stream_alone() {
    let (_b, src, obj, d) = setup(32 << 20, None, 1 << 20).await;
    let cfg = PrefetchConfig {
        back_window: 0,
        ..PrefetchConfig::default()
    };
    let p = Prefetcher::new(src.clone(), MemoryBudget::new(24 << 20), obj, cfg);
    for i in 0..3u64 {
        p.read(i << 20, 1 << 20).await.unwrap();
    }
    let window = p.window().await;
    // Two blocks behind where the stream is, and no longer held by it.
    let got = p.read(1 << 20, 1 << 20).await.unwrap();
    assert_eq!(&got[..], &d[1 << 20..2 << 20]);
    assert_eq!(src.stats.window_resets.load(Relaxed), 0, "no reset");
    assert_eq!(p.window().await, window, "the stream goes on");
    let got = p.read(3 << 20, 1 << 20).await.unwrap();
    assert_eq!(&got[..], &d[3 << 20..4 << 20]);
    assert!(
        p.window().await > window,
        "and keeps growing from where it was"
    );
}

/// A stream asks for whole parts as its window moves on, not a block per read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_asks_in_whole_parts() {
    let (_b, src, obj, d) = setup(32 << 20, None, 1 << 20).await;
    let cfg = PrefetchConfig {
        part_size: 4 << 20,
        ..PrefetchConfig::default()
    };
    let p = Prefetcher::new(src.clone(), MemoryBudget::new(24 << 20), obj, cfg);
    for i in 0..32u64 {
        let got = p.read(i << 20, 1 << 20).await.unwrap();
        assert_eq!(&got[..], &d[(i << 20) as usize..((i + 1) << 20) as usize]);
    }
    // The first read (1 block), then 4 MiB parts: 1 + 31 / 4 rounded up.
    let gets = src.stats.gets.load(Relaxed);
    assert!(gets <= 9, "{gets} GETs for 32 MiB in 4 MiB parts");
}

/// A spent budget pauses GETs but does not stop a stream from asking ahead: asking costs no
/// memory, and a GET asked for early has its first bytes ready when the reader gets there (with
/// new parts held back, a 1 GiB cold read at 20 ms per request needed a 24 MiB budget for 85 %
/// of its speed at 0 ms; it now does with 10 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_does_not_stop_a_stream_asking_ahead() {
    let (b, src, obj, d) = setup(40 << 20, None, 1 << 20).await;
    b.trickle_bodies(256 << 10, std::time::Duration::from_millis(2));
    let budget = MemoryBudget::new(2 << 20);
    let p = Prefetcher::new(
        src.clone(),
        budget.clone(),
        obj.clone(),
        PrefetchConfig::default(),
    );
    for i in 0..4u64 {
        let got = p.read(i << 20, 1 << 20).await.unwrap();
        assert_eq!(&got[..], &d[(i << 20) as usize..((i + 1) << 20) as usize]);
    }
    // The window (16 MiB after 4 reads) is asked for, far past what 2 MiB can hold.
    assert!(src.in_flight(&obj, 15), "block 15 asked for");
    assert!(src.stats.gets.load(Relaxed) >= 3, "parts 0, 1 and 2 asked");
    assert!(
        budget.peak() <= (2 << 20) + (2 << 20),
        "memory still within the budget and a read's own blocks: {}",
        budget.peak()
    );
}
