//! Shared helpers for Ember's benchmarks and measurement tools: realistic label sets and process memory.

use ember::Labels;

/// A node_exporter-like label set with 10 labels for series `i` out of `n`: ~300 metric names, one
/// instance per 300 series, and a few shared labels, so symbol sharing is realistic.
pub fn node_like_labels(i: usize) -> Labels {
    let metric = format!("node_metric_{}_total", i % 300);
    let instance = format!("host-{:05}:9100", i / 300);
    let cpu = (i % 16).to_string();
    let mode = ["idle", "user", "system", "iowait"][i % 4];
    let device = format!("dev{}", (i / 7) % 9);
    Labels::from_pairs([
        ("__name__", metric.as_str()),
        ("instance", instance.as_str()),
        ("job", "node"),
        ("cpu", cpu.as_str()),
        ("mode", mode),
        ("device", device.as_str()),
        ("region", "eu-west-1"),
        ("cluster", "prod-3"),
        ("env", "production"),
        ("team", "infrastructure"),
    ])
    .expect("valid labels")
}

/// Resident set size of this process in bytes (Linux `/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Reads a file of JSON objects, one label set per line (the format `promtool tsdb bench write` takes
/// and `loadgen series-json` writes).
pub fn read_series_json(path: &std::path::Path, limit: usize) -> anyhow::Result<Vec<Labels>> {
    let text = std::fs::read_to_string(path)?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().take(limit) {
        let obj: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        let pairs: Vec<(String, String)> = obj
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
            .collect();
        out.push(Labels::from_pairs(pairs)?);
    }
    Ok(out)
}
