//! WAL hot paths with scrape-like samples records (1,000 samples each: one
//! timestamp, consecutive series refs, gauge-like values):
//!
//! * `wal_log`: appending records with `SyncPolicy::Never`, reported as bytes/s
//!   (`bytes`) and records/s (`records`), uncompressed and with zstd.
//! * `wal_replay`: reading a WAL back and decoding every samples record,
//!   reported in samples/s. This is head replay on startup; the target is at
//!   least 20 M samples/s on one core.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_wal::record::{RefSample, decode_samples, encode_samples};
use ember_wal::{Compression, Reader, SyncPolicy, Wal, WalOptions};

const SAMPLES_PER_RECORD: usize = 1_000;

/// The `i`th scrape's record: series refs `base..base + 1000`, one timestamp.
fn samples_record(i: u64) -> Vec<u8> {
    let base = (i % 100) * SAMPLES_PER_RECORD as u64;
    let t = 1_700_000_000_000 + i as i64 * 15_000;
    let samples: Vec<RefSample> = (0..SAMPLES_PER_RECORD as u64)
        .map(|k| RefSample {
            r: base + k,
            t,
            v: ((i * 7 + k * 13) % 1000) as f64 * 0.25,
        })
        .collect();
    let mut buf = Vec::new();
    encode_samples(&samples, &mut buf);
    buf
}

fn opts(compression: Compression) -> WalOptions {
    WalOptions {
        compression,
        sync: SyncPolicy::Never,
        ..WalOptions::default()
    }
}

/// Log `iters` records, timing only the `log` calls; old segments are deleted
/// afterwards so long measurements do not fill the disk.
fn log_records(wal: &Wal, recs: &[Vec<u8>], iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        wal.log(&[&recs[i as usize % recs.len()]]).unwrap();
    }
    let elapsed = start.elapsed();
    wal.truncate(wal.current_segment()).unwrap();
    elapsed
}

fn bench_log(c: &mut Criterion) {
    let recs: Vec<Vec<u8>> = (0..64).map(samples_record).collect();
    let rec_len = recs[0].len() as u64;
    for (name, compression) in [("none", Compression::None), ("zstd", Compression::Zstd)] {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), opts(compression)).unwrap();
        let mut g = c.benchmark_group("wal_log");
        g.throughput(Throughput::Bytes(rec_len));
        g.bench_function(format!("bytes/{name}"), |b| {
            b.iter_custom(|iters| log_records(&wal, &recs, iters))
        });
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("records/{name}"), |b| {
            b.iter_custom(|iters| log_records(&wal, &recs, iters))
        });
        g.finish();
        wal.close().unwrap();
    }
}

/// Write `n` samples records; returns the number of samples.
fn fill(dir: &Path, compression: Compression, n: u64) -> u64 {
    let wal = Wal::open(dir, opts(compression)).unwrap();
    for i in 0..n {
        wal.log(&[&samples_record(i)]).unwrap();
    }
    wal.close().unwrap();
    n * SAMPLES_PER_RECORD as u64
}

fn replay(dir: &Path, out: &mut Vec<RefSample>) -> usize {
    let mut reader = Reader::open_dir(dir).unwrap();
    let mut n = 0;
    while let Some(rec) = reader.next_record().unwrap() {
        out.clear();
        decode_samples(rec, out).unwrap();
        n += out.len();
    }
    n
}

fn bench_replay(c: &mut Criterion) {
    const RECORDS: u64 = 2_000; // 2 M samples, ~26 MB uncompressed
    for (name, compression) in [("none", Compression::None), ("zstd", Compression::Zstd)] {
        let dir = tempfile::tempdir().unwrap();
        let total = fill(dir.path(), compression, RECORDS);
        let mut out = Vec::with_capacity(SAMPLES_PER_RECORD);
        let mut g = c.benchmark_group("wal_replay");
        g.throughput(Throughput::Elements(total));
        g.sample_size(10);
        g.bench_function(format!("read_decode_samples/{name}"), |b| {
            b.iter(|| black_box(replay(dir.path(), &mut out)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench_log, bench_replay);
criterion_main!(benches);
