//! PromQL evaluation hot paths on a head shaped like the side-by-side benchmark's data (16
//! instances, 6 h at 15 s): 256 CPU counters (`cpu` × `mode`) and 1,792 histogram buckets
//! (`handler` × `code` × `le`), counters with an occasional reset. Measures the queries the
//! benchmark found slowest against VictoriaMetrics: a range `sum by (mode) (rate(…[5m]))`, a range
//! `histogram_quantile` over rated buckets, an instant `resets(…[6h])` and raw decoding of every
//! selected series.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use ember::{Db, Labels, Matcher, Options};
use ember_query::engine::{Engine, QueryOpts};

const START: i64 = 1_700_000_000_000 / 7_200_000 * 7_200_000;
const STEPS: i64 = 1_440;
const END: i64 = START + STEPS * 15_000;
const INSTANCES: usize = 16;

fn series() -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for i in 0..INSTANCES {
        let instance = format!("host-{i:04}:9100");
        for cpu in 0..2 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                let l = Labels::from_pairs([
                    ("__name__", "node_cpu_seconds_total"),
                    ("cpu", &cpu.to_string()),
                    ("instance", &instance),
                    ("job", "node"),
                    ("mode", mode),
                ])
                .unwrap();
                out.push((l, 0.1 + mode.len() as f64 / 7.0));
            }
        }
        for handler in ["/a", "/b", "/c", "/d"] {
            for code in ["200", "500"] {
                for (k, le) in [
                    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                    "+Inf",
                ]
                .iter()
                .enumerate()
                {
                    let l = Labels::from_pairs([
                        ("__name__", "http_request_duration_seconds_bucket"),
                        ("code", code),
                        ("handler", handler),
                        ("instance", &instance),
                        ("job", "api"),
                        ("le", le),
                    ])
                    .unwrap();
                    out.push((l, 1.0 + k as f64));
                }
            }
        }
    }
    out
}

fn build() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        wal_sync: ember::SyncPolicy::Never,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let all = series();
    for step in 0..STEPS {
        let mut app = db.appender();
        for (n, (l, rate)) in all.iter().enumerate() {
            // Every 300th series restarts half-way, as an instance restart would.
            let since = if n % 300 == 7 && step >= STEPS / 2 {
                step - STEPS / 2
            } else {
                step
            };
            let v = (since as f64 * rate * 15.0).round() / 100.0;
            app.append(l, START + step * 15_000 + (n as i64 % 3), v)
                .unwrap();
        }
        app.commit().unwrap();
    }
    (dir, db)
}

fn query_eval(c: &mut Criterion) {
    let (_dir, db) = build();
    let engine = Engine::new(QueryOpts::default());
    let mut g = c.benchmark_group("query_eval");
    g.sample_size(20);
    g.bench_function("sum_rate_cpu_by_mode_6h_60s", |b| {
        b.iter(|| {
            let q = "sum by (mode) (rate(node_cpu_seconds_total[5m]))";
            black_box(engine.range(&db, q, END - 21_600_000, END, 60_000).unwrap())
        })
    });
    g.bench_function("histogram_quantile_rate_6h_60s", |b| {
        b.iter(|| {
            let q = "histogram_quantile(0.99, sum by (le, handler) \
                     (rate(http_request_duration_seconds_bucket[5m])))";
            black_box(engine.range(&db, q, END - 21_600_000, END, 60_000).unwrap())
        })
    });
    g.bench_function("sum_resets_cpu_6h_instant", |b| {
        b.iter(|| {
            let q = "sum by (instance) (resets(node_cpu_seconds_total[6h]))";
            black_box(engine.instant(&db, q, END).unwrap())
        })
    });
    g.bench_function("decode_cpu_series_6h", |b| {
        let m = [Matcher::equal("__name__", "node_cpu_seconds_total")];
        b.iter(|| {
            let mut n = 0;
            for s in db.querier(END - 21_600_000, END).select(&m) {
                n += s.samples().unwrap().len();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, query_eval);
criterion_main!(benches);
