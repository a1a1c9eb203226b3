//! Memory footprint of the postings index on a node-exporter-like head:
//! 100k series, 10 labels each, ~300 metric names, 1,000 instances.
//!
//! A counting global allocator measures the heap the index really holds
//! (with glibc-style chunk rounding); `memory_bytes()` must track it closely,
//! and the per-series cost must stay a small share of the head's 1 KiB goal.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use ember_index::{Labels, MemPostings};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Bytes malloc actually sets aside for a request (8-byte header, 16-byte
/// granularity, 32-byte minimum), so the count approximates RSS growth.
fn chunk(n: usize) -> usize {
    (n + 8).max(32).next_multiple_of(16)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(chunk(l.size()), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(chunk(l.size()), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(chunk(new), Ordering::Relaxed);
        LIVE.fetch_sub(chunk(l.size()), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Series `i` of a fleet of 1,000 node-exporter instances with 100 series
/// each: `__name__` cycles through 300 names (25 per instance), and the
/// remaining labels are low-cardinality topology/dimension labels.
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

#[test]
fn postings_memory_per_series_is_small_and_reported_accurately() {
    const N: usize = 100_000;
    let series: Vec<Labels> = (0..N).map(node_like).collect();
    assert!(series.iter().all(|l| l.len() == 10));

    let before = LIVE.load(Ordering::Relaxed);
    let mut p = MemPostings::new();
    for (r, l) in series.iter().enumerate() {
        p.add(r as u64, l);
    }
    let measured = LIVE.load(Ordering::Relaxed) - before;
    let reported = p.memory_bytes();

    let names = p.label_names().len();
    let values: usize = p.label_names().iter().map(|n| p.label_value_count(n)).sum();
    println!(
        "{N} series, {names} names, {values} distinct pairs: measured {measured} B ({:.1} B/series), \
         memory_bytes {reported} B ({:.1} B/series)",
        measured as f64 / N as f64,
        reported as f64 / N as f64,
    );
    assert_eq!(p.num_series(), N);
    assert_eq!(values, 300 + 1000 + 1 + 3 + 4 + 12 + 20 + 4 + 8 + 5);
    let ratio = reported as f64 / measured as f64;
    assert!(
        (0.85..1.15).contains(&ratio),
        "memory_bytes off by {ratio:.3}x"
    );
    // 11 refs of 8 bytes each is the floor; growth slack and per-pair
    // overhead must stay modest.
    assert!(measured / N <= 120, "{} B/series", measured / N);

    p.shrink_to_fit();
    let shrunk = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "after shrink_to_fit: {:.1} B/series",
        shrunk as f64 / N as f64
    );
}
