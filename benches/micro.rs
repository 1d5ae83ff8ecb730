//! Criterion micro-benchmarks of the hot pure code: cache block records (CRC-32) and their
//! metadata file, the file-name hash, the prefetcher's per-read overhead over an in-memory
//! object, and what recording one operation in the metrics costs (`-o metrics=`, `stats`).
//! Run with `cargo bench --bench micro`.

use cloudmount::backend::memory::MemoryBackend;
use cloudmount::read::block_cache::meta::{Entry, Meta};
use cloudmount::read::block_cache::{object_hash, source_id};
use cloudmount::read::{BlockSource, MemoryBudget, ObjectRef, PrefetchConfig, Prefetcher};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;

fn blocks(c: &mut Criterion) {
    let data = vec![7u8; 1 << 20];
    let entry = Entry::of(&data);
    let mut g = c.benchmark_group("block");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("record_1MiB", |b| b.iter(|| Entry::of(black_box(&data))));
    g.bench_function("verify_1MiB", |b| {
        b.iter(|| entry.verifies(black_box(&data)))
    });
    g.finish();
    let mut meta = Meta::new(
        "images/train/img000123.jpg",
        "\"0a1b2c3d\"",
        1 << 30,
        1 << 20,
    );
    meta.entries.fill(entry);
    let encoded = meta.encode();
    c.bench_function("meta_decode_1GiB_object", |b| {
        b.iter(|| Meta::decode(black_box(&encoded)).map(|m| m.entries.len()))
    });
    c.bench_function("object_hash", |b| {
        b.iter(|| object_hash(black_box("images/train/img000123.jpg"), "\"0a1b2c3d\""))
    });
    c.bench_function("source_id", |b| {
        b.iter(|| source_id(black_box("s3://bucket/prefix|http://127.0.0.1:9000")))
    });
}

fn prefetch(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    let size = 64u64 << 20;
    let backend = Arc::new(MemoryBackend::new());
    backend.insert("obj", vec![1u8; size as usize]);
    let src = BlockSource::new(backend, None, 1 << 20);
    let mut g = c.benchmark_group("prefetcher");
    g.throughput(Throughput::Bytes(size));
    g.bench_function("sequential_128KiB_reads_of_64MiB", |b| {
        b.iter(|| {
            rt.block_on(async {
                let obj = ObjectRef {
                    key: "obj".into(),
                    etag: None,
                    size,
                };
                let p = Prefetcher::new(
                    src.clone(),
                    MemoryBudget::new(32 << 20),
                    obj,
                    PrefetchConfig::default(),
                );
                let mut off = 0;
                while off < size {
                    let got = p.read(off, 128 << 10).await.map(|b| b.len()).unwrap_or(0);
                    if got == 0 {
                        break;
                    }
                    off += got as u64;
                }
                off
            })
        })
    });
    g.finish();
}

/// The metrics' cost per recorded operation (every store request and FUSE operation pays
/// it), and per scrape of a snapshot with the usual tables filled.
fn metrics(c: &mut Criterion) {
    use cloudmount::metrics::{prometheus, Metrics, Snapshot};
    let m = Metrics::new();
    let took = std::time::Duration::from_micros(180);
    c.bench_function("metrics_record_op", |b| {
        b.iter(|| m.fuse.record(black_box("read"), "", black_box(took)))
    });
    for op in [
        "get_range",
        "head",
        "list",
        "put",
        "put_part",
        "complete_upload",
        "delete",
    ] {
        m.backend.record(op, "ok", took);
        m.backend.record(op, "not_found", took);
    }
    for op in [
        "lookup", "getattr", "open", "read", "write", "flush", "readdir",
    ] {
        m.fuse.record(op, "", took);
    }
    m.errno(2);
    c.bench_function("metrics_scrape_encode", |b| {
        b.iter(|| {
            let s = Snapshot {
                mountpoint: "/srv/data".into(),
                backend: m.backend.snapshot(),
                fuse: m.fuse.snapshot(),
                errors_by_errno: m.errnos(),
                ..Default::default()
            };
            prometheus::encode(&s).map(|t| t.len())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = blocks, prefetch, metrics
}
criterion_main!(benches);
