//! Shared pieces of the cross-crate tests: the deterministic workload that the crash-test child writes and
//! the parent checks, so both sides agree on what every batch contains without talking to each other.

use ember::Labels;

/// Number of distinct series the crash workload writes to.
pub const SERIES: usize = 64;
/// Samples per committed batch.
pub const PER_BATCH: usize = 24;
/// Milliseconds between batches; batch `k` writes at timestamp `k * STEP_MS`.
pub const STEP_MS: i64 = 1_000;

/// Labels of workload series `i`: ~10 labels like a node_exporter series.
pub fn series_labels(i: usize) -> Labels {
    let name = format!("crash_metric_{}", i % 8);
    let inst = format!("host-{:04}:9100", i / 8);
    let idx = i.to_string();
    Labels::from_pairs([
        ("__name__", name.as_str()),
        ("job", "node"),
        ("instance", inst.as_str()),
        ("idx", idx.as_str()),
        ("cpu", "0"),
        ("mode", "idle"),
        ("dc", "eu-west-1"),
        ("env", "test"),
        ("team", "storage"),
        ("version", "1.5.0"),
    ])
    .expect("workload labels are valid")
}

/// The series written in batch `k` (a rotating window, so batches create new series over time).
pub fn batch_series(k: u64) -> impl Iterator<Item = usize> {
    let start = (k as usize * 7) % SERIES;
    (0..PER_BATCH).map(move |j| (start + j) % SERIES)
}

/// The value of series `i` in batch `k`; varied bit patterns, including NaN payloads and -0.0.
pub fn value(k: u64, i: usize) -> f64 {
    match (k + i as u64) % 11 {
        0 => f64::from_bits(0x7ff8_0000_0000_0000 | (k << 4) | i as u64),
        1 => -0.0,
        2 => f64::INFINITY,
        _ => (k as f64) * 1.5 + i as f64 / 7.0,
    }
}
