//! Head append throughput through the embedding API for 10k, 100k and 1M series with 10 labels each, and
//! WAL replay throughput on reopen. Series are created once; each iteration appends one more "scrape" (one
//! sample per series), committing every 1,000 samples, with the WAL written but not fsynced (as Prometheus
//! does on commit).

use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ember::{Db, Options, SeriesRef, SyncPolicy};

fn open(dir: &std::path::Path) -> Db {
    Db::open(
        dir,
        Options {
            wal_sync: SyncPolicy::Never,
            ..Options::default()
        },
    )
    .unwrap()
}

fn create(db: &Db, n: usize, t: i64) -> Vec<SeriesRef> {
    let mut refs = Vec::with_capacity(n);
    let mut app = db.appender();
    for i in 0..n {
        refs.push(
            app.append(&ember_benches::node_like_labels(i), t, i as f64)
                .unwrap(),
        );
        if i % 1000 == 999 {
            app.commit().unwrap();
            app = db.appender();
        }
    }
    app.commit().unwrap();
    refs
}

fn append_scrape(db: &Db, refs: &[SeriesRef], t: i64) {
    for chunk in refs.chunks(1000) {
        let mut app = db.appender();
        for (j, &r) in chunk.iter().enumerate() {
            app.append_ref(r, t, (t / 1000) as f64 + j as f64).unwrap();
        }
        app.commit().unwrap();
    }
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("head_append");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));
    for &n in &[10_000usize, 100_000, 1_000_000] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path());
        let refs = create(&db, n, 0);
        let mut t = 0;
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("one_sample_per_series", n), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    t += 15_000;
                    append_scrape(&db, &refs, t);
                }
                start.elapsed()
            })
        });
        db.close().unwrap();
    }
    g.finish();
}

fn bench_replay(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_replay");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    let (series, scrapes) = (10_000usize, 240usize);
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        let refs = create(&db, series, 0);
        for k in 1..scrapes {
            append_scrape(&db, &refs, k as i64 * 15_000);
        }
        db.close().unwrap();
    }
    g.throughput(Throughput::Elements((series * scrapes) as u64));
    g.bench_function(
        BenchmarkId::new("open", format!("{series}x{scrapes}")),
        |b| {
            b.iter(|| {
                let db = open(dir.path());
                let r = db.replay_stats();
                assert_eq!(
                    r.samples + r.samples_in_mmapped_chunks,
                    (series * scrapes) as u64
                );
                db.close().unwrap();
            })
        },
    );
    g.finish();
}

criterion_group!(benches, bench_append, bench_replay);
criterion_main!(benches);
