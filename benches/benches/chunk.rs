//! XOR chunk encode/decode throughput on 120-sample chunks (two hours at a 60 s interval, or the
//! Prometheus head's typical chunk size), for three realistic series shapes.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ember::chunkenc::{XorAppender, XorIterator};

const SAMPLES: usize = 120;
const SCRAPE_MS: i64 = 15_000;
const START_MS: i64 = 1_700_000_000_000;

/// splitmix64: a small deterministic generator so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `-span..=span`.
    fn jitter(&mut self, span: i64) -> i64 {
        (self.next_u64() % (2 * span as u64 + 1)) as i64 - span
    }
}

/// Scrape timestamps every 15 s with up to ±`jitter_ms` of jitter.
fn timestamps(rng: &mut Rng, jitter_ms: i64) -> Vec<i64> {
    (0..SAMPLES as i64)
        .map(|i| START_MS + i * SCRAPE_MS + rng.jitter(jitter_ms))
        .collect()
}

fn shapes() -> Vec<(&'static str, Vec<(i64, f64)>)> {
    let mut rng = Rng(42);

    // A gauge that never changes (`up`, config values), scraped on time.
    let constant = timestamps(&mut rng, 0)
        .into_iter()
        .map(|t| (t, 1.0))
        .collect();

    // A request counter: a few hundred increments per scrape, a few ms of scrape jitter.
    let mut count = 1_234_567.0;
    let counter = timestamps(&mut rng, 3)
        .into_iter()
        .map(|t| {
            count += (100 + rng.next_u64() % 400) as f64;
            (t, count)
        })
        .collect();

    // A gauge wandering around 50 with two decimals (temperatures, percentages).
    let mut level: i64 = 5_000; // hundredths
    let gauge = timestamps(&mut rng, 3)
        .into_iter()
        .map(|t| {
            level += rng.jitter(75);
            (t, level as f64 / 100.0)
        })
        .collect();

    vec![
        ("constant_gauge", constant),
        ("counter", counter),
        ("random_walk_gauge", gauge),
    ]
}

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut a = XorAppender::new();
    for &(t, v) in samples {
        a.append(t, v);
    }
    a.into_bytes()
}

fn bench_chunk(c: &mut Criterion) {
    let shapes = shapes();

    let mut g = c.benchmark_group("chunk_encode");
    g.throughput(Throughput::Elements(SAMPLES as u64));
    for (name, samples) in &shapes {
        g.bench_with_input(BenchmarkId::from_parameter(name), samples, |b, s| {
            b.iter(|| encode(black_box(s)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("chunk_decode");
    g.throughput(Throughput::Elements(SAMPLES as u64));
    for (name, samples) in &shapes {
        let bytes = encode(samples);
        eprintln!("{name}: {SAMPLES} samples in {} bytes", bytes.len());
        g.bench_with_input(BenchmarkId::from_parameter(name), &bytes, |b, bytes| {
            b.iter(|| {
                let it = XorIterator::new(black_box(bytes)).unwrap();
                let (mut ts, mut vs) = (0i64, 0u64);
                for (t, v) in it {
                    ts = ts.wrapping_add(t);
                    vs ^= v.to_bits();
                }
                (ts, vs)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_chunk);
criterion_main!(benches);
