//! Core listing throughput without FUSE or network: how fast a 100,000-entry directory is turned
//! into entries by the paged stream (the part of `ls` that is ours), over the in-memory backend.
//! Run with `cargo bench --bench listing`.

use cloudmount::backend::memory::MemoryBackend;
use cloudmount::fs::listing::{DirStream, ListRules};
use std::time::{Instant, SystemTime};

fn main() {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    let b = MemoryBackend::new();
    let n = 100_000;
    for i in 0..n {
        b.insert(&format!("dir/img{i:06}.jpg"), "x");
    }
    for round in 0..3 {
        let start = Instant::now();
        let count = rt.block_on(async {
            let rules = ListRules {
                suffix: ".file".into(),
                page_size: 1000,
                probe_max: None,
                name_max: 255,
            };
            let mut s = DirStream::new("dir/", &rules, SystemTime::UNIX_EPOCH);
            let mut c = 0usize;
            while let Ok(Some(_)) = s.next(&b).await {
                c += 1;
            }
            c
        });
        let secs = start.elapsed().as_secs_f64();
        println!(
            "round {round}: {count} entries in {:.1} ms ({:.0} entries/s)",
            secs * 1e3,
            count as f64 / secs
        );
    }
}
