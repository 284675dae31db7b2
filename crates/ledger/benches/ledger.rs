//! Ledger benchmarks (SPEC §6): durable append in batches of 1,000 records
//! of 300 bytes on FileStore, inclusion and consistency proofs in a large
//! log, and full verification.
//!
//! `MAMORI_BENCH_LOG_SIZE` sets the size of the large log (default
//! 200,000; the SPEC's figure is 10,000,000). `MAMORI_BENCH_DIR` keeps the
//! large log in that directory and reuses it between runs.

use std::path::PathBuf;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mamori_ledger::{FileStore, Log};

const BATCH: usize = 1000;
const ENTRY: usize = 300;

fn entry(i: u64) -> Vec<u8> {
    let mut e = vec![(i % 251) as u8; ENTRY];
    e[..8].copy_from_slice(&i.to_le_bytes());
    e
}

fn batch(start: u64) -> Vec<Vec<u8>> {
    (start..start + BATCH as u64).map(entry).collect()
}

struct Dir {
    path: PathBuf,
    remove: bool,
}

impl Drop for Dir {
    fn drop(&mut self) {
        if self.remove {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn temp_dir(tag: &str) -> Dir {
    let n: u64 = rand::random();
    let path = std::env::temp_dir().join(format!("mamori-bench-{tag}-{n:016x}"));
    Dir { path, remove: true }
}

fn log_size() -> u64 {
    std::env::var("MAMORI_BENCH_LOG_SIZE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000)
}

/// Opens (or builds) the large log.
fn large_log() -> (Log<FileStore>, Dir) {
    let n = log_size();
    let dir = match std::env::var("MAMORI_BENCH_DIR") {
        Ok(p) => Dir {
            path: PathBuf::from(p),
            remove: false,
        },
        Err(_) => temp_dir("large"),
    };
    let mut log = Log::open(FileStore::open(&dir.path).expect("open store")).expect("open log");
    if log.size() < n {
        let t = Instant::now();
        let from = log.size();
        while log.size() < n {
            let b = batch(log.size());
            let take = (n - log.size()).min(BATCH as u64) as usize;
            log.append(&b[..take]).expect("append");
        }
        let secs = t.elapsed().as_secs_f64();
        eprintln!(
            "built log of {n} records in {secs:.1} s ({:.0} records/s durable)",
            (n - from) as f64 / secs
        );
    }
    (log, dir)
}

fn append(c: &mut Criterion) {
    let dir = temp_dir("append");
    let mut log = Log::open(FileStore::open(&dir.path).expect("open store")).expect("open log");
    let b = batch(0);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("file_store_durable_1000x300B", |bench| {
        bench.iter(|| log.append(&b).expect("append"))
    });
    g.finish();
}

fn proofs_and_verify(c: &mut Criterion) {
    let (log, _dir) = large_log();
    let n = log.size();
    let mut g = c.benchmark_group(format!("log_{n}"));
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    g.bench_function("inclusion_proof", |bench| {
        bench.iter_batched(
            || next() % n,
            |i| log.inclusion_proof(i, n).expect("proof"),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("consistency_proof", |bench| {
        bench.iter_batched(
            || 1 + next() % (n - 1),
            |m| log.consistency_proof(m, n).expect("proof"),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("verify_all", |bench| {
        bench.iter(|| {
            let r = log.verify_all(None);
            assert!(r.is_intact());
        })
    });
    g.finish();
}

criterion_group!(benches, append, proofs_and_verify);
criterion_main!(benches);
