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

/// User plus system CPU time of this process so far, in seconds.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and has no other preconditions.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
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

/// Loads an OpenMetrics export of the shared benchmark dataset (`loadgen openmetrics`: series one after
/// another, `name{l="v",…} value seconds.millis4`) into `db`, committing every 10,000 samples. With
/// `pad_labels`, constant labels (`pad0="v"`, …) are added until each series has that many. Returns
/// (series, samples). A reader for this export only, not a general OpenMetrics parser.
pub fn load_openmetrics(
    db: &ember::Db,
    path: &std::path::Path,
    pad_labels: usize,
) -> anyhow::Result<(usize, u64)> {
    use std::io::BufRead;
    let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut app = db.appender();
    let (mut series, mut samples, mut pending) = (0usize, 0u64, 0usize);
    let mut prefix = String::new();
    let mut cur: Option<ember::SeriesRef> = None;
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let bad = || anyhow::anyhow!("{}:{}: not a sample line", path.display(), n + 1);
        let (rest, ts) = line.rsplit_once(' ').ok_or_else(bad)?;
        let (p, v) = rest.rsplit_once(' ').ok_or_else(bad)?;
        let t = (ts.parse::<f64>()? * 1000.0) as i64;
        let v: f64 = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse()?,
        };
        match cur {
            Some(r) if p == prefix => app.append_ref(r, t, v)?,
            _ => {
                prefix.clear();
                prefix.push_str(p);
                let mut labels = parse_series(p).ok_or_else(bad)?;
                let mut k = 0;
                while labels.len() < pad_labels {
                    labels.push((format!("pad{k}"), format!("value-{k}")));
                    k += 1;
                }
                let l = Labels::from_pairs(labels)?;
                cur = Some(app.append(&l, t, v)?);
                series += 1;
            }
        }
        samples += 1;
        pending += 1;
        if pending == 10_000 {
            app.commit()?;
            app = db.appender();
            pending = 0;
        }
    }
    app.commit()?;
    Ok((series, samples))
}

/// One series of an OpenMetrics export with all its samples.
pub type ExportedSeries = (Labels, Vec<(i64, f64)>);

/// Reads a whole OpenMetrics export of the shared benchmark dataset (`loadgen openmetrics`, series one
/// after another) into memory, for tools that must append it in time order rather than series order.
/// Timestamps (`seconds.millis`) are converted exactly, not through a float.
pub fn read_openmetrics(path: &std::path::Path) -> anyhow::Result<Vec<ExportedSeries>> {
    use std::io::BufRead;
    let f = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    let mut out: Vec<ExportedSeries> = Vec::new();
    let mut prefix = String::new();
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let bad = || anyhow::anyhow!("{}:{}: not a sample line", path.display(), n + 1);
        let (rest, ts) = line.rsplit_once(' ').ok_or_else(bad)?;
        let (p, v) = rest.rsplit_once(' ').ok_or_else(bad)?;
        let (secs, frac) = ts.split_once('.').unwrap_or((ts, ""));
        let mut millis: i64 = 0;
        for i in 0..3 {
            let d = frac
                .as_bytes()
                .get(i)
                .map_or(0, |b| i64::from(b.wrapping_sub(b'0')));
            anyhow::ensure!(
                (0..10).contains(&d),
                "{}:{}: bad timestamp {ts}",
                path.display(),
                n + 1
            );
            millis = millis * 10 + d;
        }
        let t = secs.parse::<i64>()? * 1000 + millis;
        let v: f64 = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse()?,
        };
        match out.last_mut() {
            Some(last) if p == prefix => last.1.push((t, v)),
            _ => {
                prefix.clear();
                prefix.push_str(p);
                let l = Labels::from_pairs(parse_series(p).ok_or_else(bad)?)?;
                out.push((l, vec![(t, v)]));
            }
        }
    }
    Ok(out)
}

fn parse_series(p: &str) -> Option<Vec<(String, String)>> {
    let (name, rest) = match p.find('{') {
        Some(i) => (&p[..i], &p[i + 1..p.len().checked_sub(1)?]),
        None => (p, ""),
    };
    let mut out = vec![("__name__".to_string(), name.to_string())];
    let mut s = rest;
    while !s.is_empty() {
        let eq = s.find("=\"")?;
        let lname = s[..eq].to_string();
        s = &s[eq + 2..];
        let mut val = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '\\' => match chars.next()?.1 {
                    'n' => val.push('\n'),
                    c => val.push(c),
                },
                '"' => break i,
                c => val.push(c),
            }
        };
        out.push((lname, val));
        s = s[end + 1..].trim_start_matches(',');
    }
    Some(out)
}
