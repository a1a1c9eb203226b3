//! Postings index hot paths on a node-exporter-like head of 100k series
//! (10 labels each, ~300 metric names, 1,000 instances): building the index,
//! and selecting with equality, a literal alternation, `!=`, and a prefix
//! regex.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ember_index::{Labels, Matcher, MemPostings};

const N: usize = 100_000;

/// Series `i`: 1,000 instances × 100 series, `__name__` cycling through 300
/// names (25 per instance) with `cpu`/`mode` dimensions and low-cardinality
/// topology labels.
fn node_like(i: usize) -> Labels {
    const MODES: [&str; 8] = [
        "idle", "user", "system", "iowait", "irq", "nice", "softirq", "steal",
    ];
    const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"];
    let inst = i / 100;
    let k = i % 100;
    let metric = format!("node_metric_family_{:03}_total", (inst * 37 + k / 4) % 300);
    let region = REGIONS[inst % 4];
    Labels::from_pairs([
        ("__name__", metric.as_str()),
        (
            "instance",
            &format!("10.{}.{}.{}:9100", inst / 250, (inst / 10) % 25, inst % 10),
        ),
        ("job", "node"),
        ("env", ["prod", "staging", "dev"][inst % 3]),
        ("region", region),
        ("az", &format!("{region}{}", ["a", "b", "c"][inst % 3])),
        ("cluster", &format!("k8s-{:02}", inst % 20)),
        ("cpu", &(k % 4).to_string()),
        ("mode", MODES[(k / 4) % 8]),
        ("team", ["infra", "storage", "web", "data", "ml"][inst % 5]),
    ])
    .unwrap()
}

fn build(series: &[Labels]) -> MemPostings {
    let mut p = MemPostings::new();
    for (r, l) in series.iter().enumerate() {
        p.add(r as u64, l);
    }
    p
}

fn bench_postings(c: &mut Criterion) {
    let series: Vec<Labels> = (0..N).map(node_like).collect();

    c.bench_function("mem_postings_add_100k_series", |b| {
        b.iter_batched(
            || (),
            |()| black_box(build(&series)),
            BatchSize::PerIteration,
        )
    });

    let p = build(&series);
    eprintln!(
        "postings: {} series, memory_bytes {} ({:.1} B/series)",
        p.num_series(),
        p.memory_bytes(),
        p.memory_bytes() as f64 / p.num_series() as f64
    );

    let name = "node_metric_family_042_total";
    let selectors: Vec<(&str, Vec<Matcher>)> = vec![
        ("eq_name_and_job", vec![Matcher::equal("__name__", name), Matcher::equal("job", "node")]),
        (
            "regex_alternation",
            vec![
                Matcher::regex(
                    "__name__",
                    "node_metric_family_001_total|node_metric_family_042_total|node_metric_family_250_total",
                )
                .unwrap(),
                Matcher::equal("job", "node"),
            ],
        ),
        ("not_equal", vec![Matcher::equal("__name__", name), Matcher::not_equal("env", "prod")]),
        ("regex_prefix", vec![Matcher::regex("instance", "10\\.1\\.2.*").unwrap()]),
        (
            "regex_prefix_and_name",
            vec![Matcher::equal("__name__", name), Matcher::regex("instance", "10\\.1\\..*").unwrap()],
        ),
        ("not_equal_only", vec![Matcher::not_equal("env", "prod")]),
    ];
    let mut g = c.benchmark_group("postings_for_matchers_100k");
    for (label, ms) in &selectors {
        let hits = p.postings_for_matchers(ms).len();
        eprintln!("postings: {label}: {hits} series");
        g.bench_function(*label, |b| {
            b.iter(|| black_box(p.postings_for_matchers(black_box(ms))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_postings);
criterion_main!(benches);
