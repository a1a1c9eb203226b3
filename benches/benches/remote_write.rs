//! The remote-write receiver's per-request work after decompression: decoding a 1.0 `WriteRequest` and
//! appending it (`ember_server::remote_write::write`). Requests are shaped as Prometheus senders shape them
//! (and as the side-by-side harness sends them): 2,000 series entries of one sample each, drawn round-robin
//! from 10,000 existing series with 10 labels. The WAL is written but not fsynced, so the figure is the
//! receiver's CPU, not the disk's.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember::{Db, Options, SyncPolicy};
use ember_server::remote_write::proto::{Label, Sample, TimeSeries, WriteRequest};
use ember_server::remote_write::{Protocol, write};
use prost::Message;

const SERIES: usize = 10_000;
const PER_REQUEST: usize = 2_000;

fn request(labels: &[Vec<Label>], first: usize, t: i64) -> Vec<u8> {
    WriteRequest {
        timeseries: (first..first + PER_REQUEST)
            .map(|i| TimeSeries {
                labels: labels[i % labels.len()].clone(),
                samples: vec![Sample {
                    value: i as f64,
                    timestamp: t,
                }],
                ..Default::default()
            })
            .collect(),
        metadata: vec![],
    }
    .encode_to_vec()
}

fn bench_write(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(
        dir.path(),
        Options {
            wal_sync: SyncPolicy::Never,
            ..Options::default()
        },
    )
    .unwrap();
    let labels: Vec<Vec<Label>> = (0..SERIES)
        .map(|i| {
            ember_benches::node_like_labels(i)
                .iter()
                .map(|l| Label {
                    name: l.name.clone().into_bytes(),
                    value: l.value.clone().into_bytes(),
                })
                .collect()
        })
        .collect();
    // Create every series once, so the benchmark measures known series as a steady stream does.
    let mut t = 0;
    for first in (0..SERIES).step_by(PER_REQUEST) {
        write(&db, Protocol::V1, &request(&labels, first, t)).unwrap();
    }
    let mut g = c.benchmark_group("remote_write");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    g.throughput(Throughput::Elements(PER_REQUEST as u64));
    g.bench_function("v1_known_series_2000_samples", |b| {
        b.iter_custom(|iters| {
            let mut took = Duration::ZERO;
            for _ in 0..iters {
                // Each round of SERIES / PER_REQUEST requests gives every series one newer sample.
                t += 15_000;
                for first in (0..SERIES).step_by(PER_REQUEST) {
                    let body = request(&labels, first, t);
                    let start = Instant::now();
                    let out = write(&db, Protocol::V1, &body).unwrap();
                    took += start.elapsed();
                    assert!(!out.has_rejections());
                }
            }
            took / (SERIES / PER_REQUEST) as u32
        })
    });
    g.finish();
}

criterion_group!(benches, bench_write);
criterion_main!(benches);
