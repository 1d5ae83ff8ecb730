//! Streamed runs: blocks handed out as they arrive, GETs paused by a spent budget, and runs
//! nobody holds ended.

use super::*;
use crate::backend::memory::MemoryBackend;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const MIB: u64 = 1 << 20;

async fn setup(blocks: u64) -> (Arc<MemoryBackend>, Arc<BlockSource>, ObjectRef, Vec<u8>) {
    let b = Arc::new(MemoryBackend::new());
    let d: Vec<u8> = (0..blocks * MIB).map(|i| (i * 7 % 251) as u8).collect();
    b.insert("obj", d.clone());
    let info = b.head("obj").await.unwrap();
    let obj = ObjectRef {
        key: "obj".into(),
        etag: info.etag,
        size: d.len() as u64,
    };
    // Bodies arrive 256 KiB at a time, 5 ms apart.
    b.trickle_bodies(256 << 10, Duration::from_millis(5));
    (b.clone(), BlockSource::new(b, None, MIB), obj, d)
}

/// Polls `cond` every 10 ms for at most 3 s.
async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..300 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_pauses_a_get_and_a_waiting_reader_still_gets_its_block() {
    let (_b, src, obj, d) = setup(8).await;
    let budget = MemoryBudget::new(2 * MIB);
    let mut slots = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    assert_eq!(slots.len(), 8);
    assert_eq!(&slots[0].get().await.unwrap().data[..], &d[..MIB as usize]);
    // Blocks 0 and 1 fill the budget; nobody waits for block 2, so the GET stops reading.
    assert!(eventually(|| budget.used() == 2 * MIB).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let fetched = src.stats.bytes_fetched.load(Relaxed);
    assert!(
        fetched <= 2 * MIB + (256 << 10),
        "paused at the budget: {fetched} bytes read"
    );
    assert_eq!(budget.used(), 2 * MIB, "nothing beyond the budget");
    // A reader waiting for block 7 takes what it needs even with the budget spent.
    let last = slots[7].get().await.unwrap().data.clone();
    assert_eq!(&last[..], &d[7 * MIB as usize..]);
    assert_eq!(src.stats.gets.load(Relaxed), 1);
    drop(last);
    drop(slots);
    assert!(
        eventually(|| budget.used() == 0).await,
        "all memory back: {}",
        budget.used()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_arrives_before_the_rest_of_its_run() {
    let (_b, src, obj, d) = setup(8).await;
    let budget = MemoryBudget::new(64 * MIB);
    let mut slots = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    let first = slots[0].get().await.unwrap().data.clone();
    // 8 MiB take 32 pieces 5 ms apart: the first block is out after 4.
    let fetched = src.stats.bytes_fetched.load(Relaxed);
    assert!(
        fetched < 8 * MIB,
        "handed out at {fetched} bytes, not at the end"
    );
    assert_eq!(&first[..], &d[..MIB as usize]);
    for (i, slot) in slots.iter_mut().enumerate() {
        let got = slot.get().await.unwrap().data.clone();
        assert_eq!(&got[..], &d[i * MIB as usize..(i + 1) * MIB as usize]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_nobody_holds_ends_when_it_would_wait_for_memory() {
    let (_b, src, obj, d) = setup(8).await;
    let budget = MemoryBudget::new(2 * MIB);
    let hog = budget.reserve(2 * MIB);
    let slots = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    drop(slots);
    assert!(
        eventually(|| !src.in_flight(&obj, 7)).await,
        "the run left the in-flight map"
    );
    assert!(
        src.stats.bytes_fetched.load(Relaxed) < MIB,
        "it stopped reading"
    );
    drop(hog);
    // A later reader starts its own GET and gets the right bytes.
    let mut again = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    let got = again[3].get().await.unwrap().data.clone();
    assert_eq!(&got[..], &d[3 * MIB as usize..4 * MIB as usize]);
    assert_eq!(src.stats.gets.load(Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_holder_left_waits_instead_of_ending() {
    let (_b, src, obj, d) = setup(4).await;
    let budget = MemoryBudget::new(2 * MIB);
    let hog = budget.reserve(2 * MIB);
    let mut slots = src.blocks(&obj, 0, 4, &budget).await.unwrap();
    let mut kept = slots.pop().unwrap();
    drop(slots);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(src.in_flight(&obj, 3), "still in flight, paused");
    let got = kept.get().await.unwrap().data.clone();
    assert_eq!(&got[..], &d[3 * MIB as usize..]);
    assert_eq!(src.stats.gets.load(Relaxed), 1);
    drop(hog);
}

/// Reads every block of `slots` in turn, letting each go before the next, as a reader does.
async fn read_through(slots: Vec<BlockSlot>, d: &[u8]) -> Result<(), BackendError> {
    for (i, mut slot) in slots.into_iter().enumerate() {
        let got = slot.get().await?.data.clone();
        let at = i * MIB as usize;
        assert_eq!(&got[..], &d[at..(at + got.len())], "block {i}");
    }
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_get_paused_longer_than_the_request_timeout_still_delivers() {
    let (b, src, obj, d) = setup(8).await;
    // Every body fails when read 30 s after its request, as a 30 s request timeout does.
    b.time_out_bodies(Duration::from_secs(30));
    let budget = MemoryBudget::new(2 * MIB);
    let mut slots = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    let first = slots[0].get().await.unwrap().data.clone();
    // The reader stops for a minute (a paused player) with the budget spent ahead of it.
    tokio::time::sleep(Duration::from_secs(60)).await;
    drop(first);
    read_through(slots, &d).await.unwrap();
    assert_eq!(
        src.stats.gets.load(Relaxed),
        2,
        "the paused GET let go of its connection and the rest came in a second one"
    );
    assert!(eventually(|| budget.used() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_breaks_off_is_asked_for_again_from_the_block_it_was_in() {
    let (b, src, obj, d) = setup(8).await;
    b.break_bodies(3 * MIB as usize + 1000, 1);
    let budget = MemoryBudget::new(64 * MIB);
    let slots = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    read_through(slots, &d).await.unwrap();
    assert_eq!(src.stats.gets.load(Relaxed), 2);
    assert_eq!(
        src.stats.bytes_fetched.load(Relaxed),
        8 * MIB + 1000,
        "only the block begun is fetched twice, and only what had come of it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_keeps_breaking_fails_its_waiters_after_a_bounded_number_of_tries() {
    let (b, src, obj, d) = setup(8).await;
    b.break_bodies(MIB as usize / 2, 100);
    let budget = MemoryBudget::new(64 * MIB);
    let slots = src.blocks(&obj, 0, 8, &budget).await.unwrap();
    let e = read_through(slots, &d).await.unwrap_err();
    assert!(e.to_string().contains("connection reset"), "{e}");
    assert_eq!(src.stats.gets.load(Relaxed), 1 + super::run::RESUMES as u64);
    assert!(!src.in_flight(&obj, 7), "its blocks left the in-flight map");
    assert!(eventually(|| budget.used() == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_fails_before_any_byte_is_not_asked_for_again() {
    // The client already tried such a request again (within `retries`): another round of
    // tries would multiply the time a reader waits on a server that does not answer.
    let (b, src, obj, d) = setup(4).await;
    b.break_bodies(0, 100);
    let budget = MemoryBudget::new(64 * MIB);
    let slots = src.blocks(&obj, 0, 4, &budget).await.unwrap();
    let e = read_through(slots, &d).await.unwrap_err();
    assert!(e.to_string().contains("connection reset"), "{e}");
    assert_eq!(src.stats.gets.load(Relaxed), 1);
}
